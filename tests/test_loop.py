"""EvolutionLoop with pure-numpy fakes: both modes, every built-in sampler, metrics, callbacks,
validation, multi-process protocol. Oracles: brute-force K-Center, hand-written uncertainty and
random selection, Vendi from an explicit eigen-decomposition."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import loop_fakes as fakes
from kcenter_oracle import kcenter_oracle

from diverseevol.data import InstructionRecord
from diverseevol.errors import MissingSignalError, PoolExhaustedError, UnknownSamplerError, ValidationError
from diverseevol.run import METRIC_KEYS, EvolutionLoop, EvolutionResult, initial_pool, round_rng
from diverseevol.samplers.registry import list_samplers

BUILTINS = ["random", "kcenter", "least_confidence", "margin", "entropy"]


@pytest.fixture(autouse=True)
def _fast_disk(monkeypatch):
    monkeypatch.setenv("DIVERSEEVOL_FSYNC", "0")


def make_loop(tmp_path, **kw):
    data = kw.pop("data", None) or fakes.make_records()
    params = {
        "trainer": fakes.FakeTrainer(),
        "embedder": fakes.FakeEmbedder(),
        "scorer": fakes.FakeScorer(),
        "judge": fakes.FakeJudge(),
        "init_size": 6,
        "k": 5,
        "rounds": 3,
        "seed": 7,
        "run_dir": tmp_path / "run",
        "progress": False,
    }
    params.update(kw)
    return EvolutionLoop(data, **params)


# ---- oracles -------------------------------------------------------------------------------
def oracle_run(sampler, mode="iterative", init_size=6, k=5, rounds=3, seed=7, metric="euclidean"):
    """Algorithm 1 written out with the fakes, independent of the loop's code paths."""
    records = fakes.make_records()
    n = len(records)
    emb_fn, score_fn = fakes.FakeEmbedder(), fakes.FakeScorer()
    pool = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,))).choice(
        n, init_size, replace=False
    )
    pools = [pool]
    one_time = None
    for t in range(rounds):
        model = fakes.model_from_rows(list(pool), t)
        if mode == "one_time":
            if one_time is None:
                one_time = _oracle_select(
                    sampler, emb_fn, score_fn, model, records, pool, k * rounds, seed, t, metric
                )
            new = one_time[t * k : (t + 1) * k]
        else:
            new = _oracle_select(sampler, emb_fn, score_fn, model, records, pool, k, seed, t, metric)
        pool = np.concatenate([pool, new])
        pools.append(pool)
    return pools


def _oracle_select(sampler, emb_fn, score_fn, model, records, pool, k, seed, t, metric):
    n = len(records)
    cand = np.setdiff1d(np.arange(n), pool)
    if sampler == "kcenter":
        return kcenter_oracle(emb_fn(model, records), pool, None, k, metric)[0]
    if sampler == "random":
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, t)))
        return cand[rng.choice(cand.size, size=k, replace=False)]
    key, sign = {"least_confidence": ("confidence", 1), "margin": ("margin", 1), "entropy": ("entropy", -1)}[
        sampler
    ]
    values = score_fn(model, records)[key][cand]
    return cand[np.argsort(sign * values, kind="stable")[:k]]


def vendi_oracle(X):
    X = np.asarray(X, dtype=np.float64)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    w = np.linalg.eigvalsh(X @ X.T / len(X))
    w = w[w > 1e-12]
    return float(np.exp(-(w * np.log(w)).sum()))


# ---- modes and samplers --------------------------------------------------------------------
def test_builtins_are_registered():
    assert set(BUILTINS) <= set(list_samplers())


@pytest.mark.parametrize("sampler", BUILTINS)
@pytest.mark.parametrize("mode", ["iterative", "one_time"])
def test_every_builtin_sampler_matches_oracle(tmp_path, sampler, mode):
    loop = make_loop(tmp_path, sampler=sampler, mode=mode)
    result = loop.run()
    expected = oracle_run(sampler, mode)
    assert len(result.pools) == 4
    for got, want in zip(result.pools, expected):
        np.testing.assert_array_equal(got, want)
    for t in range(3):
        assert np.array_equal(result.pools[t + 1][: len(result.pools[t])], result.pools[t])
        assert len(np.unique(result.pools[t + 1])) == len(result.pools[t + 1])
    assert [len(n) for n in result.new_indices] == [5, 5, 5]
    assert [r["round"] for r in result.metrics] == [0, 1, 2, 3]
    assert loop.trainer.calls == [0, 1, 2, 3]  # T + 1 trainings, the last on P_T
    assert loop.judge.calls == [0, 1, 2, 3]
    assert result.finished and result.config["sampler"] == sampler and result.config["mode"] == mode


