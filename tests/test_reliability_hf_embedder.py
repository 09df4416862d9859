"""HFEmbedder warns when truncation leaves records with nothing but the prompt template (tiny offline model)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_fixtures import tiny_handle

from diverseevol._validation import check_not_degenerate
from diverseevol.data import ALPACA_PROMPT_NO_INPUT, InstructionRecord
from diverseevol.errors import DegenerateEmbeddingsWarning
from diverseevol.hf import HFEmbedder

torch.set_num_threads(2)

# The character tokenizer gives one token per character (plus bos), so the template head's length in
# tokens is known independently of the code under test.
HEAD_CHARS = len(ALPACA_PROMPT_NO_INPUT.split("{instruction}")[0])


@pytest.fixture(scope="module")
def handle():
    return tiny_handle(seed=0)


RECORDS = [
    InstructionRecord("add two and three", "", "five"),
    InstructionRecord("name a colour", "", "blue"),
    InstructionRecord("why is the sky blue", "", "scattering"),
    InstructionRecord("list three fruits", "", "apple pear plum"),
    InstructionRecord("write a poem", "", "roses are red"),
]


def test_truncation_inside_the_template_warns_and_embeds_identically(handle):
    short = HEAD_CHARS - 10  # cut well before the instruction
    with pytest.warns(DegenerateEmbeddingsWarning) as caught:
        emb = HFEmbedder(max_length=short, progress=False)(handle, RECORDS)
    msg = str(caught[0].message)
    assert f"5 of 5 records keep none of their own text" in msg and f"max_length={short}" in msg
    assert "Raise the embedder's max_length" in msg
    # the consequence the warning names: identical rows, which the numeric detector flags too
    np.testing.assert_allclose(emb, np.broadcast_to(emb[0], emb.shape), rtol=1e-6, atol=1e-6)
    with pytest.warns(DegenerateEmbeddingsWarning, match="5 of 5 rows"):
        check_not_degenerate(emb)


def test_truncation_that_keeps_some_own_text_does_not_warn(handle):
    # bos + head + 3 characters of the instruction: every record keeps some of its own text
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateEmbeddingsWarning)
        emb = HFEmbedder(max_length=HEAD_CHARS + 4, progress=False)(handle, RECORDS)
        full = HFEmbedder(progress=False)(handle, RECORDS)
        check_not_degenerate(full)
    assert not np.allclose(emb[0], emb[1])


def test_only_the_records_that_lost_their_text_are_counted(handle):
    # the with-input template has a longer head; at this length only those records lose their text
    with_input = [InstructionRecord("add", "two and three", "five"), InstructionRecord("sum", "1 2", "3")]
    with pytest.warns(DegenerateEmbeddingsWarning, match="2 of 7 records"):
        HFEmbedder(max_length=HEAD_CHARS + 4, progress=False)(handle, RECORDS + with_input)
