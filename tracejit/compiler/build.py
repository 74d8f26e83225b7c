"""Turning generated source into a callable: the on-disk module cache and Numba.

Each program's module is written once to `<cache dir>/tj_<sha256>.py` (temp file + atomic
rename, so concurrent processes never see half a file), imported under a unique module name
and compiled by Numba with `cache=True`, so a new process finds both the module and Numba's
machine code on disk. A module is imported only if its content still hashes to its name: a
stale, corrupt or tampered file is rewritten, never run. The directory is private (0700).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

from ..errors import TracejitError


class CompileError(TracejitError, RuntimeError):
    """Numba rejected generated code: a tracejit bug. The message names the module path."""


def cache_dir() -> str:
    path = os.environ.get("TRACEJIT_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                                ".cache")
        path = os.path.join(base, "tracejit")
    os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path


def _numba_version() -> str:
    import numba
    return numba.__version__


def source_key(source: str) -> str:
    """The cache key: the source plus everything that changes what Numba makes of it."""
    h = hashlib.sha256()
    h.update(source.encode())
    h.update(_numba_version().encode())
    h.update(sys.version.encode())
    return h.hexdigest()[:32]


def _content_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def module_path(source: str, directory: str | None = None) -> str:
    """Where the module of `source` lives in the cache."""
    return os.path.join(directory or cache_dir(), f"tj_{source_key(source)}.py")


def write_module(source: str, directory: str | None = None) -> str:
    """Write `source` under its hash (unless an intact copy is there); return the path."""
    directory = directory or cache_dir()
    path = module_path(source, directory)
    marker = f"# sha256: {_content_hash(source)}\n"
    text = marker + source
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return path
        except (OSError, UnicodeDecodeError):
            pass
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tj_", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


_IMPORT_LOCK = threading.RLock()


def load_module(path: str):
    """Import a generated module (verifying its content hash first)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    first, _, source = text.partition("\n")
    if first != f"# sha256: {_content_hash(source)}":
        raise CompileError(f"generated module {path} does not match its hash")
    name = "tracejit_generated_" + os.path.basename(path)[3:-3]
    # One import at a time: a module is in sys.modules before its body has run, and a
    # second thread finding it there would get a module without its `kernel` yet.
    with _IMPORT_LOCK:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None) == path:
            return module
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


def build(source: str):
    """Write (or find) the module for `source`, import it, and return it."""
    path = write_module(source)
    try:
        return load_module(path)
    except CompileError:
        os.unlink(path)
        return load_module(write_module(source))