def test_iterative_and_one_time_differ(tmp_path):
    it = make_loop(tmp_path / "a", mode="iterative").run()
    ot = make_loop(tmp_path / "b", mode="one_time").run()
    np.testing.assert_array_equal(it.pools[1], ot.pools[1])  # both select S_0 with M_0
    assert not np.array_equal(it.pools[-1], ot.pools[-1])


def test_one_time_selects_once_and_slices(tmp_path):
    emb = fakes.FakeEmbedder()
    loop = make_loop(tmp_path, mode="one_time", embedder=emb, vendi=False)
    result = loop.run()
    assert emb.calls == [0]  # one embedding pass, with M_0
    picks, radii = kcenter_oracle(
        emb(fakes.model_from_rows(list(result.pools[0]), 0), fakes.make_records()), result.pools[0], None, 15
    )
    np.testing.assert_array_equal(np.concatenate(result.new_indices), picks)
    np.testing.assert_allclose(np.concatenate(result.radii), radii, rtol=1e-5)


def test_kcenter_cosine_and_radii(tmp_path):
    result = make_loop(tmp_path, sampler_params={"metric": "cosine"}).run()
    for got, want in zip(result.pools, oracle_run("kcenter", metric="cosine")):
        np.testing.assert_array_equal(got, want)
    assert result.config["sampler_params"]["metric"] == "cosine"
    assert result.config["covering_radius_metric"] == "cosine"


def test_sampler_instance_accepted(tmp_path):
    from diverseevol.samplers.registry import get_sampler

    result = make_loop(tmp_path, sampler=get_sampler("margin")).run()
    np.testing.assert_array_equal(result.pools[-1], oracle_run("margin")[-1])


# ---- what gets computed ----------------------------------------------------------------------
def test_random_never_embeds_or_scores(tmp_path):
    emb, sc = fakes.FakeEmbedder(), fakes.FakeScorer()
    ref = fakes.base_features()
    result = make_loop(tmp_path, sampler="random", embedder=emb, scorer=sc, reference_embeddings=ref).run()
    assert emb.calls == [] and sc.calls == []
    assert all(r["vendi"] is None and r["covering_radius"] is None for r in result.metrics)
    for row, pool in zip(result.metrics, result.pools):
        assert row["vendi_reference"] == pytest.approx(vendi_oracle(ref[pool]), rel=1e-9)


def test_random_with_vendi_true_embeds_every_round(tmp_path):
    emb = fakes.FakeEmbedder()
    result = make_loop(tmp_path, sampler="random", embedder=emb, vendi=True).run()
    assert emb.calls == [0, 1, 2, 3]
    assert all(r["vendi"] is not None for r in result.metrics)


def test_uncertainty_scores_only(tmp_path):
    emb, sc = fakes.FakeEmbedder(), fakes.FakeScorer()
    make_loop(tmp_path, sampler="margin", embedder=emb, scorer=sc).run()
    assert emb.calls == [] and sc.calls == [0, 1, 2]  # no scoring after the final training
    assert (tmp_path / "run" / "rounds" / "round_001" / "scores" / "margin.npy").is_file()


def test_kcenter_embeds_the_final_round_only_for_vendi_true(tmp_path):
    emb = fakes.FakeEmbedder()
    result = make_loop(tmp_path / "a", embedder=emb).run()
    assert emb.calls == [0, 1, 2]  # the final round selects nothing: no pass only for its metrics
    assert [r["vendi"] is None for r in result.metrics] == [False, False, False, True]
    emb2 = fakes.FakeEmbedder()
    make_loop(tmp_path / "b", embedder=emb2, vendi=False).run()
    assert emb2.calls == [0, 1, 2]
    emb3 = fakes.FakeEmbedder()
    result = make_loop(tmp_path / "c", embedder=emb3, vendi=True).run()
    assert emb3.calls == [0, 1, 2, 3] and all(r["vendi"] is not None for r in result.metrics)


