"""diverseevol.render: the Alpaca template (as before), chat templates from a real tokenizer (SmolLM2-Instruct's),
tool turns, and the assistant-only loss mask of every assistant turn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shared_data import shared_data_dir

from diverseevol.data import InstructionRecord, Turn, format_prompt, load_instructions
from diverseevol.errors import ValidationError
from diverseevol.render import chat_messages, chat_tools, encode_records, record_text, render_record

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from diverseevol.hf._records import IGNORE_INDEX, tokenize_records  # noqa: E402
from diverseevol.hf.tiny import build_char_tokenizer  # noqa: E402

GLAIVE = shared_data_dir() / "llamafactory_demo" / "glaive_toolcall_en_demo.json"
SMOL_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


def _smollm2_gguf():
    try:
        from diverseevol.hf.gguf import smollm2_gguf_path

        return smollm2_gguf_path()
    except Exception as exc:  # noqa: BLE001 - package not installed
        pytest.skip(f"SmolLM2 GGUF not available: {exc}")


@pytest.fixture(scope="module")
def smol_template() -> str:
    """The chat template stored in the SmolLM2-135M-Instruct GGUF file, read with the gguf package."""
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(_smollm2_gguf()))
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


@pytest.fixture(scope="module")
def char_tok(smol_template):
    tok = build_char_tokenizer()
    tok.chat_template = smol_template
    return tok


@pytest.fixture(scope="module")
def smol_tok():
    """SmolLM2-Instruct's real tokenizer (transformers' GGUF loading)."""
    from transformers import AutoTokenizer

    path = _smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def _chatml(turns):
    """ChatML as SmolLM2's template writes it, by hand: the default system turn when none is given."""
    out = "" if turns[0][0] == "system" else SMOL_SYSTEM
    return out + "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)


def _chat(turns, **kw):
    return InstructionRecord(turns[0][1], "", turns[-1][1], messages=tuple(Turn(r, c) for r, c in turns), **kw)


# ---- Alpaca template -------------------------------------------------------------------------
def test_alpaca_single_turn_is_the_papers_prompt_and_response():
    for rec in (InstructionRecord("Add.", "2 and 3", "5"), InstructionRecord("Name a colour.", "", "Blue")):
        r = render_record(rec)
        assert r.template == "alpaca"
        assert r.segments == ((format_prompt(rec), False), (rec.output, True))
        assert r.prompt == format_prompt(rec)


def test_alpaca_tokens_unchanged_from_separate_prompt_and_response_encoding():
    tok = build_char_tokenizer()
    recs = [InstructionRecord("Add.", "2 and 3", "5"), InstructionRecord("Say hi.", "", "hi there")]
    t = tokenize_records(tok, recs, max_length=512)
    for i, rec in enumerate(recs):
        prompt = tok(format_prompt(rec), add_special_tokens=True)["input_ids"]
        resp = tok(rec.output, add_special_tokens=False)["input_ids"]
        assert t.input_ids[i] == prompt + resp + [tok.eos_token_id]
        assert t.labels(i) == [IGNORE_INDEX] * len(prompt) + resp + [tok.eos_token_id]
    assert t.loss_mask is None  # single turns keep the response_start form


def test_alpaca_system_and_history_every_response_trained():
    rec = load_instructions([{"instruction": "And 3+3?", "input": "", "output": "6", "system": "You add numbers.",
                              "history": [["What is 1+1?", "2"], ["And 2+2?", "4"]]}])[0]
    r = render_record(rec)
    assert r.segments == (
        ("You add numbers.\n\n### Instruction:\nWhat is 1+1?\n\n### Response:", False), ("2", True),
        ("\n\n### Instruction:\nAnd 2+2?\n\n### Response:", False), ("4", True),
        ("\n\n### Instruction:\nAnd 3+3?\n\n### Response:", False), ("6", True),
    )
    tok = build_char_tokenizer()
    t = tokenize_records(tok, [rec])
    trained = [i for i, x in zip(t.input_ids[0], t.labels(0)) if x != IGNORE_INDEX]
    eos = tok.eos_token_id
    assert trained == [*tok("2", add_special_tokens=False)["input_ids"], eos,
                       *tok("4", add_special_tokens=False)["input_ids"], eos,
                       *tok("6", add_special_tokens=False)["input_ids"], eos]


