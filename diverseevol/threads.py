"""The thread policy: how many torch/BLAS threads a process uses, and how idle OpenMP threads wait.

On a busy machine two things waste CPU. Thread pools sized for every core of the machine fight for
cores that other processes hold (or that a cgroup quota or a CPU mask never gave this process), and
OpenMP worker threads that finish a parallel region *spin* for a while waiting for the next one
(libgomp's default), burning cycles another process needed and stalling when the OS preempts the
spinner. :func:`apply_thread_policy` addresses both:

* **thread count**: the cores this process may use (:func:`usable_cores`: the CPU affinity mask
  ``os.sched_getaffinity``, capped by the cgroup CPU quota ``/sys/fs/cgroup/cpu.max`` or the v1
  ``cpu.cfs_quota_us``), shared among the processes of a ``torchrun`` / ``accelerate launch`` job on
  this node (``LOCAL_WORLD_SIZE``): :func:`policy_threads`. The count is written to the thread
  variables (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``) for the libraries
  loaded later, and pools already running (torch's, numpy's BLAS through ``threadpoolctl`` when it is
  installed) are lowered to it, never raised.
* **wait policy, chosen by how busy the cores are**: the idle time of this process's cores is sampled for
  0.1 s (``/proc/stat``, :func:`idle_cores`). When fewer cores than the threads it will run are idle,
  ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning. On idle cores the runtime's
  default (spin, then sleep) is kept: measured on the demo, PASSIVE made the idle run 1.6x slower in wall
  time (every parallel region waited for its threads to wake) and a bounded ``GOMP_SPINCOUNT=10000``
  1.4x, while at load PASSIVE cut the CPU bill severalfold. The OpenMP runtime reads the variable once,
  when it is loaded (for torch: at ``import torch``), so it takes effect only when the policy is applied
  before torch (or another OpenMP library) is imported; the returned :class:`ThreadPolicy` says whether
  it did (``wait_policy_effective``), and the choice holds for the whole process.

What the user chose is kept: a thread variable already set (``OMP_NUM_THREADS`` and the others in
:data:`THREAD_VARIABLES`; ``torchrun`` sets ``OMP_NUM_THREADS=1`` itself when it starts several
processes) keeps the thread counts untouched, ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already set
keeps the wait policy, and ``DIVERSEEVOL_THREAD_POLICY=0`` turns the whole policy off.

Applied by the demo (:func:`diverseevol.demo.run_demo`), the Hugging Face parts built by
:mod:`diverseevol.assemble` (the ``select`` / ``compare`` / ``vendi --embedder`` commands and config
runs). Importing this module needs the standard library only.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ValidationError

__all__ = [
    "POLICY_SWITCH",
    "THREAD_VARIABLES",
    "WAIT_VARIABLES",
    "ThreadPolicy",
    "apply_thread_policy",
    "cgroup_cpu_limit",
    "idle_cores",
    "local_world_size",
    "openmp_loaded",
    "policy_threads",
    "usable_cores",
]

logger = logging.getLogger(__name__)

#: Environment variables that set a thread count; one of them set means the user chose.
THREAD_VARIABLES: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
#: Environment variables that set how idle OpenMP threads wait.
WAIT_VARIABLES: tuple[str, ...] = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
#: ``DIVERSEEVOL_THREAD_POLICY=0`` (or ``off``, ``false``, ``no``) turns the policy off.
POLICY_SWITCH = "DIVERSEEVOL_THREAD_POLICY"

_OFF = {"0", "off", "false", "no"}
_OPENMP_LIBRARIES = ("libgomp", "libiomp", "libomp.so", "libomp-")


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (``quota / period``), or None when unlimited.

    Reads cgroup v2 ``<root>/cpu.max`` (``"max 100000"`` or ``"200000 100000"``), else cgroup v1
    ``<root>/cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (a quota of -1 is unlimited).

    Parameters
    ----------
    root : str or Path, default "/sys/fs/cgroup"
        Where the cgroup filesystem is mounted (tests point it at a temporary directory).

    Returns
    -------
    float or None
        E.g. 1.5 for a quota of 150 ms per 100 ms period; None when no quota is set or the files
        are missing or unreadable.
    """
    root = Path(root)
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, _, period = v2.read_text().strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or "100000")
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota_us = int(v1.read_text().strip())
            if quota_us <= 0:
                return None
            return quota_us / int((root / "cpu" / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


def usable_cores(*, cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """The number of cores this process may use: its CPU affinity mask, capped by the cgroup quota.

    Parameters
    ----------
    cgroup_root : str or Path, default "/sys/fs/cgroup"
        See :func:`cgroup_cpu_limit`.

    Returns
    -------
    int
        At least 1. A quota of 1.5 cores counts as 2 (rounded up: a thread per started core).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def local_world_size() -> int:
    """How many processes of a ``torchrun`` / ``accelerate launch`` job share this node.

    Returns
    -------
    int
        ``LOCAL_WORLD_SIZE`` (set by both launchers), 1 when unset.

    Raises
    ------
    ValidationError
        When ``LOCAL_WORLD_SIZE`` is set but is not a positive integer.
    """
    raw = os.environ.get("LOCAL_WORLD_SIZE", "").strip()
    if not raw:
        return 1
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(
            f"the environment variable LOCAL_WORLD_SIZE must be a positive integer (as set by torchrun / accelerate "
            f"launch); got {raw!r}. Unset it for a single-process run."
        )
    return value


def policy_threads(*, cgroup_root: str | Path = "/sys/fs/cgroup") -> int:
    """Threads per process: the usable cores shared evenly among this node's processes (at least 1).

    Returns
    -------
    int
        ``max(1, usable_cores() // local_world_size())``.
    """
    return max(1, usable_cores(cgroup_root=cgroup_root) // local_world_size())


def _cpu_times(cpus: set[int] | None) -> tuple[float, float] | None:
    """(idle, total) jiffies summed over ``cpus`` (all when None) from ``/proc/stat``; None where unreadable."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    idle = total = 0.0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        fields = [float(v) for v in rest.split()]
        idle += fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        total += sum(fields[:8])  # user .. steal (guest time is already in user)
    return (idle, total) if total > 0 else None


def idle_cores(sample_s: float = 0.1) -> float | None:
    """How many of this process's cores were idle over the next ``sample_s`` seconds (None where unknown).

    Read from ``/proc/stat`` (the per-CPU idle and iowait time, over the CPUs of the affinity mask).
    """
    try:
        cpus: set[int] | None = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    first = _cpu_times(cpus)
    if first is None:
        return None
    time.sleep(sample_s)
    second = _cpu_times(cpus)
    if second is None or second[1] <= first[1]:
        return None
    n = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    return n * (second[0] - first[0]) / (second[1] - first[1])


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime (libgomp, Intel's libiomp, LLVM's libomp) is loaded in this process.

    Read from ``/proc/self/maps``; where that file does not exist, whether torch is imported.
    Once a runtime is loaded it has read ``OMP_WAIT_POLICY``: setting it later changes nothing.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "torch" in sys.modules
    return any(name in maps for name in _OPENMP_LIBRARIES)


@dataclass(frozen=True)
class ThreadPolicy:
    """What :func:`apply_thread_policy` decided and did.

    Attributes
    ----------
    threads : int or None
        The thread count applied; None when the user's own setting was kept (or the policy is off).
    wait_policy : str or None
        ``"PASSIVE"`` when the policy set ``OMP_WAIT_POLICY`` (the cores were busy); None when the user's
        setting or the runtime's default was kept.
    wait_policy_effective : bool
        Whether ``OMP_WAIT_POLICY`` (the policy's or the user's) was in the environment before
        the OpenMP runtime was loaded, so that the runtime uses it (False when none was set).
    cores : int
        :func:`usable_cores`.
    local_world_size : int
        :func:`local_world_size`.
    reason : str
        One line for logs: what was kept or set, and why.
    """

    threads: int | None
    wait_policy: str | None
    wait_policy_effective: bool
    cores: int
    local_world_size: int
    reason: str


_APPLIED: ThreadPolicy | None = None


def _openmp_threads(default: int) -> int:
    """Threads OpenMP will start: the first count of ``OMP_NUM_THREADS`` (it may list nested levels), else ``default``."""
    head = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(head) if head.isdigit() and int(head) > 0 else default


def _lower_running_pools(threads: int) -> None:
    """Lower torch's and the loaded BLAS libraries' thread pools to ``threads`` (never raise them)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads") and torch.get_num_threads() > threads:
        torch.set_num_threads(threads)
    try:
        import threadpoolctl
    except ImportError:  # numpy's BLAS then keeps the size it started with
        return
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas" and int(pool.get("num_threads", 0)) > threads:
            threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
            return


def apply_thread_policy(*, cgroup_root: str | Path = "/sys/fs/cgroup", force: bool = False) -> ThreadPolicy:
    """Apply the thread policy to this process (once; later calls return the first decision).

    Sets ``OMP_WAIT_POLICY=PASSIVE`` when fewer cores are idle than threads will run (:func:`idle_cores`)
    and no wait variable (:data:`WAIT_VARIABLES`) is set, and,
    unless a thread variable (:data:`THREAD_VARIABLES`) is set, writes :func:`policy_threads` to
    the thread variables and lowers torch's and numpy's BLAS pools to it. Call it before
    ``import torch`` for the wait policy to take effect (see :func:`openmp_loaded`).

    Parameters
    ----------
    cgroup_root : str or Path, default "/sys/fs/cgroup"
        See :func:`cgroup_cpu_limit`.
    force : bool, default False
        Decide again even if the policy was applied before (tests).

    Returns
    -------
    ThreadPolicy
        What was decided; ``threads`` and ``wait_policy`` are None for what the user set (or when
        ``DIVERSEEVOL_THREAD_POLICY=0`` turns the policy off).
    """
    global _APPLIED
    if _APPLIED is not None and not force:
        return _APPLIED
    cores, world = usable_cores(cgroup_root=cgroup_root), local_world_size()
    if os.environ.get(POLICY_SWITCH, "").strip().lower() in _OFF:
        policy = ThreadPolicy(None, None, "OMP_WAIT_POLICY" in os.environ and not openmp_loaded(), cores, world,
                              f"{POLICY_SWITCH}=0: thread policy off")
        _APPLIED = policy
        return policy
    reasons = []
    runtime_loaded = openmp_loaded()
    planned = max(1, cores // world)  # the thread count the policy sets when the user set none
    wait = None
    user_wait = [name for name in WAIT_VARIABLES if os.environ.get(name)]
    if user_wait:
        reasons.append(f"wait policy kept ({', '.join(user_wait)} set)")
    else:
        idle = idle_cores()
        if idle is not None and idle < _openmp_threads(planned) - 0.5:
            os.environ["OMP_WAIT_POLICY"] = wait = "PASSIVE"
            reasons.append(f"OMP_WAIT_POLICY=PASSIVE ({idle:.1f} of {cores} core(s) idle)"
                           + (" (too late: OpenMP already loaded)" if runtime_loaded else ""))
        else:
            reasons.append("wait policy left at the runtime's default ("
                           + ("idle time unknown" if idle is None else f"{idle:.1f} of {cores} core(s) idle") + ")")
    threads = None
    user_threads = [name for name in THREAD_VARIABLES if os.environ.get(name)]
    if user_threads:
        reasons.append(f"thread counts kept ({', '.join(user_threads)} set)")
    else:
        threads = planned
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(threads)
        _lower_running_pools(threads)
        reasons.append(f"{threads} thread(s): {cores} usable core(s) / {world} local process(es)")
    effective = "OMP_WAIT_POLICY" in os.environ and not runtime_loaded
    policy = ThreadPolicy(threads, wait, effective, cores, world, "; ".join(reasons))
    logger.info("thread policy: %s", policy.reason)
    _APPLIED = policy
    return policy
