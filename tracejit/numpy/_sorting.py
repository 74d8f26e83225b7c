"""Sorting and order statistics. One primitive does the ordering (`argsort`, stable);
`sort` is argsort + gather, so derivatives flow through the permutation (the gather's
transpose scatters the cotangent back). Quantiles gather the order statistics around each
position and interpolate; `searchsorted` is its own zero-derivative primitive."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Tracer
from ..errors import ConcretizationError
from ..primitives import sorting as so
from ._base import as_operand, aval, cast, normalize_axis, result_dtype, shape, static_int
from ._indexing import take, take_along_axis
from ._shape import broadcast_to, moveaxis, ravel, reshape


def _prepare(a, axis):
    a = as_operand(a)
    if axis is None:
        return ravel(a), 0
    nd = len(shape(a))
    if nd == 0:
        raise np.exceptions.AxisError(f"axis {axis} is out of bounds for array of dimension 0")
    return a, normalize_axis(axis, nd)


def _check_kind(kind, order, stable):
    if order is not None:
        raise NotImplementedError("tracejit.numpy sorting does not support order= (no "
                                  "structured arrays)")
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise ValueError(f"sort kind must be one of 'quick', 'heap', or 'stable' (got {kind!r})")


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Stable argsort (ties keep their order, whatever `kind` says; NaNs last; complex
    values by real part, then imaginary part)."""
    _check_kind(kind, order, stable)
    a, axis = _prepare(a, axis)
    if dtypes.is_complex(aval(a).dtype):
        from ._complex_order import argsort as complex_argsort
        return complex_argsort(a, axis)
    if dtypes.is_bool(aval(a).dtype):
        a = cast(a, np.int8)
    return so.argsort(a, axis)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    _check_kind(kind, order, stable)
    a, axis = _prepare(a, axis)
    if shape(a)[axis] <= 1:
        return a
    return take_along_axis(a, argsort(a, axis), axis)


def _check_kth(kth, n):
    ks = np.atleast_1d(np.asarray(kth))
    if isinstance(kth, Tracer) or ks.dtype.kind not in "iu":
        raise TypeError("Partition index must be integer")
    for k in ks:
        if not -n <= int(k) < n:
            raise ValueError(f"kth(={int(k)}) out of bounds ({n})")


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """A valid partition: the whole axis sorted (NumPy leaves the order within the two
    sides unspecified; here it is ascending)."""
    a, ax = _prepare(a, axis)
    _check_kth(kth, shape(a)[ax])
    return sort(a, ax, order=order)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    a, ax = _prepare(a, axis)
    _check_kth(kth, shape(a)[ax])
    return argsort(a, ax, order=order)


def lexsort(keys, axis=-1):
    """Indirect stable sort on several keys, the last key primary."""
    if isinstance(keys, (Tracer, np.ndarray)):
        keys = [keys[i] for i in range(shape(keys)[0])]
    keys = [as_operand(k) for k in keys]
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    nd = len(shape(keys[0]))
    if nd == 0:
        raise np.exceptions.AxisError("axis -1 is out of bounds for array of dimension 0")
    ax = normalize_axis(axis, nd)
    idx = argsort(keys[0], ax)
    for k in keys[1:]:
        if shape(k) != shape(keys[0]):
            raise ValueError("all keys need to be the same shape")
        idx = take_along_axis(idx, argsort(take_along_axis(k, idx, ax), ax), ax)
    return idx


def searchsorted(a, v, side="left", sorter=None):
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    a, v = as_operand(a), as_operand(v)
    if len(shape(a)) != 1:
        raise ValueError("object too deep for desired array" if len(shape(a)) > 1 else
                         "object of too small depth for desired array")
    if sorter is not None:
        a = take(a, sorter)
    dt = result_dtype(a, v)
    if dtypes.is_bool(dt):
        dt = np.dtype(np.int8)
    return so.searchsorted(cast(a, dt), cast(v, dt), side)


# -- quantiles -------------------------------------------------------------------------------

_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _to_last(a, axis):
    """`a` with the reduced axes flattened into one last axis; the kept shape."""
    a = as_operand(a)
    nd = len(shape(a))
    if axis is None:
        axes = tuple(range(nd))
    elif isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(x, nd) for x in axis)
        if len(set(axes)) != len(axes):
            raise ValueError("duplicate value in 'axis'")
    else:
        axes = (normalize_axis(axis, nd),)
    kept = [d for d in range(nd) if d not in axes]
    from ._shape import transpose
    x = transpose(a, kept + list(axes)) if nd else a
    s = shape(a)
    n = int(np.prod([s[d] for d in axes], dtype=np.int64))
    return reshape(x, tuple(s[d] for d in kept) + (n,)), axes, [s[d] for d in kept]


