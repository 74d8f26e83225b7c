"""Reductions and cumulative functions with NumPy's `axis`, `keepdims` and dtype rules."""

from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes
from ..primitives import elementwise as ew
from ..primitives import reductions as rd
from ..primitives import structural as st
from ._base import as_operand, aval, cast, normalize_axes, normalize_axis, shape


def _keep(result, in_shape, axes, keepdims):
    if not keepdims:
        return result
    kept = tuple(1 if i in axes else d for i, d in enumerate(in_shape))
    return st.reshape(result, kept) if not isinstance(result, np.ndarray) else \
        np.reshape(result, kept)


def _reduction_dtype(numpy_fn, x, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    return np.asarray(numpy_fn(np.zeros((1,), aval(x).dtype))).dtype


def _no_out(out, name):
    if out is not None:
        raise NotImplementedError(f"tracejit.numpy.{name} does not support out=")


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _no_out(out, "sum")
    a = as_operand(a)
    if where is not None:
        from ._ufuncs import where as _where
        a = _where(where, a, 0)
    axes = normalize_axes(axis, len(shape(a)))
    x = cast(a, _reduction_dtype(np.sum, a, dtype))
    result = rd.reduce_sum(x, axes)
    if initial is not None:
        result = ew.add(result, np.asarray(initial, aval(x).dtype)[()])
    return _keep(result, shape(a), axes, keepdims)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _no_out(out, "prod")
    a = as_operand(a)
    if where is not None:
        from ._ufuncs import where as _where
        a = _where(where, a, 1)
    axes = normalize_axes(axis, len(shape(a)))
    x = cast(a, _reduction_dtype(np.prod, a, dtype))
    result = rd.reduce_prod(x, axes)
    if initial is not None:
        result = ew.mul(result, np.asarray(initial, aval(x).dtype)[()])
    return _keep(result, shape(a), axes, keepdims)


def _extremum(prim_fn, name):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        _no_out(out, name)
        if where is not None:
            raise NotImplementedError(f"tracejit.numpy.{name} does not support where=")
        a = as_operand(a)
        s = shape(a)
        axes = normalize_axes(axis, len(s))
        empty = builtins.any(s[i] == 0 for i in axes)
        if empty and initial is None:
            raise ValueError(f"zero-size array to reduction operation {name} which has no "
                             "identity")
        if initial is not None:
            initial = cast(initial, aval(a).dtype)  # NumPy casts `initial` to a's dtype
        if empty:  # only `initial` remains
            from ._creation import full
            return _keep(full([d for i, d in enumerate(s) if i not in axes], initial), s,
                         axes, keepdims)
        if dtypes.is_complex(aval(a).dtype):  # NumPy's lexicographic order
            from . import _complex_order
            result = _complex_order.reduce_extremum(a, axes, name == "max")
        else:
            result = prim_fn(a, axes)
        if initial is not None:
            from ._ufuncs import maximum, minimum
            result = (maximum if name == "max" else minimum)(result, initial)
        return _keep(result, s, axes, keepdims)
    fn.__name__ = name
    fn.__doc__ = f"Like numpy.{name} (NaN propagates, as in NumPy)."
    return fn


max = _extremum(rd.reduce_max, "max")
min = _extremum(rd.reduce_min, "min")
amax, amin = max, min


def _arg_extremum(real_fn, name):
    def prim_fn(x, axis):
        if dtypes.is_complex(aval(x).dtype):  # NumPy's lexicographic order, from the parts
            from . import _complex_order
            return _complex_order.arg_extremum(x, axis, name == "argmax")
        return real_fn(x, axis)

    def fn(a, axis=None, out=None, *, keepdims=False):
        _no_out(out, name)
        a = as_operand(a)
        s = shape(a)
        if axis is not None and len(s) == 0:
            normalize_axes(axis, 0)  # 0 or -1 (as NumPy allows), else AxisError
            axis = None
        if axis is None:
            if 0 in s:
                raise ValueError(f"attempt to get {name} of an empty sequence")
            flat = st.reshape(a, (int(np.prod(s, dtype=np.int64)),))
            result = prim_fn(flat, 0)
            return st.reshape(result, (1,) * len(s)) if keepdims else result
        ax = normalize_axis(axis, len(s))
        if s[ax] == 0:
            raise ValueError(f"attempt to get {name} of an empty sequence")
        result = prim_fn(a, ax)
        return _keep(result, s, (ax,), keepdims)
    fn.__name__ = name
    return fn


argmax = _arg_extremum(rd.argmax, "argmax")
argmin = _arg_extremum(rd.argmin, "argmin")


def _count(s, axes) -> int:
    return int(np.prod([s[i] for i in axes], dtype=np.int64))


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _no_out(out, "mean")
    a = as_operand(a)
    s = shape(a)
    axes = normalize_axes(axis, len(s))
    if dtype is None:
        dtype = aval(a).dtype if dtypes.is_inexact(aval(a).dtype) else dtypes.float64
    if where is not None:
        from ._ufuncs import where as _where
        total = sum(_where(where, a, 0), axis=axes, dtype=dtype, keepdims=keepdims)
        from ._shape import broadcast_to
        count = sum(broadcast_to(cast(as_operand(where), dtype), s), axis=axes,
                    keepdims=keepdims)
        return ew.div(total, count)
    total = sum(a, axis=axes, dtype=dtype, keepdims=keepdims)
    n = _count(s, axes)
    return ew.div(total, np.asarray(n if n else np.nan, np.dtype(dtype))[()])


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    _no_out(out, "var")
    if where is not None or mean is not None:
        raise NotImplementedError("tracejit.numpy.var does not support where= or mean=")
    if correction is not None:
        ddof = correction
    a = as_operand(a)
    s = shape(a)
    axes = normalize_axes(axis, len(s))
    if dtype is None:
        dtype = aval(a).dtype if dtypes.is_inexact(aval(a).dtype) else dtypes.float64
    x = cast(a, dtype)
    centered = ew.sub(x, _mean_keep(x, axes))
    if dtypes.is_complex(dtype):  # |x - mean|^2: the variance of complex values is real
        centered = ew.abs_(centered)
    sq = rd.reduce_sum(ew.mul(centered, centered), axes)
    n = _count(s, axes) - ddof
    # NumPy divides by max(n - ddof, 0): inf (or nan for 0/0) when ddof >= n.
    result = ew.div(sq, np.asarray(builtins.max(n, 0), dtypes.real_dtype(dtype))[()])
    return _keep(result, s, axes, keepdims)


def _mean_keep(x, axes):
    s = shape(x)
    n = _count(s, axes)
    m = ew.div(rd.reduce_sum(x, axes), np.asarray(n if n else np.nan, aval(x).dtype)[()])
    return rd.expand_reduced(m, s, axes)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    return ew.sqrt(var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                       where=where, mean=mean, correction=correction))


