"""Fuzz the `diverseevol` command through ``diverseevol.cli.main(argv)``.

Each case builds an argv from the real subcommands (select, vendi, report, samplers, run, compare,
export) and their flags, with random values: the tmp files of the case (good and broken data,
embeddings, index files, configs, a run directory, an earlier compare folder), missing paths,
outputs aimed at inputs (plainly, through ``..``, a symbolic link, a hard link, inside a run
directory, an output folder holding the data or files of the user), odd numbers and strings.
Data is read with or without ``--encoding`` / ``--file-type`` (a file with a byte-order mark
among the inputs). ``demo`` is left out: a valid demo trains models for minutes.

Oracle: the exit code is 0, 1 or 2; every file that existed before the call is byte-identical
afterwards (outputs may be created or replaced, never an input changed: a file named by --out /
--indices-out that is not an input, and the command's own files in a --out folder of compare or
report; a file of the user's in such a folder must survive); an error reaching the command's
boundary is a DiverseEvolError, a usage error or an OSError, and its message is not empty.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from fuzz_support import digest_tree, examples

from diverseevol import cli
from diverseevol.errors import DiverseEvolError
from diverseevol.run import EvolutionLoop

N = 12


def _write_inputs(root: Path) -> None:
    """The files every case may name; all of them are inputs that must not change."""
    recs = [{"instruction": f"task {i}", "input": "", "output": f"answer {i}"} for i in range(N)]
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (root / "data.json").write_text(json.dumps(recs))
    (root / "u2028.jsonl").write_text(
        "".join(json.dumps({**r, "input": "a\u2028b"}, ensure_ascii=False) + "\n" for r in recs),
        encoding="utf-8",
    )
    (root / "garbage.jsonl").write_bytes(b"\xff\x00{not json\n")
    (root / "bom.jsonl").write_bytes("\ufeff".encode() + (root / "data.jsonl").read_bytes())  # --encoding utf-8-sig
    (root / "empty.jsonl").write_bytes(b"")
    emb = np.random.default_rng(0).normal(size=(N, 3)).astype(np.float32)
    np.save(root / "emb.npy", emb)
    np.save(root / "emb_short.npy", emb[:-2])
    np.save(root / "emb_1d.npy", emb[:, 0])
    np.save(root / "emb_nan.npy", np.where(np.eye(N, 3, dtype=bool), np.nan, emb))
    np.save(root / "emb_zero.npy", np.zeros((N, 3)))
    np.save(root / "emb_obj.npy", np.array([None] * N, dtype=object), allow_pickle=True)
    (root / "emb_0byte.npy").write_bytes(b"")
    (root / "emb_text.npy").write_text("not a numpy file")
    (root / "emb_trunc.npy").write_bytes((root / "emb.npy").read_bytes()[:100])
    (root / "pool.json").write_text("[0, 1, 2]")
    (root / "pool.txt").write_text("3\n4\n")
    np.save(root / "pool.npy", np.array([5, 6], dtype=np.int64))
    np.save(root / "pool_u64.npy", np.array([2**64 - 1], dtype=np.uint64))
    np.save(root / "pool_frac.npy", np.array([1.5, 2.7]))
    (root / "pool_frac.json").write_text("[1.5, 2.7]")
    (root / "pool_whole.json").write_text("[1.0, 3.0]")
    (root / "pool_dup.json").write_text("[1, 1]")
    (root / "pool_range.json").write_text(f"[{N}]")
    (root / "pool_neg.txt").write_text("-1\n")
    (root / "pool_str.json").write_text('["a"]')
    (root / "pool_nested.json").write_text("[[1, 2]]")
    (root / "pool_deep.json").write_text("[" * 50_000 + "]" * 50_000)
    (root / "pool_bytes.txt").write_bytes(b"\xff\xfe\x00")
    (root / "link_data.jsonl").symlink_to("data.jsonl")
    os.link(root / "data.jsonl", root / "hard_data.jsonl")
    (root / "cmpdata").mkdir()
    (root / "cmpdata" / "runs.json").write_text(json.dumps(recs))  # DATA under a compare output's name
    (root / "mixed").mkdir()
    (root / "mixed" / "compare.csv").write_text("an earlier table")
    (root / "mixed" / "notes.txt").write_text("the user's own file")
    (root / "cmpdir").mkdir()  # an earlier compare folder: replaced whole
    for name in ("compare.csv", "compare.md", "runs.json", "labels.png"):
        (root / "cmpdir" / name).write_text(f"earlier {name}")
    run_records = fakes.make_records(20)
    (root / "runrecs.jsonl").write_text(
        "".join(json.dumps({"instruction": r.instruction, "input": r.input, "output": r.output}) + "\n"
                for r in run_records)
    )
    run = root / "runcopy"
    EvolutionLoop(
        run_records,
        trainer=fakes.FakeTrainer(),
        embedder=fakes.FakeEmbedder(),
        judge=fakes.FakeJudge(),
        init_size=4,
        k=3,
        rounds=1,
        run_dir=run,
        progress=False,
    ).run()


INPUT_NAMES = [
    "data.jsonl",
    "data.json",
    "u2028.jsonl",
    "garbage.jsonl",
    "empty.jsonl",
    "missing.jsonl",
    "runcopy",
    "bom.jsonl",
]
EMB_NAMES = ["emb.npy"] * 4 + [
    "emb_short.npy",
    "emb_1d.npy",
    "emb_nan.npy",
    "emb_zero.npy",
    "emb_obj.npy",
    "emb_0byte.npy",
    "emb_text.npy",
    "emb_trunc.npy",
    "missing.npy",
    "data.jsonl",
]
CLI_EMB_NAMES = EMB_NAMES
POOL_NAMES = [
    "pool.json",
    "pool.txt",
    "pool.npy",
    "pool_u64.npy",
    "pool_frac.npy",
    "pool_frac.json",
    "pool_whole.json",
    "pool_dup.json",
    "pool_range.json",
    "pool_neg.txt",
    "pool_str.json",
    "pool_nested.json",
    "missing.json",
    "empty.jsonl",
    "pool_deep.json",
    "pool_bytes.txt",
]
OUT_NAMES = ["out.jsonl"] * 6 + [
    "out.txt",
    "sub/out.jsonl",
    "data.jsonl",
    "emb.npy",
    "pool.json",
    "runcopy",
    "./data.jsonl",
    "runcopy/config.json",
    "out.npy",
    "link_data.jsonl",
    "hard_data.jsonl",
    "sub/../data.jsonl",
    "runcopy/../data.jsonl",
    "runcopy/rounds/round_000/pool.json",
    "runrecs.jsonl",
]
#: --out folders of compare and report: new, an earlier compare folder, one holding the data or the
#: user's files, a file, a run directory, the working directory.
FOLDER_OUT_NAMES = ["cmp_new"] * 4 + ["cmpdir"] * 2 + ["cmpdata", "mixed", "data.jsonl", "runcopy", ".", "emb.npy"]
#: The files compare and report write in their --out folder (their own: replaced; any other: kept).
OWN_FILES = {"compare": ("compare.csv", "compare.md", "runs.json", ".png"), "report": (".md", ".csv", ".png")}
INDEX_OUT_NAMES = ["idx.npy", "idx.txt", "idx.json", "out.jsonl", "data.jsonl", "pool.npy", "emb.npy"]


def rarely(n: int):
    """True once in ``n`` draws (and False for hypothesis's simplest example)."""
    return st.sampled_from([False] * (n - 1) + [True])


def usually(n: int):
    """False once in ``n`` draws."""
    return st.sampled_from([True] * (n - 1) + [False])


def mostly(good: list[str], bad: list[str]):
    """Three draws in four from ``good``: most cases get past argument parsing."""
    return st.one_of(
        st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), st.sampled_from(bad)
    )


