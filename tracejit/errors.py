"""Errors raised to users, and the helper that finds the user's source line.

Every error about a traced value names the line of *user* code that caused it: the
innermost stack frame that is not inside tracejit (or NumPy's dispatch machinery).
"""

from __future__ import annotations

import linecache
import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_DIRS = (_PACKAGE_DIR,)


def _skipped(filename: str) -> bool:
    if filename.startswith(_SKIP_DIRS):
        return True
    # NumPy's __array_function__ / __array_ufunc__ dispatch frames.
    return os.sep + "numpy" + os.sep in filename and "site-packages" in filename


def user_frame() -> tuple[str, int, str] | None:
    """(filename, line number, source text) of the innermost user frame, if any."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _skipped(os.path.abspath(filename)) and not filename.startswith("<frozen"):
            line = linecache.getline(filename, frame.f_lineno).strip()
            return filename, frame.f_lineno, line
        frame = frame.f_back
    return None


def user_location() -> str:
    """A one- or two-line description of where in user code we are."""
    where = user_frame()
    if where is None:
        return "(unknown location)"
    filename, lineno, line = where
    text = f"{filename}:{lineno}"
    if line:
        text += f"\n    {line}"
    return text


class TracejitError(Exception):
    """Base class of tracejit's own errors."""


class ConcretizationError(TracejitError, TypeError):
    """A traced value was used where a concrete Python value is required."""


class ShapeError(TracejitError, ValueError):
    """Operand shapes are incompatible (broadcasting, matmul, reshape, ...)."""


class EscapedTracerError(TracejitError, RuntimeError):
    """A traced value was used after the function that produced it finished tracing."""


class IRCheckError(TracejitError, AssertionError):
    """An IR failed the checker: an equation's recorded types disagree with its rules."""


def concretization_error(aval, what: str) -> ConcretizationError:
    return ConcretizationError(
        f"Cannot convert a traced value of type {aval} to a Python {what} at "
        f"{user_location()}\n"
        "Its value is unknown while the function is traced: only its shape and dtype are.\n"
        "Use tnp.where(condition, x, y) to choose between values elementwise, tj.cond / "
        "tj.switch to branch, tj.while_loop / tj.fori_loop to loop, or pass the argument as "
        "static (static_argnums=...) if it is a plain Python value."
    )