def test_chat_record_in_alpaca_template():
    rec = _chat([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"), ("assistant", "Ciao")])
    r = render_record(rec, template="alpaca")
    assert [s for s in r.segments if s[1]] == [("Hello", True), ("Ciao", True)]
    assert r.segments[0] == ("Be brief.\n\n### Instruction:\nHi\n\n### Response:", False)


# ---- chat template (SmolLM2-Instruct's) --------------------------------------------------------
def test_chat_template_text_and_mask_every_assistant_turn(char_tok):
    turns = [("user", "Hi"), ("assistant", "Hello!"), ("user", "2+2?"), ("assistant", "4")]
    rec = _chat(turns)
    r = render_record(rec, char_tok)
    assert r.template == "chat" and r.text == _chatml(turns)
    assert [t for t, a in r.segments if a] == ["Hello!<|im_end|>\n", "4<|im_end|>\n"]
    ids, masks = encode_records(char_tok, [rec])
    text = char_tok.decode(ids[0])
    assert text == _chatml(turns)  # the char tokenizer adds no bos for the chat template
    trained = char_tok.decode([t for t, m in zip(ids[0], masks[0]) if m])
    assert trained == "Hello!<|im_end|>\n4<|im_end|>\n"
    t = tokenize_records(char_tok, [rec])
    assert t.loss_mask is not None and t.labels(0) == [x if m else IGNORE_INDEX for x, m in zip(ids[0], masks[0])]
    assert int(t.response_start[0]) == _chatml(turns).index("Hello!")


def test_system_turn_replaces_the_templates_default(char_tok):
    turns = [("system", "You are terse."), ("user", "Hi"), ("assistant", "Yo")]
    assert render_record(_chat(turns), char_tok).text == _chatml(turns)


def test_alpaca_record_with_chat_template_when_asked(char_tok):
    rec = InstructionRecord("Add.", "2 and 3", "5")
    r = render_record(rec, char_tok, template="chat")
    assert r.text == _chatml([("user", "Add.\n2 and 3"), ("assistant", "5")])
    assert [t for t, a in r.segments if a] == ["5<|im_end|>\n"]


def test_no_chat_template_is_a_clear_error():
    rec = _chat([("user", "Hi"), ("assistant", "Yo")])
    with pytest.raises(ValidationError, match="no chat_template.*template='alpaca'"):
        render_record(rec, build_char_tokenizer())
    with pytest.raises(ValidationError, match="template must be one of"):
        render_record(rec, template="llama")


@pytest.mark.skipif(not GLAIVE.is_file(), reason=f"shared data not found: {GLAIVE}")
def test_tool_turns_as_the_smollm2_template_renders_them(char_tok):
    raw = json.loads(GLAIVE.read_text(encoding="utf-8"))[0]
    rec = load_instructions([raw])[0]
    r = render_record(rec, char_tok)
    conv = raw["conversations"]
    role = {"human": "user", "gpt": "assistant", "function_call": "assistant", "observation": "tool"}
    # SmolLM2's template knows neither tool_calls nor tools: the call is the assistant's text, the result a tool turn
    assert r.text == _chatml([(role[t["from"]], t["value"]) for t in conv])
    trained = [t for t, a in r.segments if a]
    assert trained == [t["value"] + "<|im_end|>\n" for t in conv if t["from"] in ("gpt", "function_call")]
    assert not any(t["value"] in "".join(trained) for t in conv if t["from"] in ("observation", "human"))


def test_template_that_knows_tool_calls_gets_them_structured():
    template = (
        "{% if tools %}TOOLS:{{ tools | map(attribute='function.name') | join(',') }}\n{% endif %}"
        "{% for m in messages %}[{{ m.role }}]{% if m.tool_calls %}"
        "{% for c in m.tool_calls %}CALL {{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}"
        "{% else %}{{ m.content }}{% endif %}[/{{ m.role }}]\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    tok = build_char_tokenizer("[]")
    tok.chat_template = template
    rec = load_instructions([{
        "conversations": [
            {"from": "human", "value": "Weather in Oslo?"},
            {"from": "function_call", "value": json.dumps({"name": "weather", "arguments": {"city": "Oslo"}})},
            {"from": "observation", "value": "{\"temp\": 3}"},
            {"from": "gpt", "value": "3 degrees."},
        ],
        "tools": json.dumps([{"name": "weather", "description": "d", "parameters": {}}]),
    }])[0]
    assert chat_tools(rec) == [{"type": "function", "function": {"name": "weather", "description": "d",
                                                                  "parameters": {}}}]
    r = render_record(rec, tok)
    assert r.text == (
        "TOOLS:weather\n[user]Weather in Oslo?[/user]\n[assistant]CALL weather({\"city\": \"Oslo\"})[/assistant]\n"
        "[tool]{\"temp\": 3}[/tool]\n[assistant]3 degrees.[/assistant]\n"
    )
    assert [t for t, a in r.segments if a] == [
        "CALL weather({\"city\": \"Oslo\"})[/assistant]\n", "3 degrees.[/assistant]\n"
    ]


def test_openai_messages_with_tool_calls_and_text_parts():
    rec = load_instructions([{
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Wie spät"}, {"type": "image_url", "image_url": {}},
                                         {"type": "text", "text": "ist es?"}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{\"tz\": \"CET\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
            {"role": "assistant", "content": "Es ist 12 Uhr."},
        ],
        "source": "handmade",
    }])[0]
    assert rec.format == "openai" and rec.instruction == "Wie spät\nist es?" and rec.output == "Es ist 12 Uhr."
    msgs = chat_messages(rec)
    assert msgs[1] == {"role": "assistant", "content": "",
                       "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": {"tz": "CET"}}}]}
    assert chat_messages(rec, structured_tool_calls=False)[1]["content"] == '[{"name": "now", "arguments": {"tz": "CET"}}]'


