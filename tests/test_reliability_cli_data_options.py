"""Issue 22 item 12: the BOM advice names ``--encoding utf-8-sig``, so the commands that read
records (select, export, compare) have ``--encoding``, and ``--file-type`` beside ``--format``,
whose help lists every registered record format (``diverseevol.data.record_format_summaries``).

Oracles: exit codes of docs/cli.md, the records written back (the input's own lines), and the
help text against the registries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diverseevol.cli import EXIT_RUNTIME, EXIT_OK, EXIT_USAGE, main
from diverseevol.data import file_type_names, file_type_summaries, record_format_summaries

N = 12
COMMANDS = ("select", "export", "compare")


def _lines() -> list[str]:
    return [json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) + "\n" for i in range(N)]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    plain = tmp_path / "d.jsonl"
    plain.write_text("".join(_lines()))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes("\ufeff".encode() + plain.read_bytes())
    emb = tmp_path / "e.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(N, 3)).astype(np.float32))
    cfg = tmp_path / "c.toml"
    cfg.write_text('run_dir = "r"\n[data]\npath = "d.jsonl"\nembeddings = "e.npy"\n'
                   '[budget]\ninit_size = 2\nk = 2\nrounds = 2\n')
    assert main(["run", str(cfg), "--no-progress"]) == EXIT_OK
    return {"plain": plain, "bom": bom, "emb": emb, "run": tmp_path / "r", "tmp": tmp_path}


def _argv(command: str, f: dict[str, Path], data: Path, *extra: str) -> list[str]:
    out = f["tmp"] / f"out_{command}{'' if command == 'compare' else '.jsonl'}"
    if command == "select":
        return ["select", str(data), "--embeddings", str(f["emb"]), "--k", "3", "--out", str(out), *extra]
    if command == "export":
        return ["export", str(f["run"]), "--data", str(data), "--out", str(out), *extra]
    return ["compare", str(data), "--embeddings", str(f["emb"]), "--k", "3", "--pool-size", "2",
            "--samplers", "random", "--no-plots", "--out", str(out), *extra]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_bom_advice_names_an_option_the_command_has(command: str, files: dict[str, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(_argv(command, files, files["bom"])) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert "byte-order mark" in err and "--encoding utf-8-sig" in err
    code = main(_argv(command, files, files["bom"], "--encoding", "utf-8-sig"))
    assert code == EXIT_OK, capsys.readouterr().err
    if command != "compare":  # the records written are the input's own lines
        out = files["tmp"] / f"out_{command}.jsonl"
        written = out.read_text().splitlines(keepends=True)
        assert written and set(written) <= set(_lines())


@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_encoding_or_file_type_is_a_usage_error(command: str, files: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(_argv(command, files, files["plain"], "--encoding", "no-such-codec")) == EXIT_USAGE
    assert "--encoding" in capsys.readouterr().err
    assert main(_argv(command, files, files["plain"], "--file-type", "csv")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--file-type" in err and all(name in err for name in file_type_names())


@pytest.mark.parametrize("command", COMMANDS)
def test_file_type_reaches_the_loader(command: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    odd = files["tmp"] / "records.data"  # no suffix that says what it holds
    odd.write_bytes(files["plain"].read_bytes())
    capsys.readouterr()
    # JSON lines read as a Parquet table: malformed data (exit 1), so the option was used
    assert main(_argv(command, files, odd, "--file-type", "parquet")) == EXIT_RUNTIME
    assert "parquet" in capsys.readouterr().err.lower()
    assert main(_argv(command, files, odd, "--file-type", "jsonl")) == EXIT_OK, capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_format_and_file_type_help_come_from_the_registries(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main([command, "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, summary in record_format_summaries().items():
        assert f"{name}: {' '.join(summary.split())}" in text
    for name in file_type_names():
        assert name in text
    assert "--encoding" in text and "utf-8-sig" in text
    assert len(file_type_summaries()) == len(file_type_names())


def test_export_data_options_need_data(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    for option, value in (("--encoding", "utf-8-sig"), ("--file-type", "jsonl"), ("--format", "alpaca")):
        argv = ["export", str(files["run"]), "--out", str(files["tmp"] / "x.jsonl"), option, value]
        assert main(argv) == EXIT_USAGE
        assert option in capsys.readouterr().err and not (files["tmp"] / "x.jsonl").exists()
