"""Array creation. Shapes are static, so these return concrete NumPy arrays (which become
IR constants when they meet traced values); `*_like` of a traced array uses its shape and
dtype, `full` with a traced fill value records a broadcast, `asarray` keeps traced values."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Tracer
from ..primitives import structural as st
from ._base import as_operand, aval, cast, static_shape


def _dtype(dtype, default=np.float64):
    return dtypes.check_supported(np.dtype(default if dtype is None else dtype))


def zeros(shape, dtype=None, order="C"):
    return np.zeros(static_shape(shape), _dtype(dtype))


def ones(shape, dtype=None, order="C"):
    return np.ones(static_shape(shape), _dtype(dtype))


def empty(shape, dtype=None, order="C"):
    """Like numpy.empty, but zero-filled: traced programs never read uninitialised memory."""
    return np.zeros(static_shape(shape), _dtype(dtype))


def full(shape, fill_value, dtype=None, order="C"):
    shape = static_shape(shape)
    if isinstance(fill_value, Tracer):
        value = cast(fill_value, _dtype(dtype, fill_value.dtype))
        if value.shape == ():
            return st.broadcast_in_dim(value, shape, ())
        from ._base import broadcast_to
        return broadcast_to(value, shape)
    if dtype is None:
        dtype = np.asarray(fill_value).dtype
    return np.full(shape, fill_value, _dtype(dtype))


def _like_shape(a, shape):
    return aval(as_operand(a)).shape if shape is None else static_shape(shape)


def _like_dtype(a, dtype):
    return _dtype(dtype, aval(as_operand(a)).dtype)


def zeros_like(a, dtype=None, order="K", subok=True, shape=None):
    return np.zeros(_like_shape(a, shape), _like_dtype(a, dtype))


def ones_like(a, dtype=None, order="K", subok=True, shape=None):
    return np.ones(_like_shape(a, shape), _like_dtype(a, dtype))


def empty_like(a, dtype=None, order="K", subok=True, shape=None):
    return zeros_like(a, dtype, shape=shape)


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    return full(_like_shape(a, shape), fill_value, _like_dtype(a, dtype))


def arange(start, stop=None, step=None, dtype=None):
    for v in (start, stop, step):
        if isinstance(v, Tracer):
            raise TypeError("arange needs concrete bounds: its length would depend on traced "
                            "values")
    return np.arange(start, stop, step, dtype=dtype)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    if not isinstance(start, Tracer) and not isinstance(stop, Tracer):
        return np.linspace(start, stop, num, endpoint, retstep, dtype, axis)
    if axis != 0 or np.ndim(start) or np.ndim(stop):
        raise NotImplementedError("linspace with traced bounds supports scalar bounds, axis=0")
    from ._ufuncs import add, multiply, subtract
    div = (num - 1) if endpoint else num
    steps = np.arange(num, dtype=np.float64) / div if div > 0 else np.zeros(num)
    delta = subtract(stop, start)
    out = add(multiply(steps, delta), start)
    if endpoint and num > 1:
        from ._indexing import getitem
        from ._shape import concatenate
        out = concatenate([getitem(out, slice(0, num - 1)), st.reshape(
            cast(stop, aval(out).dtype), (1,))])
    if dtype is not None:
        out = cast(out, dtype)
    if retstep:
        return out, multiply(delta, 1.0 / div) if div > 0 else np.nan
    return out


def eye(N, M=None, k=0, dtype=float, order="C"):
    return np.eye(N, M, k, dtype=_dtype(dtype))


def identity(n, dtype=None):
    return np.identity(n, dtype=_dtype(dtype))


def asarray(a, dtype=None, order=None, *, copy=None):
    a = as_operand(a)
    if isinstance(a, (bool, int, float, complex)):
        a = np.asarray(a)
    return a if dtype is None else cast(a, _dtype(dtype))


def array(object, dtype=None, *, copy=True, order="K", ndmin=0):
    a = asarray(object, dtype)
    if ndmin and aval(a).ndim < ndmin:
        a = st.reshape(a, (1,) * (ndmin - aval(a).ndim) + aval(a).shape)
    if not isinstance(a, Tracer) and copy:
        a = np.array(a, copy=True)
    return a


def astype(x, dtype, /, *, copy=True):
    return cast(as_operand(x), _dtype(dtype))


def copy(a, order="K"):
    a = as_operand(a)
    return a if isinstance(a, Tracer) else np.array(a, copy=True)