def test_record_text_for_sentence_encoders():
    assert record_text(InstructionRecord("Q?", "ctx", "A.")) == "Q?\n\nctx\n\nA."
    assert record_text(_chat([("user", "Hi"), ("assistant", "Yo")])) == "Hi\n\nYo"


# ---- a real tokenizer --------------------------------------------------------------------------
@pytest.mark.skipif(not GLAIVE.is_file(), reason=f"shared data not found: {GLAIVE}")
def test_smollm2_tokenizer_mask_covers_assistant_turns_only(smol_tok):
    raw = json.loads(GLAIVE.read_text(encoding="utf-8"))[:3]
    recs = load_instructions(raw)
    t = tokenize_records(smol_tok, recs, max_length=4096)
    im_end = smol_tok.convert_tokens_to_ids("<|im_end|>")
    for i, r in enumerate(raw):
        ids = t.input_ids[i]
        # the whole sequence is the template's text, special tokens as single ids
        assert smol_tok.decode(ids) == smol_tok.apply_chat_template(chat_messages(recs[i], structured_tool_calls=False),
                                                                   tokenize=False)
        mask = t.mask(i)
        runs = np.split(np.arange(len(ids)), np.flatnonzero(np.diff(mask.astype(int))) + 1)
        trained = [smol_tok.decode([ids[p] for p in run]) for run in runs if mask[run[0]]]
        expected = [x["value"] for x in r["conversations"] if x["from"] in ("gpt", "function_call")]
        assert trained == [e + "<|im_end|>\n" for e in expected]
        assert sum(1 for p in np.flatnonzero(mask) if ids[p] == im_end) == len(expected)
        assert t.labels(i).count(IGNORE_INDEX) == len(ids) - int(mask.sum())


def test_scores_average_over_assistant_tokens_only(char_tok):
    torch = pytest.importorskip("torch")
    from diverseevol.hf import HFScorer
    from diverseevol.hf.tiny import build_tiny_llama

    model = build_tiny_llama(char_tok, seed=0)
    recs = [_chat([("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"), ("assistant", "Ciao")]),
            InstructionRecord("Add.", "", "5")]
    got = HFScorer(batch_size=2, progress=False, tokenizer=char_tok)(model, recs)
    t = tokenize_records(char_tok, recs)
    for i in range(len(recs)):
        ids = torch.tensor([t.input_ids[i]])
        with torch.no_grad():
            probs = torch.softmax(model(input_ids=ids).logits[0].double(), -1)
        targets = [p for p in range(1, ids.shape[1]) if t.mask(i)[p]]
        top = [probs[p - 1].max().item() for p in targets]
        assert got["confidence"][i] == pytest.approx(np.mean(top), rel=1e-4)
