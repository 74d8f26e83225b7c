"""Memory reused between calls for the big arrays compiled programs make.

Why: glibc's malloc (which Numba's allocator calls) serves a request of 32 MiB or more with a
fresh `mmap` and unmaps it again on `free`. Every call of a program that makes such an array
then has the kernel fault in and zero its pages before the loop can write them: measured here
(2-core AMD EPYC, THP on `madvise`), W1's gradient at n = 1e7 spent 10 ms of its 32 ms per call
on one thread in the kernel doing exactly that, and a loop writing `2 * x + 1` into an 80 MB
array took 6.9 ms into a new one (on huge pages) against 4.2 ms into one written before.
Smaller arrays need nothing: malloc recycles them (its mmap threshold rises to the size of a
freed block, up to 32 MiB).

So a kernel takes each big result it would allocate at its top level as an argument (codegen
`ModuleWriter.empty`), and `POOL.take` passes it a view of a buffer that an earlier call used
and that nothing refers to any more, or of a new one. Whether anything refers to a buffer is
read from CPython's reference counts: the pool's list holds one reference, and a program's
result, a view of the buffer, holds another through its base chain (Numba's boxed views keep
their source alive). A result is therefore the caller's for as long as anything refers to it,
as with any NumPy array: no call releases it.

The pool keeps at most `TRACEJIT_BUFFER_POOL_MB` megabytes (default 1024; `0` turns it off) of
buffers, forgetting the least recently used first; `release()` (`tracejit.release_buffers()`)
drops every buffer nothing else holds.
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

_DEFAULT_MIN_BYTES = 32 << 20  # smaller arrays are left to malloc, which recycles them
_DEFAULT_LIMIT_MB = 1024


def _refs(blocks: list, i: int) -> int:
    return sys.getrefcount(blocks[i])


# The count `_refs` reads for a buffer that only the pool's list holds, measured rather than
# assumed: interpreters differ in the temporary references a call makes.
_SOLE = _refs([np.empty(0)], 0)


def _env_number(name: str, default: float, unit: str, environ) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of {unit}, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number of {unit}, not negative, got "
                         f"{text!r}")
    return value


def _limit_from_env(environ=os.environ) -> int:
    """Bytes the pool may keep: TRACEJIT_BUFFER_POOL_MB megabytes."""
    return int(_env_number("TRACEJIT_BUFFER_POOL_MB", _DEFAULT_LIMIT_MB, "megabytes",
                           environ) * (1 << 20))


def _min_bytes_from_env(environ=os.environ) -> int:
    """The smallest result that comes from the pool: TRACEJIT_BUFFER_POOL_MIN_BYTES, for
    allocators other than glibc's, whose cost may start at another size (and for tests,
    which set it low to pool every result)."""
    return int(_env_number("TRACEJIT_BUFFER_POOL_MIN_BYTES", _DEFAULT_MIN_BYTES, "bytes",
                           environ))


MIN_BYTES = _min_bytes_from_env()


class BufferPool:
    """1-D buffers, by dtype and length, that compiled programs write their big arrays into.
    Thread-safe: a buffer is handed to one call at a time.

    Callers get a new view of a buffer, never the buffer itself, so what they do to their
    array object (change its shape or flags, weak references to it) stays with that object.
    A `take` re-entered on the same thread (a finalizer that the garbage collector runs in
    the middle of one, or a signal handler, calling a compiled program) gets new arrays
    instead of waiting for the lock its own thread holds."""

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self._blocks: list[np.ndarray] = []  # least recently handed out first
        self._lock = threading.RLock()
        self._busy = False  # a thread is inside; only that thread sees it True

    def take(self, specs) -> list[np.ndarray]:
        """One array per (length, dtype) in `specs`, each on a buffer free of other
        references."""
        with self._lock:
            if self._busy:
                return [_new_buffer(size, np.dtype(dtype)) for size, dtype in specs]
            self._busy = True
            try:
                return [self._take(size, np.dtype(dtype)) for size, dtype in specs]
            finally:
                self._busy = False

    def _take(self, size: int, dtype: np.dtype) -> np.ndarray:
        blocks = self._blocks
        nbytes = size * dtype.itemsize
        if nbytes > self.limit:
            return _new_buffer(size, dtype)
        for i in range(len(blocks) - 1, -1, -1):  # the most recently used first: warm pages
            b = blocks[i]
            if b.size == size and b.dtype == dtype:
                del b
                if _refs(blocks, i) == _SOLE:
                    found = blocks.pop(i)
                    blocks.append(found)
                    return found[:]
        b = _new_buffer(size, dtype)
        self._make_room(nbytes)
        blocks.append(b)
        return b[:]

    def _make_room(self, nbytes: int) -> None:
        """Forget buffers, free ones first and the least recently used first, until
        `nbytes` more fit within the limit (a forgotten buffer in use stays its holder's)."""
        blocks = self._blocks
        held = sum(b.nbytes for b in blocks)
        for only_free in (True, False):
            i = 0
            while held + nbytes > self.limit and i < len(blocks):
                if not only_free or _refs(blocks, i) == _SOLE:
                    held -= blocks.pop(i).nbytes
                else:
                    i += 1

    def forget(self, arrays) -> None:
        """Stop tracking the buffers under `arrays` (from `take`). For a call that raised:
        Numba does not drop the references its locals held, so those buffers would never
        look free again, and may still be referenced by the exception's arguments."""
        bases = {id(a.base) for a in arrays if a.base is not None}
        with self._lock:
            if self._busy:
                return
            self._blocks[:] = [b for b in self._blocks if id(b) not in bases]

    def release(self) -> int:
        """Drop every buffer nothing else refers to; the bytes given back."""
        with self._lock:
            if self._busy:
                return 0
            blocks = self._blocks
            freed, i = 0, 0
            while i < len(blocks):
                if _refs(blocks, i) == _SOLE:
                    freed += blocks.pop(i).nbytes
                else:
                    i += 1
            return freed

    def held_bytes(self) -> tuple[int, int]:
        """(bytes of all buffers the pool holds, bytes of those nothing else refers to)."""
        with self._lock:
            blocks = self._blocks
            free = sum(blocks[i].nbytes for i in range(len(blocks))
                       if _refs(blocks, i) == _SOLE)
            return sum(b.nbytes for b in blocks), free

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        self._busy = False


def _new_buffer(size: int, dtype: np.dtype) -> np.ndarray:
    buf = np.empty(size, dtype)
    _advise_huge_pages(buf)
    return buf


def _advise_huge_pages(buf: np.ndarray) -> None:
    """Transparent huge pages for a new buffer's whole 2 MiB pages, before its first write
    (as the kernels do for the arrays they allocate themselves)."""
    from .codegen import huge_pages_available
    if not huge_pages_available():
        return
    libc = _libc()
    if libc is None:
        return
    start = (buf.ctypes.data + (2 << 20) - 1) & ~((2 << 20) - 1)
    end = (buf.ctypes.data + buf.nbytes) & ~((2 << 20) - 1)
    if end > start:
        libc.madvise(start, end - start, 14)  # MADV_HUGEPAGE


_LIBC: list = []


def _libc():
    if not _LIBC:
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = (ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int)
            libc.madvise.restype = ctypes.c_int
        except (OSError, AttributeError):
            libc = None
        _LIBC.append(libc)
    return _LIBC[0]


POOL = BufferPool(_limit_from_env())
if hasattr(os, "register_at_fork"):  # a child forked while another thread held the lock
    os.register_at_fork(after_in_child=POOL._after_fork_in_child)


def release_buffers() -> int:
    """Give back the memory tracejit keeps for reuse by later calls (the big arrays of
    earlier results nothing refers to any more); returns the bytes released."""
    return POOL.release()
