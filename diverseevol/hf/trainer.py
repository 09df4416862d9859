"""Fine-tuning for :class:`diverseevol.EvolutionLoop`: LoRA or full, from the base weights every round."""

from __future__ import annotations

import inspect
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_write
from .._validation import check_scalar
from ..comm import rank_and_world
from ..data import InstructionRecord, data_fingerprint
from ..errors import ValidationError
from ._model import (
    ModelHandle,
    default_device,
    load_model,
    resolve_dtype,
    locate_model,
    resolve_model_source,
)
from ._quiet import quiet_transformers_progress
from ._memory import release_freed_memory
from ._records import CausalLMCollator, TrainingDataset, ensure_pad_token, tokenize_records
from ._response_loss import ResponseLoss, response_loss_applies

logger = logging.getLogger(__name__)

__all__ = ["MARKER_NAME", "HFTrainer"]

#: Completion marker written into ``out_dir`` after the weights; its presence means "round done".
MARKER_NAME = "diverseevol_model.json"


class HFTrainer:
    """Trainer for :class:`diverseevol.EvolutionLoop`: ``trainer(records, round, out_dir) -> ModelHandle``.

    Every round starts from the base weights (as in the paper), trains on the round's records
    with the Alpaca template and the loss on response tokens only (prompt labels are -100),
    saves the result with safetensors into ``out_dir`` (the LoRA adapter, or the full model),
    then writes a completion marker. A round whose marker exists (same base, settings and
    records) is loaded instead of retrained. Training runs through the Hugging Face
    ``Trainer``, so ``torchrun`` / ``accelerate launch`` give DDP over all processes (each
    process must call the trainer; only rank 0 writes).

    Parameters
    ----------
    base_model : str or Path
        Local directory or hub id of a causal LM (hub ids need network access; ``hub:<id>``
        forces one). A path-looking name that does not exist raises
        :class:`~diverseevol.errors.ModelNotFoundError` when training or loading starts, before
        any network access (see :meth:`base_path`). Ignored when ``gguf_file`` is given.
    lora : bool, default True
        Train a LoRA adapter (peft) instead of all weights.
    lora_r, lora_alpha, lora_dropout : int, int, float
        LoRA rank, scaling numerator and dropout.
    target_modules : list of str or str, optional
        Modules that get adapters; default: peft's choice for the architecture, else ``"all-linear"``.
    epochs : float, default 3
    batch_size : int, default 128
        Effective batch: ``per_device_batch_size x processes x gradient accumulation`` (rounded up).
    per_device_batch_size : int, default 8
    lr : float, default 2e-5
    scheduler : str, default "cosine"
        Any ``transformers`` ``lr_scheduler_type``.
    warmup_ratio : float, default 0.03
    weight_decay : float, default 0.0
    max_length : int, default 512
    precision : {"auto", "bf16", "fp16", "no"}, default "auto"
        Mixed precision: bf16 on a CUDA GPU that supports it, else fp16 on CUDA, none on CPU.
    dtype : torch.dtype or str, default "auto"
        Weight dtype when loading: with LoRA on CUDA bf16/fp16 (the adapters stay float32), else float32.
    seed : int, default 0
        Seeds adapter initialisation, dropout and data order (the round is added, so rounds differ).
    gguf_file : str or Path, optional
        Use a GGUF file as base model (converted once to safetensors in ``cache_dir``).
    cache_dir : str or Path, optional
        GGUF conversion cache; default ``~/.cache/diverseevol/gguf`` (or ``$DIVERSEEVOL_CACHE``).
    gradient_checkpointing : bool, default False
    logging_steps : int, default 10
    progress : bool, default True
    report_to : str or list of str, default "none"
        ``TrainingArguments.report_to``: where the trainer logs its losses (``"tensorboard"``,
        ``"mlflow"``, ``"wandb"``, a list, ``"all"`` or ``"none"``; see docs/tracking.md). Each round
        is its own tracking run, named ``run_name`` + ``"round_XXX"``; TensorBoard event files go to
        ``out_dir/tensorboard`` (unless ``TENSORBOARD_LOGGING_DIR`` is set).
    run_name : str, optional
        Prefix of the per-round run names (e.g. the run directory's name).
    training_args : mapping, optional
        Extra ``transformers.TrainingArguments`` keywords; they override the ones above.

    Examples
    --------
    >>> trainer = HFTrainer("path/to/base", lora=True, epochs=3, batch_size=128, lr=2e-5)  # doctest: +SKIP
    >>> handle = trainer(records, 0, Path("runs/x/round_000/model"))                      # doctest: +SKIP
    """

    def __init__(
        self,
        base_model: str | Path | None = None,
        *,
        lora: bool = True,
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        target_modules: Sequence[str] | str | None = None,
        epochs: float = 3,
        batch_size: int = 128,
        per_device_batch_size: int = 8,
        lr: float = 2e-5,
        scheduler: str = "cosine",
        warmup_ratio: float = 0.03,
        weight_decay: float = 0.0,
        max_length: int = 512,
        precision: str = "auto",
        dtype: Any = "auto",
        seed: int = 0,
        gguf_file: str | Path | None = None,
        cache_dir: str | Path | None = None,
        gradient_checkpointing: bool = False,
        logging_steps: int = 10,
        progress: bool = True,
        report_to: str | Sequence[str] = "none",
        run_name: str | None = None,
        training_args: Mapping[str, Any] | None = None,
    ) -> None:
        if base_model is None and gguf_file is None:
            raise ValidationError("HFTrainer needs base_model (a directory or hub id) or gguf_file.")
        check_scalar(batch_size, "batch_size", int, min_val=1)
        check_scalar(per_device_batch_size, "per_device_batch_size", int, min_val=1)
        if precision not in ("auto", "bf16", "fp16", "no"):
            raise ValidationError(f"precision must be 'auto', 'bf16', 'fp16' or 'no', got {precision!r}.")
        self.base_model = base_model
        self.lora = lora
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules
        self.epochs = epochs
        self.batch_size = batch_size
        self.per_device_batch_size = per_device_batch_size
        self.lr = lr
        self.scheduler = scheduler
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.max_length = max_length
        self.precision = precision
        self.dtype = dtype
        self.seed = seed
        self.gguf_file = gguf_file
        self.cache_dir = cache_dir
        self.gradient_checkpointing = gradient_checkpointing
        self.logging_steps = logging_steps
        self.progress = progress
        self.report_to = report_to if isinstance(report_to, str) else list(report_to)
        self.run_name = run_name
        self.training_args = dict(training_args or {})

    def __repr__(self) -> str:
        base = self.gguf_file if self.gguf_file is not None else self.base_model
        return (
            f"HFTrainer({str(base)!r}, lora={self.lora}, epochs={self.epochs}, batch_size={self.batch_size}, "
            f"lr={self.lr})"
        )

    # -- configuration -------------------------------------------------------------------------

    def base_path(self) -> Path | str:
        """The base model directory (after a GGUF conversion, when ``gguf_file`` is set), or its Hub id.

        ``base_model`` goes through :func:`~diverseevol.hf._model.resolve_model_source`: ``hub:<id>`` gives
        the id, and a path-looking name that does not exist raises ``ModelNotFoundError``.
        """
        if self.gguf_file is not None:
            from .gguf import convert_gguf

            return convert_gguf(self.gguf_file, cache_dir=self.cache_dir)
        assert self.base_model is not None
        return resolve_model_source(self.base_model)

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (recorded in the run directory's ``config.json``)."""
        return self.settings()

    def settings(self) -> dict[str, Any]:
        """The settings that determine a round's model (stored in the completion marker)."""
        return {
            "base_model": str(self.base_model) if self.base_model is not None else None,
            "gguf_file": str(self.gguf_file) if self.gguf_file is not None else None,
            "lora": self.lora,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": self.target_modules
            if not isinstance(self.target_modules, tuple)
            else list(self.target_modules),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "scheduler": self.scheduler,
            "warmup_ratio": self.warmup_ratio,
            "weight_decay": self.weight_decay,
            "max_length": self.max_length,
            "seed": self.seed,
            "training_args": {k: repr(v) for k, v in sorted(self.training_args.items())},
        }

    # -- the loop protocol ---------------------------------------------------------------------

    def is_complete(self, out_dir: str | Path, records: Sequence[InstructionRecord] | None = None) -> bool:
        """Whether ``out_dir`` holds a finished round made with these settings (and these records)."""
        marker = Path(out_dir) / MARKER_NAME
        if not marker.is_file():
            return False
        try:
            meta = json.loads(marker.read_text())
        except (OSError, ValueError):
            return False
        if meta.get("settings") != json.loads(json.dumps(self.settings())):
            logger.warning("%s was made with other trainer settings; retraining", out_dir)
            return False
        if records is not None and meta.get("records_sha256") != data_fingerprint(records)["sha256"]:
            logger.warning("%s was trained on other records; retraining", out_dir)
            return False
        return True

    def __call__(self, records: Sequence[InstructionRecord], round: int, out_dir: str | Path) -> ModelHandle:
        """Fine-tune on ``records`` from the base weights, save into ``out_dir``, return the model.

        Parameters
        ----------
        records : sequence of InstructionRecord
            The round's training pool P_t.
        round : int
            The loop round t (mixed into the seed).
        out_dir : str or Path
            Created if missing. Receives the adapter (``adapter_model.safetensors``) or the full
            model (``model.safetensors``), the tokenizer and the marker :data:`MARKER_NAME`.

        Returns
        -------
        ModelHandle
            The trained model, LoRA merged, in eval mode, plus its tokenizer and ``info``.
        """
        records = list(records)
        if not records:
            raise ValidationError("HFTrainer got no records to train on; the training pool is empty.")
        out_dir = Path(out_dir)
        if self.is_complete(out_dir, records):
            logger.info("round %d: %s is complete, loading instead of training", round, out_dir)
            return self.load(out_dir, round)
        return self._train(records, int(round), out_dir)

    def load(self, out_dir: str | Path, round: int | None = None) -> ModelHandle:
        """Load a finished round's model from ``out_dir`` (used by the loop when resuming)."""
        out_dir = Path(out_dir)
        marker = out_dir / MARKER_NAME
        if not marker.is_file():
            raise FileNotFoundError(
                f"{out_dir} holds no finished model (no {MARKER_NAME}); train the round first."
            )
        meta = json.loads(marker.read_text())
        if meta.get("lora"):
            base = self.base_path() if self.gguf_file is not None else self.base_model
            handle = load_model(
                base, adapter=out_dir, dtype=self._inference_dtype(), progress=self.progress
            )
        else:
            handle = load_model(out_dir, dtype=self._inference_dtype(), progress=self.progress)
        handle.path = out_dir
        handle.round = round if round is not None else meta.get("round")
        handle.info = meta
        return handle

    # -- internals -----------------------------------------------------------------------------

    def _show_progress(self) -> bool:
        """``progress`` under the library's one switch (``DIVERSEEVOL_PROGRESS``, stderr a terminal)."""
        from .._progress import show_progress

        return show_progress(self.progress)

    def _inference_dtype(self) -> Any:
        return resolve_dtype(self.dtype, default_device())

    def _mixed_precision(self) -> tuple[bool, bool]:
        import torch

        if self.precision == "bf16":
            return True, False
        if self.precision == "fp16":
            return False, True
        if self.precision == "no" or not torch.cuda.is_available():
            return False, False
        return (True, False) if torch.cuda.is_bf16_supported() else (False, True)

    def _target_modules(self, model: Any) -> Any:
        if self.target_modules is not None:
            return (
                list(self.target_modules) if not isinstance(self.target_modules, str) else self.target_modules
            )
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as known

        return known.get(getattr(model.config, "model_type", ""), "all-linear")

    def _training_arguments(self, out_dir: Path, n_records: int, round: int) -> Any:
        import torch
        from transformers import TrainingArguments

        per_device = min(self.per_device_batch_size, self.batch_size)
        bf16, fp16 = self._mixed_precision()
        params = inspect.signature(TrainingArguments).parameters
        kwargs: dict[str, Any] = {
            "output_dir": str(out_dir / "_trainer"),
            "per_device_train_batch_size": per_device,
            "gradient_accumulation_steps": 1,  # set below, once the device count is known
            "num_train_epochs": self.epochs,
            "learning_rate": self.lr,
            "lr_scheduler_type": self.scheduler,
            "weight_decay": self.weight_decay,
            "bf16": bf16,
            "fp16": fp16,
            "logging_steps": self.logging_steps,
            "save_strategy": "no",
            "report_to": self.report_to,
            "run_name": f"{self.run_name}-round_{round:03d}" if self.run_name else f"round_{round:03d}",
            "seed": self.seed + round,
            "disable_tqdm": not self._show_progress(),
            "remove_unused_columns": False,
            "use_cpu": not torch.cuda.is_available(),
            "ddp_find_unused_parameters": False,
        }
        # transformers >= 5 renamed gradient_checkpointing to activation_checkpointing
        ckpt_key = (
            "activation_checkpointing" if "activation_checkpointing" in params else "gradient_checkpointing"
        )
        kwargs[ckpt_key] = self.gradient_checkpointing
        if "logging_dir" in params:  # transformers 4.x; 5.x: set on the callback in _train
            kwargs["logging_dir"] = str(out_dir / "tensorboard")
        if "warmup_ratio" in params:  # transformers 4.x
            kwargs["warmup_ratio"] = self.warmup_ratio
        else:  # transformers >= 5: a float < 1 is a ratio
            kwargs["warmup_steps"] = float(self.warmup_ratio) if 0 < self.warmup_ratio < 1 else 0
        kwargs.update(self.training_args)
        args = TrainingArguments(**kwargs)
        if "gradient_accumulation_steps" not in self.training_args:
            # train_batch_size counts the GPUs of one process (DataParallel); world_size the processes
            per_step = args.train_batch_size * max(1, args.world_size)
            args.gradient_accumulation_steps = max(1, math.ceil(self.batch_size / per_step))
        logger.info(
            "training on %d records: %d per step (%d per device, %d process(es)) x %d accumulation = "
            "effective batch %d",
            n_records,
            args.train_batch_size * max(1, args.world_size),
            per_device,
            max(1, args.world_size),
            args.gradient_accumulation_steps,
            args.train_batch_size * max(1, args.world_size) * args.gradient_accumulation_steps,
        )
        return args

    def _train(self, records: list[InstructionRecord], round: int, out_dir: Path) -> ModelHandle:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, set_seed

        t0 = time.perf_counter()
        _, world = rank_and_world()
        # locate_model: a name neither local nor in the HF cache fails here, before any network retry
        base = self.base_path() if self.gguf_file is not None else locate_model(self.base_model)
        out_dir.mkdir(parents=True, exist_ok=True)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        ensure_pad_token(tokenizer)
        tokenized = tokenize_records(tokenizer, records, max_length=self.max_length)

        set_seed(self.seed + round)
        device = default_device()
        load_dtype = (
            resolve_dtype(self.dtype, device) if (self.lora or self.dtype != "auto") else torch.float32
        )
        with quiet_transformers_progress(not self._show_progress()):
            model = AutoModelForCausalLM.from_pretrained(str(base), dtype=load_dtype)
        if self.gradient_checkpointing:
            model.config.use_cache = False
        if self.lora:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(
                task_type="CAUSAL_LM",
                r=self.lora_r,
                lora_alpha=self.lora_alpha,
                lora_dropout=self.lora_dropout,
                target_modules=self._target_modules(model),
            )
            with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing`
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = get_peft_model(model, config)
            if self.gradient_checkpointing:
                model.enable_input_require_grads()

        args = self._training_arguments(out_dir, len(records), round)
        collate: Any = CausalLMCollator(tokenizer.pad_token_id)
        # the loss from the response positions' hidden states, a chunk of logits at a time (no (B, T, V) logits)
        chunked = "compute_loss_func" in inspect.signature(Trainer).parameters and response_loss_applies(model, args)
        loss = ResponseLoss(model) if chunked else None
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=TrainingDataset(tokenized),
            data_collator=loss.collator(collate) if loss is not None else collate,
            processing_class=tokenizer,
            **({"compute_loss_func": loss} if loss is not None else {}),
        )
        _tensorboard_dir(trainer, out_dir / "tensorboard")
        if not self._show_progress():  # no metric dicts printed to stdout either
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        result = trainer.train()
        trained = trainer.model
        is_main = trainer.is_world_process_zero()
        if is_main:
            with quiet_transformers_progress(not self._show_progress()):
                trained.save_pretrained(str(out_dir), safe_serialization=True)
            tokenizer.save_pretrained(str(out_dir))
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        meta = {
            "complete": True,
            "round": round,
            "lora": self.lora,
            "base_path": str(base),
            "n_records": len(records),
            "records_sha256": data_fingerprint(records)["sha256"],
            "global_steps": int(trainer.state.global_step),
            "train_loss": float(result.training_loss),
            "logged_losses": losses,
            "processes": world,
            "train_seconds": round_(time.perf_counter() - t0),
            "settings": self.settings(),
        }
        if is_main:
            text = json.dumps(meta, indent=2)
            atomic_write(out_dir / MARKER_NAME, lambda fh: fh.write(text.encode("utf-8")))
            shutil.rmtree(out_dir / "_trainer", ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
        if loss is not None:
            loss.remove()
        del trainer, loss, result

        if self.lora:
            trained = trained.merge_and_unload()
        trained.to(device)
        trained.eval()
        inf_dtype = self._inference_dtype()
        if next(trained.parameters()).dtype != inf_dtype:
            trained.to(inf_dtype)
        release_freed_memory()  # what training freed (activations, optimizer, trainer) goes back to the system
        logger.info(
            "round %d: trained %d records in %.1f s (loss %.4f)",
            round,
            len(records),
            meta["train_seconds"],
            meta["train_loss"],
        )
        return ModelHandle(model=trained, tokenizer=tokenizer, path=out_dir, round=round, info=meta)


def _tensorboard_dir(trainer: Any, log_dir: Path) -> None:
    """Point transformers' TensorBoard callback at ``log_dir`` (it would write into ``_trainer``, deleted
    after training), unless ``TENSORBOARD_LOGGING_DIR`` or ``logging_dir`` chose a directory."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback) and getattr(callback, "logging_dir", "") is None:
            callback.logging_dir = str(log_dir)


def round_(x: float) -> float:
    return float(f"{x:.3f}")