def _keepdims_shape(in_shape, axes, q_shape):
    return tuple(q_shape) + tuple(1 if d in axes else n for d, n in enumerate(in_shape))


def _quantile(a, q, axis, method, keepdims, nan_aware, name):
    from ._reductions import any as any_
    from ._reductions import sum as sum_
    from ._ufuncs import (
        add,
        ceil,
        clip,
        equal,
        floor,
        isnan,
        less,
        logical_not,
        multiply,
        rint,
        subtract,
        where,
    )
    if method not in _METHODS:
        raise ValueError(f"'{method}' is not a valid method. Use one of: {_METHODS}")
    a = as_operand(a)
    if dtypes.is_bool(aval(a).dtype) or np.dtype(aval(a).dtype).kind == "c":
        raise TypeError(f"{name}: unsupported dtype {aval(a).dtype}")
    q = as_operand(q)
    if not isinstance(q, Tracer):
        qa = np.asarray(q)
        if np.any((qa < 0) | (qa > 1)) or np.any(np.isnan(qa)):
            raise ValueError("Quantiles must be in the range [0, 1]")
    # NEP 50: a Python-float q keeps float32 data float32; an array q promotes.
    out_dt = result_dtype(a, q) if dtypes.is_float(aval(a).dtype) else \
        result_dtype(np.zeros((), np.float64), q)
    if not dtypes.is_float(out_dt):
        out_dt = np.dtype(np.float64)
    in_shape = shape(a)
    x, axes, kept = _to_last(cast(a, out_dt), axis)
    n = shape(x)[-1]
    if n == 0:
        raise IndexError("cannot compute a quantile of an empty slice") if not nan_aware \
            else ValueError("cannot compute a quantile of an empty slice")
    s = sort(x, -1)
    q_shape = shape(q)
    qf = reshape(cast(q, out_dt), (-1,))
    m = shape(qf)[0]
    batch = tuple(kept)
    nan_row = any_(isnan(x), axis=-1, keepdims=True)
    if nan_aware:
        count = sum_(logical_not(isnan(x)), axis=-1, keepdims=True)
        last = cast(subtract(count, 1), out_dt)
    else:
        last = float(n - 1)
    pos = multiply(qf, last)  # batch + (m,) or (m,)
    pos = broadcast_to(pos, batch + (m,))
    lo_f = floor(pos)
    hi_f = ceil(pos)
    if method == "nearest":
        lo_f = hi_f = rint(pos)
    elif method == "lower":
        hi_f = lo_f
    elif method == "higher":
        lo_f = hi_f
    lo = clip(cast(lo_f, np.int64), 0, n - 1)
    hi = clip(cast(hi_f, np.int64), 0, n - 1)
    v_lo = take_along_axis(s, lo, -1)
    v_hi = take_along_axis(s, hi, -1)
    if method == "midpoint":
        r = multiply(add(v_lo, v_hi), 0.5)
    elif method == "linear":
        g = subtract(pos, lo_f)
        diff = subtract(v_hi, v_lo)
        # NumPy's lerp: from the nearer end, so the result is exact at both ends.
        r = where(less(g, 0.5), add(v_lo, multiply(diff, g)),
                  subtract(v_hi, multiply(diff, subtract(1.0, g))))
        r = where(equal(v_lo, v_hi), v_lo, r)
    else:
        r = v_lo
    if nan_aware:
        r = where(equal(count, 0), np.nan, r)
    else:
        r = where(nan_row, np.nan, r)
    r = cast(r, out_dt)
    # batch + (m,) -> q_shape + batch
    r = moveaxis(r, -1, 0) if batch else r
    r = reshape(r, tuple(q_shape) + batch)
    if keepdims:
        r = reshape(r, _keepdims_shape(in_shape, axes, q_shape))
    return r


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None, interpolation=None):
    if out is not None or weights is not None:
        raise NotImplementedError("tracejit.numpy.quantile does not support out= or weights=")
    return _quantile(a, q, axis, interpolation or method, keepdims, False, "quantile")


