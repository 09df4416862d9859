"""The thread policy (diverseevol.threads): cores from affinity and cgroup quota, shared among a node's ranks;
the user's own settings kept; OMP_WAIT_POLICY in place before OpenMP loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diverseevol import threads
from diverseevol.errors import ValidationError

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = (*threads.THREAD_VARIABLES, *threads.WAIT_VARIABLES, "LOCAL_WORLD_SIZE", threads.POLICY_SWITCH)


@pytest.fixture
def clean_env(monkeypatch):
    """No thread, wait or launcher variables; the whole environment restored afterwards."""
    saved = dict(os.environ)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> Path:
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        ("max 100000", None, None),
        ("150000 100000", None, 1.5),
        ("50000 100000", None, 0.5),
        (None, ("-1", "100000"), None),
        (None, ("300000", "100000"), 3.0),
        (None, None, None),
        ("garbage", None, None),
    ],
)
def test_cgroup_cpu_limit_reads_v2_and_v1(tmp_path, v2, v1, expected):
    assert threads.cgroup_cpu_limit(_cgroup(tmp_path, v2, v1)) == expected


def test_usable_cores_is_affinity_capped_by_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert threads.usable_cores(cgroup_root=tmp_path) == affinity  # no quota files
    quota = tmp_path / "q"
    quota.mkdir()
    assert threads.usable_cores(cgroup_root=_cgroup(quota, "50000 100000")) == 1  # half a core: one thread
    big = tmp_path / "big"
    big.mkdir()
    assert threads.usable_cores(cgroup_root=_cgroup(big, f"{(affinity + 5) * 100000} 100000")) == affinity


def test_policy_threads_shares_cores_among_local_ranks(tmp_path, clean_env, monkeypatch):
    root = _cgroup(tmp_path, "400000 100000")  # 4 cores, or fewer when the affinity mask says so
    cores = min(4, len(os.sched_getaffinity(0)))
    assert threads.policy_threads(cgroup_root=root) == cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.policy_threads(cgroup_root=root) == max(1, cores // 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    assert threads.policy_threads(cgroup_root=root) == 1  # never 0
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "two")
    with pytest.raises(ValidationError, match="LOCAL_WORLD_SIZE must be a positive integer"):
        threads.policy_threads(cgroup_root=root)


SCRIPT = """
import json, os, sys
from diverseevol import threads
if len(sys.argv) > 2:  # the idle cores the policy sees (a busy or an idle machine, whatever this one is)
    threads.idle_cores = lambda sample_s=0.1: float(sys.argv[2])
policy = threads.apply_thread_policy(cgroup_root=sys.argv[1])
loaded_before = threads.openmp_loaded()
import torch
out = {"threads": policy.threads, "wait": policy.wait_policy, "effective": policy.wait_policy_effective,
       "reason": policy.reason, "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS",
       "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}, "torch_threads": torch.get_num_threads(),
       "loaded_before": loaded_before, "loaded_after": threads.openmp_loaded(),
       "again": threads.apply_thread_policy() == policy}