# ---- metrics ---------------------------------------------------------------------------------
def test_metrics_rows_against_oracles(tmp_path):
    emb_fn = fakes.FakeEmbedder()
    result = make_loop(tmp_path, vendi=True).run()  # vendi=True: the final round is measured too
    records = fakes.make_records()
    for t, (row, pool) in enumerate(zip(result.metrics, result.pools)):
        assert list(row)[: len(METRIC_KEYS)] == list(METRIC_KEYS)
        emb = emb_fn(fakes.model_from_rows(list(pool), t), records).astype(np.float64)
        assert row["pool_size"] == len(pool)
        assert row["n_new"] == (5 if t < 3 else 0)
        assert row["vendi"] == pytest.approx(vendi_oracle(emb[pool]), rel=1e-6)
        cand = np.setdiff1d(np.arange(len(records)), pool)
        dist = np.sqrt(((emb[cand][:, None, :] - emb[pool][None]) ** 2).sum(-1)).min(axis=1)
        assert row["covering_radius"] == pytest.approx(dist.max(), rel=1e-5)
        assert row["pool_sq_norm_mean"] == pytest.approx((emb[pool] ** 2).sum(1).mean(), rel=1e-6)
        assert row["all_sq_norm_mean"] == pytest.approx((emb**2).sum(1).mean(), rel=1e-6)
        model = fakes.model_from_rows(list(pool), t)
        assert row["accuracy"] == pytest.approx(np.tanh(len(pool) / 50))
        assert row["norm"] == pytest.approx(np.linalg.norm(model["center"]))
        for key in ("time_train_s", "time_embed_s", "time_score_s", "time_select_s", "time_judge_s"):
            assert row[key] >= 0.0
    # radii: the k-center picks' radii are non-increasing and the first equals the covering radius
    for t, radii in enumerate(result.radii):
        assert np.all(np.diff(radii) <= 1e-9)
        assert radii[0] == pytest.approx(result.metrics[t]["covering_radius"])
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk == result.metrics


def test_judge_keys_that_clash_are_prefixed(tmp_path):
    result = make_loop(
        tmp_path, sampler="random", judge=lambda m, t: {"round": 99, "pool_size": 1.5, "rs": 80.0}
    ).run()
    row = result.metrics[0]
    assert (
        row["round"] == 0 and row["judge/round"] == 99 and row["judge/pool_size"] == 1.5 and row["rs"] == 80.0
    )


def test_to_pandas_and_load(tmp_path):
    result = make_loop(tmp_path).run()
    df = result.to_pandas()
    assert list(df["pool_size"]) == [6, 11, 16, 21]
    loaded = EvolutionResult.load(tmp_path / "run")
    assert loaded.finished and loaded.metrics == result.metrics and loaded.config == result.config
    for a, b in zip(loaded.pools, result.pools):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.radii, result.radii):
        np.testing.assert_allclose(a, b)
    assert [p.name for p in loaded.models] == ["model"] * 4
    assert isinstance(result.models[0], dict)  # what the trainer returned
    assert "pool_sizes=[6, 11, 16, 21]" in repr(loaded)


def test_keep_models_false_gives_paths(tmp_path):
    result = make_loop(tmp_path, sampler="random", keep_models=False).run()
    assert all(isinstance(m, Path) and m.is_dir() for m in result.models)


def test_callbacks(tmp_path):
    events = []

    class Recorder:
        def on_round_start(self, t, pool):
            events.append(("start", t, len(pool)))

        def on_round_end(self, t, row):
            events.append(("end", t, row["pool_size"]))

    result = make_loop(
        tmp_path,
        callbacks=[Recorder()],
        on_selected=lambda t, new, radii: events.append(
            ("selected", t, len(new), None if radii is None else len(radii))
        ),
    ).run()
    assert events[:3] == [("start", 0, 6), ("selected", 0, 5, 5), ("end", 0, 6)]
    assert events[-3:] == [("start", 3, 21), ("selected", 3, 0, None), ("end", 3, 21)]
    assert len(events) == 12 and result.finished


