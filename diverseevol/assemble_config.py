"""Running a configuration: the judge, the loop and the data a :class:`~diverseevol.config.RunConfig` describes.

:mod:`diverseevol.config` reads and checks a configuration file (schema, reading, validation);
this module says what its sections mean and builds them with :mod:`diverseevol.assemble`:

* :func:`build_loop`, :func:`run_config`: the :class:`~diverseevol.EvolutionLoop` of a
  configuration, built and run (resumed when its run directory exists);
* :func:`build_judge`: the judge of the ``judge`` section;
* :func:`run_data`: where the records of a finished run come from (its configuration's ``data``
  section, or a file the user names), for ``diverseevol export``.

``diverseevol.hf`` and ``diverseevol.judge`` are imported inside the functions that need them.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .assemble import (
    assemble_loop,
    build_generator,
    build_hf_parts,
    build_pairwise_loop_judge,
    fixed_embedding_parts,
    load_exact_match_judge,
)
from .config import DataConfig, RunConfig, _load_records, build_sampler, load_config
from .errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from .data import InstructionRecord
    from .run.result import EvolutionResult

__all__ = ["RunData", "build_judge", "build_loop", "data_files", "run_config", "run_data"]

logger = logging.getLogger(__name__)


def build_judge(config: RunConfig) -> Any:
    """The judge the ``judge`` section describes (it needs the ``model`` section).

    ``exact_match``: generated answers compared with the outputs of ``judge.path``, grouped by
    ``judge.group_field``; ``pairwise``: a :class:`~diverseevol.judge.PairwiseLoopJudge` against
    ``judge.references``, writing answers and reports under ``run_dir/judge``.

    Raises
    ------
    ConfigError
        When there is no ``judge`` section, a test record lacks ``group_field``, or an argument
        is misspelt.
    """
    j = config.judge
    if j is None:
        raise ConfigError("judge: the configuration has no `judge` section to build a judge from.")
    generator = build_generator(j.generation, where="judge.generation")
    if j.type == "exact_match":
        return load_exact_match_judge(j.path, generator, group_field=j.group_field, params=j.params, where="judge")
    assert j.references is not None  # parse_config requires it for the pairwise judge
    return build_pairwise_loop_judge(j.path, generator, references=j.references, benchmark=j.benchmark,
                                     params=j.params, output_dir=config.run_dir / "judge", where="judge.params")


def build_loop(config: RunConfig, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Build the :class:`~diverseevol.EvolutionLoop` a configuration describes.

    Without a ``model`` section the loop selects with the fixed ``data.embeddings`` every
    round (no training). With one, it trains :class:`~diverseevol.hf.HFTrainer` from
    ``model.name_or_path`` each round (a ``.gguf`` file is converted once), embeds with
    :class:`~diverseevol.hf.HFEmbedder`, scores with :class:`~diverseevol.hf.HFScorer` when the
    sampler needs uncertainty scores, and judges with the ``judge`` section. The parts are built
    by :mod:`diverseevol.assemble`.

    Parameters
    ----------
    config : RunConfig
    overwrite : bool, default False
        Start the run directory over; otherwise an existing run is resumed.
    progress : bool, default True
        Progress bars (also off with ``DIVERSEEVOL_PROGRESS=0``).

    Raises
    ------
    ConfigError
        When the sampler needs model scores but there is no ``model`` section, or a keyword
        argument of a part is misspelt (the message names the key).
    """
    from ._progress import progress_enabled
    from .samplers import requirements_of

    progress = progress and progress_enabled()
    sampler = build_sampler(config)
    needs = requirements_of(sampler)
    records = _load_records(config)
    judge = None
    if config.model is None:
        assert config.data.embeddings is not None  # parse_config guarantees a view of the data
        if needs.scores:
            raise ConfigError(
                f"sampler {config.sampler.name!r} needs model scores ({', '.join(sorted(needs.to_strings()))}); "
                f"add a `model` section, or use a sampler that needs only embeddings."
            )
        parts = fixed_embedding_parts(config.data.embeddings, len(records))
    else:
        m = config.model
        tracked = {"report_to": config.report_to, "run_name": config.run_dir.name} if config.report_to else {}
        parts = build_hf_parts(m.name_or_path, scores=bool(needs.scores), progress=progress, seed=config.seed,
                               trainer={**tracked, **(m.trainer or {})}, embedder=m.embedder, scorer=m.scorer,
                               where="model")
        if config.judge is not None:
            judge = build_judge(config)
    b = config.budget
    return assemble_loop(
        records,
        parts,
        sampler=sampler,
        judge=judge,
        init_size=b.init_size,
        k=b.k,
        rounds=b.rounds,
        mode=b.mode,
        seed=config.seed,
        run_dir=config.run_dir,
        overwrite=overwrite,
        progress=progress,
        tags={"config_file": str(config.source) if config.source else None},
        report_to=config.report_to,
    )