def _percent(q):
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        return q / 100  # a Python float stays weak (float32 data stays float32)
    if isinstance(q, Tracer):
        from ._ufuncs import divide
        return divide(q, 100.0)
    return np.true_divide(q, 100)


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, weights=None, interpolation=None):
    if out is not None or weights is not None:
        raise NotImplementedError("tracejit.numpy.percentile does not support out= or "
                                  "weights=")
    q = _percent(q)
    if not isinstance(q, Tracer) and (np.any(np.asarray(q) < 0) or
                                      np.any(np.asarray(q) > 1)):
        raise ValueError("Percentiles must be in the range [0, 100]")
    return _quantile(a, q, axis, interpolation or method, keepdims, False, "percentile")


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None, interpolation=None):
    if out is not None or weights is not None:
        raise NotImplementedError("tracejit.numpy.nanquantile does not support out= or "
                                  "weights=")
    return _quantile(a, q, axis, interpolation or method, keepdims, True, "nanquantile")


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None, interpolation=None):
    q = _percent(q)
    return nanquantile(a, q, axis, out, overwrite_input, method, keepdims, weights=weights,
                       interpolation=interpolation)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.median does not support out=")
    return _median(a, axis, keepdims, False)


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.nanmedian does not support out=")
    return _median(a, axis, keepdims, True)


def _median(a, axis, keepdims, nan_aware):
    """The middle order statistic, or the mean of the two middle ones (as NumPy)."""
    from ._reductions import any as any_
    from ._reductions import sum as sum_
    from ._ufuncs import add, equal, floor_divide, isnan, logical_not, multiply, subtract, where
    a = as_operand(a)
    dt = aval(a).dtype if dtypes.is_inexact(aval(a).dtype) else np.dtype(np.float64)
    in_shape = shape(a)
    x, axes, kept = _to_last(cast(a, dt), axis)
    n = shape(x)[-1]
    batch = tuple(kept)
    if n == 0:
        r = multiply(np.full(batch, np.nan, dt), 1.0)
        r = cast(as_operand(r), dt)
    else:
        s = sort(x, -1)
        if nan_aware:
            count = sum_(logical_not(isnan(x)), axis=-1, keepdims=True)
            hi = floor_divide(count, 2)
            lo = floor_divide(subtract(count, 1), 2)
            from ._ufuncs import clip
            lo, hi = clip(lo, 0, n - 1), clip(hi, 0, n - 1)
        else:
            lo = np.full(batch + (1,), (n - 1) // 2)
            hi = np.full(batch + (1,), n // 2)
        v_lo = take_along_axis(s, lo, -1)
        v_hi = take_along_axis(s, hi, -1)
        r = multiply(add(v_lo, v_hi), 0.5)
        if nan_aware:
            r = where(equal(count, 0), np.nan, r)
        else:  # NumPy's: the last in sorted order, a NaN (complex: the greatest NaN part)
            last = take_along_axis(s, np.full(batch + (1,), n - 1), -1)
            r = where(any_(isnan(x), axis=-1, keepdims=True), last, r)
        r = cast(reshape(r, batch), dt)
    if keepdims:
        r = reshape(r, _keepdims_shape(in_shape, axes, ()))
    return r


# -- unique ----------------------------------------------------------------------------------

def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           *, equal_nan=True, sorted=True, size=None, fill_value=None):
    """Sorted unique values. On traced input the result's length must be static: pass
    `size=` (extra slots hold `fill_value`, by default the smallest value; surplus unique
    values are dropped), as jax.numpy.unique does."""
    from ._shape import concatenate
    from ._ufuncs import isnan, less, logical_and, logical_not, not_equal, where
    if return_index or return_inverse or return_counts or axis is not None:
        raise NotImplementedError("tracejit.numpy.unique supports the values only (no "
                                  "return_index/inverse/counts, no axis)")
    ar = as_operand(ar)
    if size is None:
        if isinstance(ar, Tracer):
            raise ConcretizationError("unique of a traced array needs a static size=: its "
                                      "length depends on the values")
        return np.unique(np.asarray(ar), equal_nan=equal_nan)
    size = static_int(size, "size")
    x = ravel(ar)
    n = shape(x)[0]
    if n == 0:
        if fill_value is None:
            raise ValueError("unique: an empty array needs fill_value= with size=")
        return cast(as_operand(np.full(size, fill_value)), aval(x).dtype)
    s = sort(x)
    if n == 1:
        is_first = np.ones(1, bool)
    else:
        differ = not_equal(s[1:], s[:-1])
        if equal_nan and dtypes.is_float(aval(s).dtype):
            differ = logical_and(differ, logical_not(logical_and(isnan(s[1:]), isnan(s[:-1]))))
        is_first = concatenate([np.ones(1, bool), differ])
    from ._reductions import cumsum
    ident = cumsum(cast(is_first, np.int64)) - 1  # the unique value each sorted entry is
    j = np.arange(size)
    pos = searchsorted(ident, j, side="left")
    from ._ufuncs import clip
    vals = take(s, clip(pos, 0, n - 1))
    fill = s[0] if fill_value is None else cast(as_operand(fill_value), aval(s).dtype)
    return where(less(j, ident[-1] + 1), vals, fill)