ints = mostly(["1", "2", "3"], ["0", "-1", "12", "13", "1e3", "2.5", "x", "", "99999999999999999999"])
floats = mostly(["1", "0", "2", "0.5", "1000"], ["-1", "inf", "-inf", "nan", "1e308", "x", "1e-300"])


@st.composite
def config_file(draw) -> str:
    """A TOML config, usually valid for an embeddings-only run (no model), sometimes broken."""
    data = {
        "path": draw(st.sampled_from(["data.jsonl"] * 8 + ["missing.jsonl", "garbage.jsonl", "u2028.jsonl"])),
        "embeddings": draw(
            st.sampled_from(["emb.npy"] * 8 + ["emb_short.npy", "emb_1d.npy", "missing.npy", "emb_0byte.npy"])
        ),
    }
    if draw(rarely(6)):
        data[draw(st.sampled_from(["fields", "limit", "feilds"]))] = draw(
            st.sampled_from(["alpaca", 5, -1, "x"])
        )
    sampler = {"name": draw(st.sampled_from(["kcenter"] * 4 + ["random"] * 3 + ["nope", "margin"]))}
    if draw(st.booleans()):
        sampler["params"] = draw(
            st.sampled_from([{"metric": "cosine"}] * 3 + [{"metrc": "cosine"}, {"metric": 3}, {}])
        )
    budget = {
        "init_size": draw(st.sampled_from([2, 3] * 4 + [0, -1, 13, "2"])),
        "k": draw(st.sampled_from([2, 1] * 4 + [0, 20])),
        "rounds": draw(st.sampled_from([1, 2] * 4 + [0, -3])),
    }
    lines = [
        f'run_dir = "{draw(st.sampled_from(["run"] * 6 + ["runcopy", "data.jsonl"]))}"',
        f"seed = {draw(st.sampled_from([0, 1] * 3 + [-1, 2**40]))}",
    ]
    if draw(rarely(7)):
        lines.append(
            draw(
                st.sampled_from(
                    [
                        '[judge]\ntype = "exact_match"\npath = "data.jsonl"',
                        '[model]\nname_or_path = "./no_such_dir"',
                        "bogus = 1",
                        '[judge]\ntype = "pairwise"\n[judge.params]\napi_key = "sk-abcdefghijklmnopqrstuvw"',
                    ]
                )
            )
        )
    for name, table in (
        ("data", data),
        ("sampler", {k: v for k, v in sampler.items() if k != "params"}),
        ("budget", budget),
    ):
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    if "params" in sampler:
        lines.append("[sampler.params]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in sampler["params"].items()]
    text = "\n".join(lines) + "\n"
    mangle = draw(st.integers(0, 16))
    if mangle == 0:
        text = text[: draw(st.integers(0, len(text)))]
    elif mangle == 1:
        text = text.replace("=", ":", 1)
    return text


GENERAL = st.lists(st.sampled_from(["--debug", "-v", "-vv", "--no-progress"]), max_size=2)


@st.composite
def argvs(draw) -> tuple[list[str], str | None]:
    cmd = draw(st.sampled_from(["select"] * 4 + ["vendi"] * 3 + ["report", "samplers", "run", "run"]
                               + ["compare"] * 2 + ["export"] * 2))
    argv: list[str] = [cmd]
    cfg = None

    def maybe(flag: str, values) -> None:
        if draw(st.booleans()):
            argv.extend([flag, draw(values)])

    def data_options() -> None:  # how DATA (or export's --data) is read: select, compare, export
        if draw(rarely(3)):
            argv.extend(["--encoding", draw(mostly(["utf-8-sig", "utf-8"], ["latin-1", "no-such-codec", ""]))])
        if draw(rarely(4)):
            argv.extend(["--file-type", draw(mostly(["jsonl", "json"], ["parquet", "dataset", "csv", ""]))])

    if cmd == "select":
        argv.append(draw(st.sampled_from(INPUT_NAMES)))
        if draw(usually(9)):
            argv += ["--embeddings", draw(st.sampled_from(CLI_EMB_NAMES))]
        if draw(usually(9)):
            argv += ["--k", draw(ints)]
        if draw(usually(9)):
            argv += ["--out", draw(st.sampled_from(OUT_NAMES))]
        maybe(
            "--sampler",
            mostly(
                ["kcenter", "random", "kmeans", "facility_location"],
                ["margin", "novelsum_greedy", "nope", ""],
            ),
        )
        for _ in range(draw(st.integers(0, 2))):
            argv += [
                "--param",
                draw(
                    st.sampled_from(
                        [
                            "metric=cosine",
                            "metric=3",
                            "metrc=cosine",
                            "novalue",
                            "=1",
                            "metric=",
                            "lazy=true",
                            "n_clusters=0",
                        ]
                    )
                ),
            ]
        maybe("--pool", st.sampled_from(POOL_NAMES))
        maybe("--seed", ints)
        maybe("--indices-out", st.sampled_from(INDEX_OUT_NAMES))
        data_options()
    elif cmd == "vendi":
        if draw(usually(4)):
            argv.append(draw(st.sampled_from(INPUT_NAMES)))
        if draw(usually(9)):
            argv += ["--embeddings", draw(st.sampled_from(CLI_EMB_NAMES))]
        maybe("--q", floats)
        maybe("--indices", st.sampled_from(POOL_NAMES))
        if draw(st.booleans()):
            argv.append("--json")
    elif cmd == "report":
        argv += draw(
            st.lists(
                st.sampled_from(["runcopy", "runcopy", "missing", "data.jsonl", "."]), min_size=0, max_size=2
            )
        )
        maybe("--out", st.sampled_from(["rep", "rep", "runcopy", "data.jsonl", "runcopy/rounds", *FOLDER_OUT_NAMES]))
    elif cmd == "compare":
        argv.append(draw(mostly(["data.jsonl", "link_data.jsonl"],
                                ["cmpdata/runs.json", "garbage.jsonl", "missing.jsonl", "runcopy", "bom.jsonl"])))
        data_options()
        if draw(usually(9)):
            argv += ["--embeddings", draw(mostly(["emb.npy"], CLI_EMB_NAMES))]
        if draw(usually(9)):
            argv += ["--k", draw(ints)]
        if draw(usually(9)):
            argv += ["--out", draw(st.sampled_from(FOLDER_OUT_NAMES))]
        argv += ["--pool-size", draw(mostly(["2", "3"], ["0", "12", "-1", "x"]))]
        maybe("--samplers", mostly(["random", "kcenter,random"], ["nope", "kcenter:metrc=cosine", ""]))
        maybe("--seeds", mostly(["0", "0,1"], ["-1", "0,0", "x", ""]))
        maybe("--label", st.sampled_from(["output", "nosuch"]))
        if draw(usually(6)):
            argv.append("--no-plots")
    elif cmd == "export":
        argv.append(draw(st.sampled_from(["runcopy"] * 4 + ["missing", "data.jsonl", "cmpdir"])))
        if draw(usually(9)):
            argv += ["--out", draw(mostly(["out.jsonl", "sub/out.jsonl", "out.json"], OUT_NAMES))]
        if draw(usually(5)):
            argv += ["--data", draw(mostly(["runrecs.jsonl"], ["data.jsonl", "missing.jsonl", "garbage.jsonl"]))]
        maybe("--round", st.sampled_from(["0", "1", "7", "-1", "x"]))
        if draw(rarely(5)):
            argv += ["--format", draw(st.sampled_from(["alpaca", "alpacca"]))]
        data_options()
        if draw(rarely(4)):
            argv.append("--dataset-info")
    elif cmd == "samplers":
        if draw(st.booleans()):
            argv.append(draw(st.sampled_from(["list", "show", ""])))
        if draw(st.booleans()):
            argv.append("--json")
    else:
        cfg = draw(config_file())
        argv.append(draw(mostly(["cfg.toml"], ["missing.toml", "data.jsonl", "cfg.yaml"])))
        if draw(st.booleans()):
            argv.append("--check")
        maybe("--sampler", st.sampled_from(["random", "kcenter", "nope"]))
        maybe("--run-dir", st.sampled_from(["run2", "runcopy"]))
        if draw(rarely(5)):
            argv.append("--overwrite")
    if draw(rarely(21)):
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(["--bogus", "--k", "-", "--help"])))
    pos = draw(st.sampled_from([len(argv), 1, 0]))  # general options before or after the command's own
    argv[pos:pos] = draw(GENERAL)
    return argv, cfg


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_cli_inputs")
    _write_inputs(root)
    return root


