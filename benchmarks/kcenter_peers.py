"""kcenter_select side by side with public farthest-point-sampling (FPS) code, on the same data and starts.

Methods (each skipped with a reason when it cannot run):

* ``kc_default``: :func:`diverseevol.kcenter_select`, numpy backend, default options (pruning, lazy).
* ``kc_every``: the same with ``prune=False, blas_filter=False`` (every distance computed by the per-row rule each
  pick).
* ``kc_unfiltered`` (only with ``--only kc_unfiltered``): the defaults with ``blas_filter=False``.
* ``numpy_loop``: a plain numpy loop with one running minimum (``|x|^2 + |c|^2 - 2 X @ c`` with BLAS).
* ``torch_fps``: the textbook torch FPS loop (direct differences, ``torch.minimum``), float32, CPU.
* ``fps_vanilla``, ``fps_npdu_kdtree``, ``fps_bucket_kdtree``: ``fpsample`` (``pip install fpsample``);
  the kd-tree variants only where they are meant to run (low dimension).

Workloads (``--quick`` divides the sizes): 52,002 x 4,096 random and clustered with a 100-record
pool, and the same from a single start point; 200,000 x 768 clustered, k = 1,000; 500,000 x 128
clustered, pool 100, k = 1,000; 1,000,000 x 3, k = 4,096 from one start point.

Every method gets the same start: the pool, or for a single start the row ``kcenter_select`` draws
from ``random_state=0`` (passed to the peers as their start index). Picks are compared with
``kc_every`` (the exact reference): ``same`` or the first differing pick and the relative gap of the
two candidates' float64 distances there (a gap at the float32 rounding level is a near-tie, not an
error). fpsample returns the start indices among its samples; they are dropped before comparing. Its
bucket kd-tree variant returns the sampled set out of pick order: compared as a set.

The benchmark unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` in its own process (they
handicap current OpenBLAS builds; tests and CI keep them) and prints which BLAS kernel ran.

Methods are interleaved: each of ``--repeats`` rounds runs every method once (min taken), so load that
drifts during a workload hits all methods alike. The run ends with a table of the ratio kc_default /
numpy_loop (wall and CPU) for every workload.

Usage::

    python benchmarks/kcenter_peers.py --quick
    python benchmarks/kcenter_peers.py --only pts1m --repeats 3
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/kcenter_peers.py --quick --threads 1

Under other load, compare the ``cpu`` column (process CPU seconds) with one thread on both sides
(``--threads 1`` for the kernel, the environment variables for BLAS): wall seconds then vary 2x between runs.
"""

from __future__ import annotations

import os
import sys

_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BLAS_VARS):  # before numpy loads OpenBLAS: it reads them once
    removed = {v: os.environ.pop(v) for v in _BLAS_VARS if v in os.environ}
    os.environ["KCENTER_PEERS_UNSET"] = ",".join(f"{k}={v}" for k, v in removed.items())
    if "numpy" in sys.modules:  # imported as a module after numpy: start over in a clean process
        os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kcenter import clustered_data, random_data  # noqa: E402

from diverseevol import kcenter_select  # noqa: E402  (imported here: no method's timing includes an import)

# ----------------------------------------------------------------------------- environment