def _cumulative(prim_fn, numpy_fn, name):
    def fn(a, axis=None, dtype=None, out=None):
        _no_out(out, name)
        a = as_operand(a)
        if axis is None:
            a = st.reshape(a, (int(np.prod(shape(a), dtype=np.int64)),))
            axis = 0
        s = shape(a)
        if len(s) == 0:
            a, s = st.reshape(a, (1,)), (1,)
        ax = normalize_axis(axis, len(s))
        x = cast(a, _reduction_dtype(numpy_fn, a, dtype))
        if s[ax] == 0:
            return x
        return prim_fn(x, ax)
    fn.__name__ = name
    return fn


cumsum = _cumulative(rd.cumsum, np.sum, "cumsum")
cumprod = _cumulative(rd.cumprod, np.prod, "cumprod")


def any(a, axis=None, out=None, keepdims=False):
    from ._ufuncs import not_equal
    _no_out(out, "any")
    a = as_operand(a)
    axes = normalize_axes(axis, len(shape(a)))
    truth = a if aval(a).dtype == dtypes.bool_ else not_equal(a, 0)
    if _count(shape(a), axes) == 0:  # nothing is true of no elements
        from ._creation import zeros
        return _keep(zeros(tuple(d for i, d in enumerate(shape(a)) if i not in axes), bool),
                     shape(a), axes, keepdims)
    return _keep(rd.reduce_max(truth, axes), shape(a), axes, keepdims)


def all(a, axis=None, out=None, keepdims=False):
    from ._ufuncs import not_equal
    _no_out(out, "all")
    a = as_operand(a)
    axes = normalize_axes(axis, len(shape(a)))
    truth = a if aval(a).dtype == dtypes.bool_ else not_equal(a, 0)
    if _count(shape(a), axes) == 0:  # everything is true of no elements
        from ._creation import ones
        return _keep(ones(tuple(d for i, d in enumerate(shape(a)) if i not in axes), bool),
                     shape(a), axes, keepdims)
    return _keep(rd.reduce_min(truth, axes), shape(a), axes, keepdims)


def count_nonzero(a, axis=None, *, keepdims=False):
    from ._ufuncs import not_equal
    return sum(not_equal(a, 0), axis=axis, dtype=np.int64, keepdims=keepdims)