def run_config(config: RunConfig | str | Path, *, overwrite: bool = False, progress: bool = True) -> Any:
    """Run (or resume) the loop a configuration describes and return its ``EvolutionResult``.

    Parameters
    ----------
    config : RunConfig, or the path of a YAML/TOML file
    overwrite : bool, default False
        Start the run directory over instead of resuming it.
    progress : bool, default True
    """
    if not isinstance(config, RunConfig):
        config = load_config(config)
    loop = build_loop(config, overwrite=overwrite, progress=progress)
    logger.info("running %s into %s", config.sampler.name, config.run_dir)
    return loop.run()


@dataclass(frozen=True)
class RunData:
    """Where the records of a run come from: its configuration's data section, or a file given by the user.

    Attributes
    ----------
    path : Path
        The data file (or ``save_to_disk`` folder): for a ``dataset_info`` data section, the
        file its entry names.
    config_file : Path or None
        The configuration file the run was started from (``tags.config_file``), when it names one.
    config : RunConfig or None
        That configuration, read when the records come from its ``data`` section.
    inputs : tuple of (str, Path)
        Every file read to get the records, with a label for messages (the data file, the
        ``dataset_info.json``): what an output may not be.
    """

    path: Path
    config_file: Path | None
    config: RunConfig | None = None
    inputs: tuple[tuple[str, Path], ...] = ()

    def records(self, *, format: str | None = None, file_type: str | None = None,
                encoding: str | None = None) -> list[InstructionRecord]:
        """Load the records: every option of the configuration's ``data`` section, or ``path`` alone.

        Parameters
        ----------
        format : str, optional
            Record format of a file given by the user (``alpaca``, ``dolly``, ``sharegpt``,
            ``openai``; detected when omitted). The configuration's data section says its own.
        file_type : str, optional
            File type of a file given by the user (:func:`~diverseevol.data.file_type_names`).
        encoding : str, optional
            Text encoding of a file given by the user (default utf-8).

        Returns
        -------
        list of InstructionRecord
            Z, in row order. Duplicates are not warned about again (the run did when it started).
        """
        from .data import load_instructions
        from .errors import DuplicateRecordsWarning

        if self.config is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DuplicateRecordsWarning)
                return list(_load_records(self.config))
        options = {"format": format, "file_type": file_type, "encoding": encoding}
        given = {name: value for name, value in options.items() if value is not None}
        return list(load_instructions(self.path, on_duplicates="ignore", **given))


def run_data(result: EvolutionResult, data: str | Path | None = None) -> RunData:
    """Where the records of ``result`` come from: ``data`` when given, else the run's configuration file.

    Parameters
    ----------
    result : EvolutionResult
        A loaded run (:meth:`~diverseevol.run.result.EvolutionResult.load`).
    data : str or Path, optional
        The run's data file, for a run started from Python (the records are checked against the
        run's data fingerprint when they are used).

    Returns
    -------
    RunData

    Raises
    ------
    ValidationError
        When ``data`` is not given and the run was not started from a configuration file.
    ConfigError
        When the configuration file named by the run no longer exists or is invalid.
    """
    named = (result.config.get("tags") or {}).get("config_file")
    config_file = Path(named) if named else None
    if data is not None:
        path = Path(data)
        return RunData(path, config_file if config_file is not None and config_file.exists() else None,
                       inputs=(("--data", path),))
    if config_file is None:
        raise ValidationError(
            f"{result.run_dir} was not started from a configuration file, so it does not say where its records "
            f"are; pass them (data=..., or --data FILE on the command line)."
        )
    if not config_file.is_file():
        raise ConfigError(
            f"{config_file}: the configuration file of {result.run_dir} no longer exists; restore it, or pass the "
            f"run's data file (data=..., or --data FILE on the command line)."
        )
    config = load_config(config_file)
    inputs = data_files(config.data, "the run's data")
    return RunData(inputs[0][1], config_file, config, inputs)


def data_files(section: DataConfig, label: str = "data") -> tuple[tuple[str, Path], ...]:
    """The files a configuration's ``data`` section reads, each with a label for messages.

    Parameters
    ----------
    section : DataConfig
        A checked ``data`` section.
    label : str, default "data"
        What to call the data file in messages.

    Returns
    -------
    tuple of (str, Path)
        The data file first (``path``, or the file a ``dataset_info`` entry names), then the
        ``dataset_info.json`` when there is one: what a command's outputs may not be.
    """
    if section.dataset_info is None:
        assert section.path is not None  # the data section needs one or the other
        return ((label, section.path),)
    from .data.dataset_info import dataset_info_source

    entry = dataset_info_source(section.dataset_info, str(section.dataset)).path
    return ((label, entry), (f"{label} (its dataset_info file)", section.dataset_info))