def blas_line() -> str:
    """Which BLAS library, kernel (architecture) and threads this process runs."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not info:
        return "BLAS: none found"
    i = info[0]
    return (f"BLAS: {i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
            f"threads={i.get('num_threads')}")


def env_lines() -> list[str]:
    unset = os.environ.get("KCENTER_PEERS_UNSET", "")
    out = [
        f"load average: {open('/proc/loadavg').read().split()[:3]} on {os.cpu_count()} CPUs",
        blas_line(),
        f"unset in this process: {unset or 'nothing (neither was set)'}",
        f"numpy {np.__version__}",
    ]
    for mod in ("torch", "fpsample"):
        try:
            m = __import__(mod)
            out[-1] += f", {mod} {getattr(m, '__version__', '?')}"
        except ImportError:
            out[-1] += f", {mod} not installed"
    return out


# ----------------------------------------------------------------------------- workloads


class Workload:
    def __init__(self, name: str, n: int, d: int, kind: str, pool: int, k: int, clusters: int = 50) -> None:
        self.name, self.n, self.d, self.kind, self.pool_size, self.k = name, n, d, kind, pool, k
        self.clusters = clusters

    def data(self) -> np.ndarray:
        if self.kind == "random":
            return random_data(self.n, self.d)
        if self.kind == "uniform":
            return np.random.default_rng(0).random((self.n, self.d), dtype=np.float32)
        return clustered_data(np.empty((self.n, self.d), dtype=np.float32), self.clusters, 2.0)

    def describe(self) -> str:
        pool = f"pool {self.pool_size}" if self.pool_size else "one start point"
        kind = f"clustered ({self.clusters})" if self.kind == "clustered" else self.kind
        return f"{self.n:,} x {self.d} {kind}, {pool}, k = {self.k}"


def workloads(quick: bool) -> list[Workload]:
    s = 10 if quick else 1
    return [
        Workload("rand52k", 52002 // s, 4096, "random", 100, 100),
        Workload("clus52k", 52002 // s, 4096, "clustered", 100, 100),
        Workload("rand52k_1start", 52002 // s, 4096, "random", 0, 100),
        Workload("clus52k_1start", 52002 // s, 4096, "clustered", 0, 100),
        Workload("clus200k", 200000 // s, 768, "clustered", 100, 1000 // s, clusters=1000 // s),
        Workload("clus500k_128", 500000 // s, 128, "clustered", 100, 1000 // s, clusters=1000 // s),
        Workload("pts1m", 1000000 // s, 3, "uniform", 0, 4096 // s),
    ]


# ----------------------------------------------------------------------------- methods
# Each method: (x, pool, first, k) -> picks (k,), the pool excluded, the start included when pool is empty.


_KC_THREADS: int | None = None  # --threads: n_threads of the kernel (None: its default)


def kc(x: np.ndarray, pool: np.ndarray, first: int, k: int, **kw) -> np.ndarray:
    return kcenter_select(x, pool, k, backend="numpy", random_state=0, progress=False, n_threads=_KC_THREADS, **kw)


def numpy_loop(x: np.ndarray, pool: np.ndarray, first: int, k: int) -> np.ndarray:
    sqn = np.einsum("ij,ij->i", x, x)
    mind = np.full(len(x), np.inf, dtype=np.float32)
    for a in range(0, len(pool), 256):  # distances to the pool: blocked GEMM
        P = x[pool[a : a + 256]]
        for b in range(0, len(x), 16384):
            G = sqn[b : b + 16384, None] + np.einsum("ij,ij->i", P, P)[None, :] - 2 * (x[b : b + 16384] @ P.T)
            np.minimum(mind[b : b + 16384], G.min(axis=1), out=mind[b : b + 16384])
    mind[pool] = -1
    picks = np.empty(k, dtype=np.int64)
    c = first if len(pool) == 0 else int(np.argmax(mind))
    for t in range(k):
        picks[t] = c
        mind[c] = -1
        if t + 1 == k:
            break
        d2 = x @ x[c]
        d2 *= -2
        d2 += sqn
        d2 += sqn[c]
        np.minimum(mind, d2, out=mind)
        mind[picks[: t + 1]] = -1
        c = int(np.argmax(mind))
    return picks


def torch_fps(x: np.ndarray, pool: np.ndarray, first: int, k: int) -> np.ndarray:
    import torch

    X = torch.from_numpy(x)
    mind = torch.full((len(x),), float("inf"))
    for a in range(0, len(pool), 64):
        for b in range(0, len(x), 16384):
            dd = torch.cdist(X[b : b + 16384], X[torch.from_numpy(pool[a : a + 64])]).square_().amin(1)
            torch.minimum(mind[b : b + 16384], dd, out=mind[b : b + 16384])
    mind[torch.from_numpy(pool)] = -1
    picks = np.empty(k, dtype=np.int64)
    c = first if len(pool) == 0 else int(torch.argmax(mind))
    for t in range(k):
        picks[t] = c
        mind[c] = -1
        if t + 1 == k:
            break
        dd = (X - X[c]).square_().sum(1)
        torch.minimum(mind, dd, out=mind)
        mind[torch.from_numpy(picks[: t + 1])] = -1
        c = int(torch.argmax(mind))
    return picks


def _fpsample(fn_name: str, **kw) -> Callable[..., np.ndarray]:
    def run(x: np.ndarray, pool: np.ndarray, first: int, k: int) -> np.ndarray:
        import fpsample

        fn = getattr(fpsample, fn_name)
        start = [int(i) for i in pool] if len(pool) else int(first)
        out = np.asarray(fn(x, k + len(pool), start_idx=start, **kw), dtype=np.int64)
        return out[len(pool):] if len(pool) else out

    return run


def method_table(w: Workload) -> dict[str, tuple[Callable[..., np.ndarray] | None, str]]:
    """name -> (function, why skipped when None)."""
    have_torch = _importable("torch")
    have_fps = _importable("fpsample")
    fps_why = "" if have_fps else "fpsample not installed (pip install fpsample)"
    low_d = w.d <= 16
    return {
        "kc_default": (kc, ""),
        "kc_every": (lambda *a: kc(*a, prune=False, blas_filter=False), ""),
        "kc_unfiltered": (lambda *a: kc(*a, blas_filter=False), ""),
        "numpy_loop": (numpy_loop, ""),
        "torch_fps": (torch_fps if have_torch else None, "" if have_torch else "torch not installed"),
        "fps_vanilla": (_fpsample("fps_sampling") if have_fps else None, fps_why),
        "fps_npdu_kdtree": (_fpsample("fps_npdu_kdtree_sampling") if have_fps else None, fps_why),
        "fps_bucket_kdtree": (
            _fpsample("bucket_fps_kdtree_sampling") if have_fps and low_d else None,
            fps_why or ("" if low_d else "kd-tree buckets are for low d (<= 16)"),
        ),
    }


def _importable(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


# ----------------------------------------------------------------------------- comparison


def first_difference(x: np.ndarray, pool: np.ndarray, ref: np.ndarray, got: np.ndarray) -> str:
    """'same', or where ``got`` leaves ``ref`` and the float64 relative gap between the two rows there."""
    if len(got) != len(ref):
        return f"length {len(got)} vs {len(ref)}"
    diff = np.flatnonzero(ref != got)
    if not len(diff):
        return "same"
    t = int(diff[0])
    if t == 0:
        return "other start"
    centers = np.concatenate([pool, ref[:t]]).astype(np.int64)
    rows = np.array([ref[t], got[t]])
    d = np.full(2, np.inf)
    X = x[rows].astype(np.float64)
    for a in range(0, len(centers), 4096):
        C = x[centers[a : a + 4096]].astype(np.float64)
        d = np.minimum(d, ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(axis=1))
    gap = abs(d[0] - d[1]) / max(d[0], d[1], 1e-300)
    return f"pick {t} (rel. gap {gap:.1e})"


def time_once(fn, x, pool, first, k) -> tuple[float, np.ndarray, float]:
    """(wall seconds, picks, process CPU seconds) of one run."""
    t0, c0 = time.perf_counter(), time.process_time()
    picks = fn(x, pool, first, k)
    return time.perf_counter() - t0, np.asarray(picks), time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="sizes / 10 (a few minutes on 2 cores)")
    p.add_argument("--only", default="", help="comma-separated workload names or method names")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds, methods interleaved within each (min taken); default 2, quick 3")
    p.add_argument("--threads", type=int, default=None, help="n_threads of kcenter_select (default: its own)")
    args = p.parse_args(argv)
    global _KC_THREADS
    _KC_THREADS = args.threads
    repeats = args.repeats or (3 if args.quick else 2)
    only = {s for s in args.only.split(",") if s}
    for line in env_lines():
        print(line)
    all_w = workloads(args.quick)
    w_names = {w.name for w in all_w}
    sel_w = [w for w in all_w if not (only & w_names) or w.name in only]
    m_filter = only - w_names
    summary: list[tuple[Workload, float, float, float, float]] = []
    for w in sel_w:
        x = w.data()
        rng = np.random.default_rng(0)
        pool = np.sort(rng.choice(w.n, w.pool_size, replace=False)).astype(np.int64) if w.pool_size else \
            np.empty(0, dtype=np.int64)
        first = int(np.random.default_rng(0).integers(w.n))  # kcenter_select's draw with random_state=0
        print(f"\n== {w.name}: {w.describe()}  (load {open('/proc/loadavg').read().split()[0]})")
        print(f"{'method':<18}{'seconds':>10}{'cpu':>9}{'vs numpy_loop':>15}{'vs kc_default':>15}  picks vs kc_every")
        results: dict[str, tuple[float, np.ndarray, float]] = {}
        skipped: dict[str, str] = {}
        table = {n: m for n, m in method_table(w).items()
                 if (not m_filter and n != "kc_unfiltered") or n in m_filter
                 or n in ("kc_every", "numpy_loop", "kc_default")}
        for name, (fn, why) in table.items():
            if fn is None:
                skipped[name] = why
        for _ in range(repeats):  # rounds: every method once per round, so drifting load hits all alike
            for name, (fn, _why) in table.items():
                if fn is None or name in skipped:
                    continue
                try:
                    sec, picks, cpu = time_once(fn, x, pool, first, w.k)
                except Exception as exc:  # a peer that refuses this input is reported, not fatal
                    skipped[name] = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
                    results.pop(name, None)
                    continue
                old = results.get(name)
                results[name] = (sec, picks, cpu) if old is None else (min(old[0], sec), picks, min(old[2], cpu))
        ref = results["kc_every"][1]
        base = results["numpy_loop"][0]
        own = results["kc_default"][0]
        for name, (sec, picks, cpu) in results.items():
            if name == "fps_bucket_kdtree":  # returns the sampled set, not in pick order
                same = len(np.intersect1d(ref, picks))
                cmp = "same set" if same == len(ref) == len(picks) else f"{same}/{len(ref)} of the set"
            else:
                cmp = first_difference(x, pool, ref, picks)
            print(f"{name:<18}{sec:>10.3f}{cpu:>9.3f}{base / sec:>14.2f}x{own / sec:>14.2f}x  {cmp}")
        for name, why in skipped.items():
            print(f"{name:<18}{'-':>10}  skipped: {why}")
        cpu_ratio = results["kc_default"][2] / results["numpy_loop"][2]
        print(f"ratio kc_default / numpy_loop time: {own / base:.2f}, CPU time: "
              f"{cpu_ratio:.2f} (<= 1 means the kernel is not slower)")
        st: dict = {}
        kc(x, pool, first, w.k, stats=st)
        print(f"kc_default: {st['evaluations'] / max(1, st['evaluations_unpruned']):.1%} of the distances of "
              f"kc_every by the row rule, {st['filtered_out'] / max(1, st['evaluations_unpruned']):.1%} ruled out by "
              f"BLAS (prune={st['prune']}, lazy={st['lazy']}, filter={st['filter']}, boxes={st.get('boxes')}, "
              f"need_estimate={st['need_estimate']:.2f})")
        summary.append((w, own, base, own / base, cpu_ratio))
        del x
    print(f"\n== ratio kc_default / numpy_loop ({'quick' if args.quick else 'full'} sizes, min of {repeats})")
    print(f"{'workload':<18}{'kc_default':>12}{'numpy_loop':>12}{'ratio':>8}{'CPU ratio':>11}")
    for w, own, base, ratio, cpu_ratio in summary:
        print(f"{w.name:<18}{own:>12.3f}{base:>12.3f}{ratio:>8.2f}{cpu_ratio:>11.2f}")
    if summary:
        print(f"largest ratio: {max(r for *_, r, _ in summary):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
