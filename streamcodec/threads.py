"""How many threads the numerical libraries use: chosen here, never left to their defaults.

torch, OpenBLAS and OpenMP size their pools from the machine's cores and spin while they wait
for each other. On a machine that is busy anyway (a receiver beside a sender, CI running tests
in parallel, any neighbour), a pool that spins on a core someone else holds makes every parallel
step wait for a descheduled thread (benchmarks/busy.py measures encode and image compress beside
a busy neighbour). So: threads = the CPUs this process may really use (its affinity mask and
its cgroup CPU quota), fewer when the job says so (a live stream's frames are small; a receiver
runs one decoder thread per CPU, BLAS at one thread each), and idle threads sleep instead of
spinning (OMP_WAIT_POLICY=PASSIVE).
`STREAMCODEC_THREADS` or `--threads` overrides the count.

Environment settings only reach a library loaded after they are made, so the command line calls
`configure` before it imports numpy or torch (the speech codec runs on numpy's OpenBLAS, the image
codec and training on torch); `configure` also sets torch's and OpenBLAS's pools directly, for a
library user who calls it later.
"""

import math
import os
from pathlib import Path

from streamcodec.errors import StreamcodecError

ENV = "STREAMCODEC_THREADS"
# Per job: the most threads worth using (small batches stop scaling early).
JOB_MAX = {"file": 64, "image": 64, "live": 2, "decode": 64}  # decode: decoder threads, 1 BLAS thread each


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.floor(quota)) if quota else cpus)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max, or v1 cfs quota/period); None if unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def choose(job: str = "file", requested: int | None = None) -> int:
    """Threads for `job` ("file", "image", "live" or "decode"): `requested`, else the environment's
    STREAMCODEC_THREADS, else the available CPUs capped by what the job can use."""
    if requested is None and os.environ.get(ENV):
        try:
            requested = int(os.environ[ENV])
        except ValueError as exc:
            raise StreamcodecError(f"{ENV}={os.environ[ENV]!r} is not a whole number of threads") from exc
    if requested is not None:
        if requested < 1:
            raise StreamcodecError(f"threads must be at least 1, not {requested}")
        return requested
    return max(1, min(available_cpus(), JOB_MAX.get(job, 1)))


def configure_default() -> None:
    """The library's policy on import: unless the user chose already (STREAMCODEC_THREADS wins,
    then an OMP_NUM_THREADS of their own), use `choose()` threads and passive waiting."""
    if os.environ.get(ENV) or not os.environ.get("OMP_NUM_THREADS"):
        configure(choose())


_count = 1  # what configure() chose last: the speech codec's worker threads (count())


def configure(threads: int, blas: int = 1) -> int:
    """Use `threads` threads in torch and OpenMP, and as the speech codec's worker threads
    (count()), and `blas` in numpy's OpenBLAS, from now on; returns `threads`.

    OpenBLAS stays at one thread by default: the speech networks' matrix products are small, and a
    BLAS pool that splits each of them stalls whenever one of its threads waits for a core a
    neighbour holds (a 28 s encode took 2.8x as long beside a busy neighbour that way). The speech
    codec runs whole frames in parallel instead (an encoder's batch, a receiver's streams), so a
    slow thread delays only its own frames. A live sender codes one frame at a time and may give
    BLAS two threads (`blas`)."""
    global _count
    _count = threads
    for name, value in (("OMP_NUM_THREADS", threads), ("MKL_NUM_THREADS", threads), ("OPENBLAS_NUM_THREADS", blas)):
        os.environ[name] = str(value)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "numpy" in sys.modules:  # OpenBLAS read the environment when numpy loaded: resize it
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas, user_api="blas")
    return threads


def count() -> int:
    """The worker threads the speech codec uses (set by configure())."""
    return _count