def _copy_inputs(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True)


@examples(100)
@given(case=argvs())
def test_cli_exit_code_and_inputs_unchanged(inputs, case) -> None:
    argv, cfg = case
    seen: list[BaseException] = []
    real_one_line = cli._one_line

    def record(exc: BaseException) -> str:
        seen.append(exc)
        return real_one_line(exc)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _copy_inputs(inputs, root)
        if cfg is not None:
            (root / "cfg.toml").write_text(cfg)
            (root / "cfg.yaml").write_bytes(b"\x00\xff\xfe binary yaml")
        label = next((a for a in argv if not a.startswith("-")), "")
        folder_outputs = OWN_FILES.get(label, ())
        argv = [
            str(root / a)
            if a
            and (root / a.split("/")[0]).exists()
            or a.startswith(("missing", "out", "sub", "idx", "rep", "run2"))
            else a
            for a in argv
        ]
        before = digest_tree(root)
        old_cwd = Path.cwd()
        old_progress = os.environ.get("DIVERSEEVOL_PROGRESS")  # --no-progress sets it for the process
        cli._one_line = record
        try:
            os.chdir(root)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rc = cli.main(argv)
        finally:
            os.chdir(old_cwd)
            cli._one_line = real_one_line
            if old_progress is None:
                os.environ.pop("DIVERSEEVOL_PROGRESS", None)
            else:
                os.environ["DIVERSEEVOL_PROGRESS"] = old_progress
        event(f"{label} exit {rc}")
        assert rc in (0, 1, 2), f"exit code {rc} for {argv}"
        after = digest_tree(root)
        overwrite = "--overwrite" in argv
        # A file the command was asked to write (an --out / --indices-out target that is not one of its inputs) may
        # be replaced, as `cp` replaces its target (the name given, not what a link there points to); every other
        # pre-existing file must stay byte-identical.
        real_root = os.path.realpath(root)

        def spelled(a: str) -> str | None:  # the path as written, `..` folded, links not followed
            path = os.path.normpath(os.path.join(real_root, a))
            return os.path.relpath(path, real_root) if path == real_root or path.startswith(real_root + os.sep) else None

        def resolved(a: str) -> str | None:  # what the path names after following links
            path = os.path.realpath(os.path.join(real_root, a))
            return os.path.relpath(path, real_root) if path == real_root or path.startswith(real_root + os.sep) else None

        targets = {
            t for i, a in enumerate(argv[:-1]) if a in ("--out", "--indices-out") and (t := spelled(argv[i + 1]))
        }
        inputs_named = {
            t
            for i, a in enumerate(argv)
            if (i == 0 or argv[i - 1] not in ("--out", "--indices-out")) and not a.startswith("-")
            for t in (spelled(a), resolved(a))
            if t is not None
        }
        replaceable = targets - inputs_named

        def own_output(p: str) -> bool:  # a file compare/report writes in its --out folder (replaced whole)
            for t in replaceable if folder_outputs else ():
                inside = p if t == "." else (p[len(t) + 1:] if p.startswith(t + "/") else "")
                if inside and "/" not in inside and inside.endswith(folder_outputs):
                    return True
            return False

        changed = [
            p
            for p, h in before.items()
            if after.get(p) != h
            and not (overwrite and p.startswith("runcopy/"))
            and not p.endswith(".lock")
            and p not in replaceable
            and not own_output(p)
        ]
        assert not changed, f"{argv} changed input files {changed}"
        for exc in seen:
            assert isinstance(exc, (DiverseEvolError, cli.UsageError, OSError)), (
                f"{argv}: untyped {type(exc).__module__}.{type(exc).__qualname__} at the CLI boundary: {exc}"
            )
            assert str(exc).strip(), f"{argv}: {type(exc).__qualname__} with an empty message"
