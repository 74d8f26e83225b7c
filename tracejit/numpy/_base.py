"""Shared helpers of the NumPy front end: operand inspection, NumPy's dtype promotion, and
broadcasting (explicit `broadcast_in_dim`; 0-d operands stay scalars)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Tracer
from ..errors import ShapeError, user_location
from ..ir import ShapedArray, aval_of
from ..primitives import structural as st


def is_python_scalar(x) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    return aval_of(x)


def shape(x) -> tuple:
    return x.shape if isinstance(x, Tracer) else np.shape(x)


def ndim(x) -> int:
    return len(shape(x))


def dtype_item(x) -> tuple:
    """(dtype, weak) for promotion: Python scalars and weak tracers promote weakly; a dtype
    (np.float64, 'f4', np.dtype(...)) is itself, strongly, as in np.result_type."""
    if isinstance(x, (np.dtype, type, str)):
        return np.dtype(x), False
    a = aval(x)
    return a.dtype, a.weak_type


def as_operand(x):
    """Tracers stay; lists and NumPy values become arrays or scalars; bad types fail here."""
    if isinstance(x, Tracer) or is_python_scalar(x):
        return x
    if isinstance(x, (list, tuple)):
        if any(isinstance(e, Tracer) for e in _flat_seq(x)):
            from ._shape import stack
            return stack([as_operand(e) for e in x])
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"tracejit does not support values of dtype {arr.dtype} "
                        f"(got {type(x).__name__})")
    return arr


def _flat_seq(x):
    for e in x:
        if isinstance(e, (list, tuple)):
            yield from _flat_seq(e)
        else:
            yield e


def cast(x, dtype):
    dtype = np.dtype(dtype)
    if isinstance(x, Tracer):
        return st.convert(x, dtype)
    if is_python_scalar(x):
        return np.asarray(x, dtype=dtype)[()]
    arr = np.asarray(x)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def result_dtype(*xs) -> np.dtype:
    return dtypes.result_type(*[dtype_item(x) for x in xs])


_standin_cache: dict = {}


def ufunc_dtype(ufunc, *xs) -> np.dtype:
    """The dtype NumPy's `ufunc` gives for operands like `xs` (NEP 50 weak scalars)."""
    key = (ufunc, tuple(dtype_item(x) for x in xs))
    out = _standin_cache.get(key)
    if out is None:
        standins = [dtypes._weak_standin(d) if w else np.zeros((), d) for d, w in key[1]]
        with np.errstate(all="ignore"):
            try:
                out = np.asarray(ufunc(*standins)).dtype
            except TypeError as e:
                raise TypeError(f"{ufunc.__name__} is not supported for dtypes "
                                f"{[str(d) for d, _ in key[1]]}: {e}") from None
        _standin_cache[key] = out
    return out


def broadcast_shapes(*shapes) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError("operands could not be broadcast together with shapes "
                         + " ".join(str(tuple(s)) for s in shapes)
                         + f" at {user_location()}") from None


def broadcast_to(x, target: tuple):
    """NumPy broadcasting of `x` to `target` as an explicit IR op."""
    s = shape(x)
    if tuple(s) == tuple(target):
        return x
    if len(s) > len(target) or any(a not in (1, b) for a, b in zip(s[::-1], target[::-1])):
        raise ShapeError(f"cannot broadcast an array of shape {tuple(s)} to shape "
                         f"{tuple(target)} at {user_location()}")
    if not isinstance(x, Tracer):
        return np.broadcast_to(x, target)
    lead = len(target) - len(s)
    squeezed = [i for i, d in enumerate(s) if d == 1 and target[lead + i] != 1]
    if squeezed:
        keep = [i for i in range(len(s)) if i not in squeezed]
        x = st.reshape(x, [s[i] for i in keep])
        dims = [lead + i for i in keep]
    else:
        dims = list(range(lead, len(target)))
    return st.broadcast_in_dim(x, target, dims)


def promote_args(*xs, dtype=None):
    """Cast to one dtype and broadcast to one shape; 0-d operands are left as scalars,
    since elementwise primitives broadcast scalars implicitly."""
    xs = [as_operand(x) for x in xs]
    if dtype is None:
        dtype = result_dtype(*xs)
    xs = [cast(x, dtype) for x in xs]
    out_shape = broadcast_shapes(*[shape(x) for x in xs])
    return [x if ndim(x) == 0 else broadcast_to(x, out_shape) for x in xs], out_shape


def full_shape(xs, out_shape):
    """Broadcast 0-d operands too (where a primitive needs one shape for all operands)."""
    return [broadcast_to(x, out_shape) for x in xs]


def normalize_axis(axis: int, nd: int, name: str = "axis") -> int:
    axis = _as_int(axis, name)
    if not -nd <= axis < max(nd, 1) or (nd == 0 and axis not in (0, -1)):
        raise np.exceptions.AxisError(f"{name} {axis} is out of bounds for array of "
                                      f"dimension {nd}")
    return axis % nd if nd else 0


def normalize_axes(axis, nd: int) -> tuple:
    """`axis` as NumPy takes it (None, int, tuple; negatives) -> sorted tuple of ints."""
    if axis is None:
        return tuple(range(nd))
    if nd == 0 and not isinstance(axis, (tuple, list)) and _as_int(axis, "axis") in (0, -1):
        return ()  # NumPy lets 0-d reductions take axis 0 or -1: a no-op
    if isinstance(axis, (tuple, list)):
        if nd == 0 and axis:
            raise np.exceptions.AxisError(f"axis {axis[0]} is out of bounds for array of "
                                          "dimension 0")
        axes = tuple(normalize_axis(a, nd) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"duplicate value in 'axis': {axis}")
        return tuple(sorted(axes))
    return (normalize_axis(axis, nd),)


def _as_int(x, name):
    if isinstance(x, Tracer):
        raise TypeError(f"{name} must be a concrete integer, got a traced value {x.aval}")
    try:
        return int(np.asarray(x).item()) if np.ndim(x) == 0 else int(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {x!r}") from None


def static_int(x, name: str) -> int:
    return _as_int(x, name)


def static_shape(s, name: str = "shape") -> tuple:
    if isinstance(s, (int, np.integer)):
        return (int(s),)
    if isinstance(s, Tracer):
        raise TypeError(f"{name} must be concrete, got a traced value {s.aval}")
    return tuple(_as_int(d, name) for d in s)
