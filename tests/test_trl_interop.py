"""A real consumer trains on an exported subset: TRL's SFTTrainer on ``select --out`` files.

``diverseevol select DATA --embeddings E --k K --out OUT.jsonl`` writes the picked records as
they were in DATA (OpenAI ``messages`` or ShareGPT ``conversations``); TRL's ``SFTTrainer``
loads that file with ``datasets`` and trains a tiny LLaMA (built offline from a config, with a
character tokenizer and a simple chat template) for a few steps. TRL reads ``messages`` as its
conversational format and converts ShareGPT's ``from``/``value`` turns itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")
pytest.importorskip("trl")

from diverseevol.cli import EXIT_OK, main  # noqa: E402
from diverseevol.hf.tiny import save_tiny_model  # noqa: E402

#: renders every turn as <|role|>content</s>, whatever the role is called (user/human, assistant/gpt)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
N_RECORDS, K, STEPS = 12, 4, 2

# TRL's own SFTConfig still sets the old gradient_checkpointing name under transformers 5
pytestmark = pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")


def _messages_records() -> list[dict]:
    rows = []
    for i in range(N_RECORDS):
        turns = [{"role": "user", "content": f"Add {i} and {i}."},
                 {"role": "assistant", "content": f"{2 * i}"}]
        if i % 3 == 0:  # multi-turn, with a system turn
            turns = [{"role": "system", "content": "Answer with digits."}, *turns,
                     {"role": "user", "content": "And times two?"},
                     {"role": "assistant", "content": f"{4 * i}"}]
        rows.append({"messages": turns, "source": f"set-{i % 2}"})  # an extra column travels along
    return rows


def _sharegpt_records() -> list[dict]:
    rows = []
    for i in range(N_RECORDS):
        turns = [{"from": "human", "value": f"Say {i} twice."}, {"from": "gpt", "value": f"{i} {i}"}]
        if i % 4 == 0:
            turns += [{"from": "human", "value": "Once more?"}, {"from": "gpt", "value": f"{i}"}]
        rows.append({"conversations": turns})
    return rows


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory) -> Path:
    from transformers import AutoTokenizer

    path = save_tiny_model(tmp_path_factory.mktemp("tiny") / "chat", seed=0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return path


def _export(tmp_path: Path, rows: list[dict]) -> tuple[Path, list[int]]:
    """``diverseevol select`` over ``rows``: the exported file and the picked row indices."""
    data, emb = tmp_path / "data.jsonl", tmp_path / "emb.npy"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    np.save(emb, np.random.default_rng(0).normal(size=(len(rows), 8)).astype(np.float32))
    out, idx = tmp_path / "subset.jsonl", tmp_path / "picks.txt"
    code = main(["select", str(data), "--embeddings", str(emb), "--k", str(K), "--out", str(out),
                 "--indices-out", str(idx)])
    assert code == EXIT_OK
    return out, [int(line) for line in idx.read_text().split()]


@pytest.mark.parametrize(
    "make_rows, column", [(_messages_records, "messages"), (_sharegpt_records, "conversations")]
)
def test_sft_trainer_trains_on_the_exported_subset(tmp_path, tiny_chat_model, make_rows, column):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = make_rows()
    out, picks = _export(tmp_path, rows)
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(set(picks)) == K and exported == [rows[i] for i in picks]  # the user's records, as they were

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model)
    dataset = load_dataset("json", data_files=str(out), split="train")
    assert column in dataset.column_names
    config = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=STEPS,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        max_length=256,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)

    # what TRL will train on is the chat-template rendering of exactly the exported conversations
    texts = {tokenizer.decode(ids, skip_special_tokens=False) for ids in trainer.train_dataset["input_ids"]}
    for record in exported:
        turns = [{"role": t.get("role", t.get("from")), "content": t.get("content", t.get("value"))}
                 for t in record[column]]
        rendered = tokenizer.apply_chat_template(turns, tokenize=False)
        assert any(rendered in text for text in texts), rendered

    result = trainer.train()
    assert trainer.state.global_step == STEPS
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == STEPS and all(math.isfinite(x) and x > 0 for x in losses)
    assert math.isfinite(result.training_loss)
