"""Threads in compiled loops: which threading layer, and whether `parallel=None` uses them.

`jit(f)` (``parallel=None``) runs the outer loop of big kernels on all cores, as JAX and
PyTorch do without being asked; `parallel=False` keeps one thread, `parallel=True` asks for
threads whatever the layer.

The layer is chosen deliberately. Numba's default on Linux is GNU OpenMP, and a process that
has run an OpenMP kernel and then forks (multiprocessing's default start method, Dask's local
workers, data-loader workers) loses the child ("fork() called from a process already using
GNU OpenMP"). With threads on by default that would break every such user, so tracejit uses
Intel TBB (the `tbb` package), which is fork-safe and safe to call from several Python
threads at once. Where TBB cannot be loaded, `parallel=None` stays serial, and
`parallel=True` gets Numba's default layer. An explicit `NUMBA_THREADING_LAYER` is always
respected.

Nested parallelism: BLAS calls inside compiled code run on `TRACEJIT_BLAS_THREADS` threads
(default 1, `compiler/blas.py`), so threaded loops and BLAS do not oversubscribe the cores.
"""

from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=1)
def auto_parallel() -> bool:
    """Whether `parallel=None` compiles threaded loops in this process: TBB is there (or
    the user chose a layer with NUMBA_THREADING_LAYER). Does not import Numba."""
    import sys

    if os.environ.get("TRACEJIT_PARALLEL", "").strip() == "0":
        return False
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return True  # the user chose a layer; respect it
    if not _tbb_loads():
        return False
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", False):
        # Other code has already started Numba's threads: keep them only if they are TBB.
        import numba
        return numba.threading_layer() == "tbb"
    return True


def configure() -> None:
    """Before a threaded program first runs: make TBB Numba's threading layer (unless the
    user chose one, or Numba's threads already run)."""
    if os.environ.get("NUMBA_THREADING_LAYER") or not auto_parallel():
        return
    import numba
    from numba.np.ufunc import parallel

    if not getattr(parallel, "_is_initialized", False):
        numba.config.THREADING_LAYER = "tbb"


def _tbb_loads() -> bool:
    """Whether libtbb (version 2021.6 or later, as Numba's TBB pool needs) loads; loaded by
    name now, so that the pool's own dependency on it resolves later."""
    import ctypes
    import sys

    name = {"win32": "tbb12.dll", "darwin": "libtbb.12.dylib"}.get(sys.platform, "libtbb.so.12")
    try:
        lib = ctypes.CDLL(name)
        lib.TBB_runtime_interface_version.restype = ctypes.c_int
        return lib.TBB_runtime_interface_version() >= 12060
    except (OSError, AttributeError):
        return False


def layer() -> str:
    """The threading layer compiled programs run on ('tbb', 'omp', 'workqueue'), or the one
    they will use once a threaded kernel has run."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        return str(numba.config.THREADING_LAYER)