print(json.dumps(out))
"""


def _policy_in_fresh_process(tmp_path: Path, env: dict[str, str], *, cgroup: str = "100000 100000",
                             import_torch_first: bool = False, idle: float | None = 0.0) -> dict:
    pytest.importorskip("torch")
    root = tmp_path / "cg"
    root.mkdir(exist_ok=True)
    _cgroup(root, cgroup)
    script = ("import torch\n" if import_torch_first else "") + SCRIPT
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    argv = [str(root)] + ([] if idle is None else [str(idle)])
    run = subprocess.run([sys.executable, "-c", script, *argv], env={**base, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_policy_sets_wait_and_threads_before_openmp_loads(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {}, idle=0.0)  # a 1-core quota, no core idle
    assert out["threads"] == 1 and out["wait"] == "PASSIVE" and out["effective"]
    assert out["env"] == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                          "OPENBLAS_NUM_THREADS": "1"}
    assert out["torch_threads"] == 1  # torch sized its pool from the variable
    assert not out["loaded_before"] and out["loaded_after"]  # torch brought the OpenMP runtime
    assert out["again"]  # applied once: a second call returns the first decision


def test_policy_lowers_running_torch_pool_and_reports_late_wait_policy(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {}, import_torch_first=True)
    assert out["threads"] == 1 and out["torch_threads"] == 1
    assert out["wait"] == "PASSIVE" and not out["effective"]  # OpenMP had read its environment already
    assert "too late" in out["reason"]


def test_idle_cores_keep_the_runtimes_spin(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {}, idle=1.0)  # the one core this process may use is idle
    assert out["threads"] == 1 and out["wait"] is None and not out["effective"]
    assert out["env"]["OMP_WAIT_POLICY"] is None and out["env"]["OMP_NUM_THREADS"] == "1"
    assert "runtime's default (1.0 of 1 core(s) idle)" in out["reason"]
    busy = _policy_in_fresh_process(tmp_path, {}, idle=0.4, cgroup="200000 100000")  # 2 threads, 0.4 core idle
    assert busy["wait"] == "PASSIVE" and "0.4 of" in busy["reason"]


def test_idle_cores_reads_proc_stat():
    idle = threads.idle_cores(0.05)
    if not Path("/proc/stat").exists():
        assert idle is None
        return
    assert idle is not None and -0.01 <= idle <= len(os.sched_getaffinity(0)) + 0.01


def test_policy_keeps_what_the_user_set(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"})
    assert out["threads"] is None and out["wait"] is None
    assert out["env"]["OMP_NUM_THREADS"] == "2" and out["env"]["OMP_WAIT_POLICY"] == "ACTIVE"
    assert out["env"]["MKL_NUM_THREADS"] is None  # nothing added beside the user's choice
    assert out["torch_threads"] == 2
    assert "kept" in out["reason"]


def test_policy_switch_off(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {threads.POLICY_SWITCH: "0"})
    assert out["threads"] is None and out["wait"] is None
    assert out["env"]["OMP_WAIT_POLICY"] is None and out["env"]["OMP_NUM_THREADS"] is None


def test_policy_under_a_launcher_splits_the_cores(tmp_path):
    out = _policy_in_fresh_process(tmp_path, {"LOCAL_WORLD_SIZE": "2"}, cgroup="200000 100000")
    assert out["threads"] == 1 and out["env"]["OMP_NUM_THREADS"] == "1"


def test_importing_threads_stays_light():
    run = subprocess.run([sys.executable, "-c", "import sys, diverseevol.threads; "
                          "print(sorted(m for m in ('torch', 'threadpoolctl') if m in sys.modules))"],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "[]", run.stderr


def test_the_kernel_takes_its_default_threads_from_the_policy(clean_env, monkeypatch):
    """kcenter_select's numpy backend: affinity of 4 cores, 2 local ranks -> 2 threads each; picks unchanged."""
    import numpy as np

    from diverseevol import kcenter_select

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda root="/sys/fs/cgroup": None)
    x = np.random.default_rng(0).standard_normal((300, 20)).astype(np.float32)
    pool = np.arange(5)
    st: dict = {}
    alone = kcenter_select(x, pool, 10, backend="numpy", random_state=0, progress=False, stats=st)
    assert st["n_threads"] == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    st = {}
    shared = kcenter_select(x, pool, 10, backend="numpy", random_state=0, progress=False, stats=st)
    assert st["n_threads"] == 2
    np.testing.assert_array_equal(np.asarray(alone), np.asarray(shared))
    st = {}
    kcenter_select(x, pool, 10, backend="numpy", random_state=0, progress=False, stats=st, n_threads=3)
    assert st["n_threads"] == 3  # an explicit n_threads wins


@pytest.mark.parametrize(("value", "expected"), [("", 5), ("3", 3), ("3,1", 3), (" 2 , 1", 2), ("abc", 5), ("0", 5)])
def test_the_wait_choice_reads_openmps_thread_count_without_failing(clean_env, monkeypatch, value, expected):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert threads._openmp_threads(5) == expected  # nested lists and junk never raise
