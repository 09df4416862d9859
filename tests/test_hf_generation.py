"""HFGenerator: batched greedy decoding equals a hand-written argmax loop; seeded sampling repeats."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle

from diverseevol.data import InstructionRecord, format_prompt
from diverseevol.errors import ValidationError
from diverseevol.hf import HFGenerator

torch.set_num_threads(2)

QUESTIONS = ["What is 2+2?", "Name a colour.", "Write a very long and winding question about nothing at all?"]


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=1)


def _greedy_oracle(handle, prompt, n_new):
    ids = handle.tokenizer(prompt)["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n_new):
            nxt = int(handle.model(torch.tensor([ids])).logits[0, -1].argmax())
            if nxt == handle.tokenizer.eos_token_id:
                break
            ids.append(nxt)
            out.append(nxt)
    return handle.tokenizer.decode(out, skip_special_tokens=True).strip()


def test_greedy_matches_argmax_loop_and_batching(handle):
    gen = HFGenerator(max_new_tokens=8, batch_size=3, progress=False)
    answers = gen(handle, QUESTIONS)
    assert answers == [_greedy_oracle(handle, format_prompt(q), 8) for q in QUESTIONS]
    assert HFGenerator(max_new_tokens=8, batch_size=1, progress=False).generate(handle, QUESTIONS) == answers


def test_template_flag_and_records(handle):
    raw = HFGenerator(max_new_tokens=6, progress=False)(handle, QUESTIONS[:2])
    pre = HFGenerator(max_new_tokens=6, apply_template=False, progress=False)(
        handle, [format_prompt(q) for q in QUESTIONS[:2]]
    )
    recs = HFGenerator(max_new_tokens=6, progress=False)(
        handle, [InstructionRecord(q) for q in QUESTIONS[:2]]
    )
    assert raw == pre == recs
    with pytest.raises(ValidationError, match="prompts\\[0\\]"):
        HFGenerator(progress=False)(handle, [3])
    assert HFGenerator(progress=False)(handle, []) == []


def test_seeded_sampling(handle):
    kw = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.0, "top_p": 1.0, "progress": False}
    a = HFGenerator(seed=3, **kw)(handle, QUESTIONS)
    b = HFGenerator(seed=3, **kw)(handle, QUESTIONS)
    c = HFGenerator(seed=4, **kw)(handle, QUESTIONS)
    assert a == b and a != c
    assert all(isinstance(x, str) for x in a)


def test_works_with_judge_helper(handle):
    from diverseevol.judge import generate_answers

    out = generate_answers(HFGenerator(max_new_tokens=4, progress=False), handle, QUESTIONS)
    assert len(out) == 3