def test_data_from_file_and_dicts(tmp_path):
    rows = [
        {"instruction": r.instruction, "input": r.input, "output": r.output} for r in fakes.make_records()
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    a = make_loop(tmp_path / "a", data=str(path), sampler="margin").run()
    b = make_loop(tmp_path / "b", data=rows, sampler="margin").run()
    np.testing.assert_array_equal(a.pools[-1], b.pools[-1])
    assert a.data == b.data


def test_no_run_dir_uses_a_temporary_directory(tmp_path):
    result = make_loop(tmp_path, run_dir=None, sampler="random").run()
    assert result.run_dir is not None and (result.run_dir / "config.json").is_file()


def test_secrets_never_written(tmp_path):
    class SecretTrainer(fakes.FakeTrainer):
        def get_config(self):
            return {"lr": 2e-5, "hf_token": "hf_SECRET1", "max_tokens": 512}

    make_loop(
        tmp_path,
        sampler="random",
        trainer=SecretTrainer(),
        tags={"OPENAI_API_KEY": "sk-SECRET2", "note": "x"},
    ).run()
    text = "".join(p.read_text() for p in (tmp_path / "run").rglob("*.json"))
    assert "SECRET" not in text
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert cfg["components"]["trainer"]["params"]["max_tokens"] == 512
    assert cfg["tags"] == {"OPENAI_API_KEY": "<redacted>", "note": "x"}


def test_cache_embeddings_writes_npy(tmp_path):
    make_loop(tmp_path, cache_embeddings=True).run()
    emb = np.load(tmp_path / "run" / "rounds" / "round_002" / "embeddings.npy", allow_pickle=False)
    assert emb.shape == (fakes.N_RECORDS, fakes.DIM) and emb.dtype == np.float32


# ---- validation ------------------------------------------------------------------------------
def test_validation_errors(tmp_path):
    recs = fakes.make_records()
    t = fakes.FakeTrainer()
    small = {"init_size": 5, "k": 5, "rounds": 2}
    with pytest.raises(MissingSignalError, match="embedder"):
        EvolutionLoop(recs, trainer=t, **small, sampler="kcenter")
    with pytest.raises(MissingSignalError, match="margin"):
        EvolutionLoop(recs, trainer=t, **small, sampler="margin")
    with pytest.raises(PoolExhaustedError, match="80"):
        EvolutionLoop(recs, trainer=t, sampler="random", init_size=10, k=10, rounds=8)
    with pytest.raises(ValidationError, match="mode"):
        EvolutionLoop(recs, trainer=t, **small, sampler="random", mode="once")
    with pytest.raises(ValidationError, match="init_size"):
        EvolutionLoop(recs, trainer=t, sampler="random", init_size=0)
    with pytest.raises(ValidationError, match="k must"):
        EvolutionLoop(recs, trainer=t, sampler="random", k=-1)
    with pytest.raises(ValidationError, match="reference_embeddings"):
        EvolutionLoop(recs, trainer=t, **small, sampler="random", reference_embeddings=np.ones((3, 2)))
    with pytest.raises(UnknownSamplerError, match="kcenter"):
        EvolutionLoop(recs, trainer=t, **small, sampler="kcentre")
    with pytest.raises(ValidationError, match="callable"):
        EvolutionLoop(recs, trainer="not callable", sampler="random", **small)


def test_bad_embedder_and_scorer_outputs(tmp_path):
    loop = make_loop(tmp_path / "a", embedder=lambda m, r: np.ones((3, 2)))
    with pytest.raises(ValidationError, match="3 rows"):
        loop.run()
    loop = make_loop(tmp_path / "b", sampler="margin", scorer=lambda m, r: {"confidence": np.ones(80)})
    with pytest.raises(MissingSignalError, match="margin"):
        loop.run()
    loop = make_loop(tmp_path / "c", sampler="margin", scorer=lambda m, r: {"margin": np.ones(5)})
    with pytest.raises(ValidationError, match=r"\(80,\)"):
        loop.run()


def test_round_rng_and_initial_pool_are_pure_functions_of_the_seed():
    np.testing.assert_array_equal(initial_pool(100, 10, 3), initial_pool(100, 10, 3))
    assert not np.array_equal(initial_pool(100, 10, 3), initial_pool(100, 10, 4))
    assert round_rng(3, 1).integers(1 << 30) == round_rng(3, 1).integers(1 << 30)
    assert round_rng(3, 1).integers(1 << 30) != round_rng(3, 2).integers(1 << 30)


def test_rounds_zero_trains_once(tmp_path):
    loop = make_loop(tmp_path, rounds=0)
    result = loop.run()
    assert loop.trainer.calls == [0] and len(result.pools) == 1 and result.new_indices == []


def test_records_sequence_used_as_is(tmp_path):
    recs = [InstructionRecord(f"task {i}", "", "x") for i in range(80)]
    loop = make_loop(tmp_path, data=recs, sampler="random")
    assert loop.records == recs


# ---- multi-process protocol ----------------------------------------------------------------
class ThreadComm:
    """A two-'process' communicator over threads, to exercise the rank protocol in-process."""

    def __init__(self, rank, shared):
        self.rank, self.world_size, self._shared = rank, 2, shared

    def broadcast_object(self, obj, src=0):
        if self.rank == src:
            self._shared["slot"] = obj
        self._shared["barrier"].wait()
        value = self._shared["slot"]
        self._shared["barrier"].wait()
        return value

    def barrier(self):
        self._shared["barrier"].wait()


def test_two_ranks_agree_and_only_rank0_writes(tmp_path):
    shared = {"barrier": threading.Barrier(2, timeout=20)}
    loops = [make_loop(tmp_path, comm=ThreadComm(r, shared), cache_embeddings=True) for r in (0, 1)]
    results, errors = [None, None], []

    def work(r):
        try:
            results[r] = loops[r].run()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    for a, b, want in zip(results[0].pools, results[1].pools, oracle_run("kcenter")):
        np.testing.assert_array_equal(a, want)
        np.testing.assert_array_equal(b, want)
    assert results[0].metrics == results[1].metrics
    for lp in loops:  # every rank trains, embeds and judges
        assert (
            lp.trainer.calls == [0, 1, 2, 3]
            and lp.embedder.calls == [0, 1, 2]  # the final round selects nothing: not embedded
            and lp.judge.calls == [0, 1, 2, 3]
        )


def test_world_size_env_selects_torch_communicator(monkeypatch):
    from diverseevol.comm import LocalCommunicator, TorchCommunicator, resolve_communicator

    pytest.importorskip("torch")  # resolve_communicator requires torch for WORLD_SIZE > 1
    sentinel = LocalCommunicator()
    monkeypatch.setattr(TorchCommunicator, "from_env", classmethod(lambda cls: sentinel))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert resolve_communicator(None) is sentinel
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert isinstance(resolve_communicator(None), LocalCommunicator)
    with pytest.raises(ValidationError, match="broadcast_object"):
        resolve_communicator(object())


def test_core_imports_stay_light():
    import subprocess

    code = (
        "import sys, diverseevol.run.loop, diverseevol.data, diverseevol.run.directory, diverseevol.protocols;"
        "heavy = [m for m in ('torch', 'transformers', 'pandas', 'datasets', 'faiss', 'tqdm') if m in sys.modules];"
        "print(heavy); sys.exit(bool(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rank0_errors_reach_every_rank(tmp_path):
    shared = {"barrier": threading.Barrier(2, timeout=20)}
    bad = lambda model, records: np.ones((3, 2))  # wrong number of rows
    loops = [make_loop(tmp_path, comm=ThreadComm(r, shared), embedder=bad) for r in (0, 1)]
    errors: list[BaseException | None] = [None, None]

    def work(r):
        try:
            loops[r].run()
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors[r] = exc

    threads = [threading.Thread(target=work, args=(r,)) for r in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert all(isinstance(e, ValidationError) and "3 rows" in str(e) for e in errors), errors


def test_one_summary_line_per_round_on_the_loop_logger(tmp_path, caplog):
    import logging

    from diverseevol.run.loop import ROUND_SUMMARY

    with caplog.at_level(logging.INFO, logger="diverseevol.loop"):
        result = make_loop(tmp_path).run()
    lines = [r for r in caplog.records if r.name == "diverseevol.loop" and getattr(r, ROUND_SUMMARY, False)]
    assert [r.levelno for r in lines] == [logging.INFO] * 4
    for t, (record, row) in enumerate(zip(lines, result.metrics)):
        text = record.getMessage()
        assert text.startswith(f"round {t}/3: pool {row['pool_size']}")
        assert ("(+5)" in text) == (t < 3)
        assert f"accuracy {row['accuracy']:.3f}" in text  # the fake judge's headline metric


def test_round_line_by_hand():
    from diverseevol.run.loop import round_line

    row = {"round": 1, "pool_size": 40, "n_new": 20, "vendi": 3.214, "time_train_s": 95.12, "time_embed_s": 30.0,
           "time_score_s": 0.0, "time_select_s": 0.01, "time_judge_s": 4.96, "bench/wtr": 50.0, "bench/rs": 81.25,
           "accuracy": 0.5}
    assert round_line(row, 3) == ("round 1/3: pool 40 (+20), train 95.1 s, embed 30.0 s, judge 5.0 s, vendi 3.21, "
                                  "bench/rs 81.250")
    assert round_line({"round": 3, "pool_size": 80, "n_new": 0, "vendi": None}, 3) == "round 3/3: pool 80"
