"""Thread count of the BLAS that compiled matrix products call.

Generated code calls `numba_xxgemm`, Numba's helper that reaches SciPy's OpenBLAS
(`libscipy_openblas`), a thread pool separate from NumPy's.
On a busy 2-core machine two BLAS threads ran 10-50x slower than one (notes/numba.md, §7),
so compiled programs run their matmuls on `TRACEJIT_BLAS_THREADS` threads (default 1).
The exception is a call big enough that waking threads costs little next to it
(`codegen.BLAS_THREAD_FLOPS`, a 256^3 product: about 0.6 ms of work): the generated code
switches BLAS to every core around it and back to one after, unless TRACEJIT_BLAS_THREADS
is set.
"""

from __future__ import annotations

import ctypes
import glob
import os

_configured = False


def _scipy_openblas():
    """The SciPy OpenBLAS library Numba uses, or None if it cannot be found."""
    try:
        import scipy
    except ImportError:
        return None
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def set_blas_threads(n: int) -> bool:
    """Set the thread count of the BLAS used inside compiled code; False if unavailable."""
    lib = _scipy_openblas()
    if lib is None:
        return False
    for symbol in ("scipy_openblas_set_num_threads", "openblas_set_num_threads"):
        fn = getattr(lib, symbol, None)
        if fn is not None:
            fn(int(n))
            return True
    return False


def configure_once() -> None:
    """Apply TRACEJIT_BLAS_THREADS (default 1) the first time a program with a matmul runs."""
    global _configured
    if _configured:
        return
    _configured = True
    value = os.environ.get("TRACEJIT_BLAS_THREADS", "1")
    if value.strip().lower() in ("", "default", "0"):
        return
    set_blas_threads(int(value))
