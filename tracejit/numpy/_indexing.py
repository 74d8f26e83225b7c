"""Indexing with NumPy's rules: basic indices (ints, slices with steps, None, ...) become
slice/rev/reshape; integer arrays (traced or concrete) become one `gather`; boolean masks
are allowed when concrete (their result shape depends on their values)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Tracer
from ..errors import ShapeError, user_location
from ..primitives import elementwise as ew
from ..primitives import structural as st
from ..primitives.indexing import gather
from ._base import as_operand, aval, broadcast_shapes, broadcast_to, cast, shape


def _is_int_scalar(k) -> bool:
    if isinstance(k, (bool, np.bool_)):
        return False
    if isinstance(k, (int, np.integer)):
        return True
    return isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu"


def _is_array_index(k) -> bool:
    if isinstance(k, Tracer):
        return True
    if isinstance(k, (list, np.ndarray)) and not _is_int_scalar(k):
        return True
    return isinstance(k, (bool, np.bool_))


def _expand_key(key, nd: int) -> list:
    key = list(key) if isinstance(key, tuple) else [key]
    # Boolean masks: concrete ones become integer arrays; traced ones cannot (shape).
    out = []
    for k in key:
        if isinstance(k, Tracer) and dtypes.is_bool(k.dtype):
            raise IndexError(
                f"boolean mask indexing with a traced mask {k.aval} at {user_location()}: "
                "the result's shape would depend on traced values. Use "
                "tnp.where(mask, x, 0) (or a sum with where=mask) instead.")
        if isinstance(k, list) and k and any(isinstance(e, Tracer) for e in k):
            k = as_operand(k)
        if isinstance(k, (list, np.ndarray, bool, np.bool_)) and np.asarray(k).dtype == bool:
            mask = np.asarray(k)
            if mask.ndim == 0:
                raise IndexError("indexing with a 0-d boolean is not supported by tracejit")
            out.extend(np.nonzero(mask))
            continue
        if isinstance(k, list):
            k = np.asarray(k)
            if k.dtype.kind not in "iu" and k.size:
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
            k = k.astype(np.int64)
        if isinstance(k, float):
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and "
                             "integer or boolean arrays are valid indices")
        out.append(k)
    n_ellipsis = sum(k is Ellipsis for k in out)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for k in out if k is not None and k is not Ellipsis)
    if used > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, but {used} "
                         "were indexed")
    if n_ellipsis:
        i = out.index(Ellipsis)
        out[i:i + 1] = [slice(None)] * (nd - used)
    else:
        out += [slice(None)] * (nd - used)
    return out


def getitem(x, key):
    x = as_operand(x)
    key = _expand_key(key, len(shape(x)))
    # None: a new axis of length 1, then index it with a full slice.
    new_shape, plain_key, d = [], [], 0
    s = shape(x)
    for k in key:
        if k is None:
            new_shape.append(1)
            plain_key.append(slice(None))
        else:
            new_shape.append(s[d])
            plain_key.append(k)
            d += 1
    x = st.reshape(x, new_shape)
    s = tuple(new_shape)

    # Slices (with steps, negative too) on every sliced axis at once.
    start, limit, strides, flips = [0] * len(s), list(s), [1] * len(s), []
    for i, k in enumerate(plain_key):
        if isinstance(k, slice):
            lo, hi, step = k.indices(s[i])
            n = len(range(lo, hi, step))
            if step < 0:
                flips.append(i)
                lo, step = s[i] - 1 - lo, -step
            hi = lo + (n - 1) * step + 1 if n > 0 else lo
            start[i], limit[i], strides[i] = lo, hi, step
    x = st.rev(x, flips)
    x = st.slice_(x, start, limit, strides)
    s = shape(x)

    has_array = any(_is_array_index(k) for k in plain_key)
    if not has_array:
        # Integers: a size-1 slice, then drop the axis.
        start, limit = [0] * len(s), list(s)
        drop = []
        for i, k in enumerate(plain_key):
            if _is_int_scalar(k):
                j = _check_bound(int(k), s[i], i)
                start[i], limit[i] = j, j + 1
                drop.append(i)
        x = st.slice_(x, start, limit)
        return st.reshape(x, [d for i, d in enumerate(s) if i not in drop])
    return _advanced(x, plain_key)


def _check_bound(i: int, n: int, axis: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
    return i % n


def _normalize_index_array(k, n: int, axis: int):
    if isinstance(k, Tracer):
        if not dtypes.is_int(k.dtype) or dtypes.is_bool(k.dtype):
            raise IndexError(f"arrays used as indices must be of integer type, got {k.dtype}")
        k = cast(k, np.int64)
        return st.select(ew.lt(k, 0), ew.add(k, n), k)
    arr = np.asarray(k)
    if arr.dtype.kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    bad = (arr < -n) | (arr >= n)
    if bad.any():
        raise IndexError(f"index {int(arr[bad].flat[0])} is out of bounds for axis {axis} with "
                         f"size {n}")
    return np.where(arr < 0, arr + n, arr).astype(np.int64)


def _advanced(x, key):
    s = shape(x)
    adv = [i for i, k in enumerate(key) if _is_array_index(k) or _is_int_scalar(k)]
    rest = [i for i in range(len(s)) if i not in adv]
    idx = [_normalize_index_array(key[i], s[i], i) for i in adv]
    if isinstance(x, Tracer):
        # Concrete index arrays join the trace one by one rather than stacked by NumPy, so
        # an `arange` among them is an `iota` the loop computes, not an array it reads.
        idx = [i if isinstance(i, Tracer) else Tracer(x.builder, x.builder.to_atom(i))
               for i in idx]
    b_shape = broadcast_shapes(*[shape(i) for i in idx])
    idx = [broadcast_to(i, b_shape) for i in idx]
    from ._shape import stack
    stacked = stack(idx, axis=-1) if len(idx) > 1 else st.reshape(idx[0], b_shape + (1,))
    moved = st.transpose(x, adv + rest)
    out = gather(moved, stacked)  # (*b_shape, *rest dims)
    adjacent = adv == list(range(adv[0], adv[0] + len(adv)))
    if adjacent and adv[0] > 0:
        nb = len(b_shape)
        before = list(range(nb, nb + adv[0]))
        perm = before + list(range(nb)) + list(range(nb + adv[0], nb + len(rest)))
        out = st.transpose(out, perm)
    return out


def take(a, indices, axis=None, out=None, mode=None):
    if out is not None:
        raise NotImplementedError("tracejit.numpy.take does not support out=")
    if mode not in (None, "raise"):
        raise NotImplementedError("tracejit.numpy.take supports mode='raise' only")
    a = as_operand(a)
    if axis is None:
        from ._shape import ravel
        a, axis = ravel(a), 0
    from ._base import normalize_axis
    ax = normalize_axis(axis, len(shape(a)))
    indices = as_operand(indices) if not isinstance(indices, (int, np.integer)) else indices
    return getitem(a, (slice(None),) * ax + (indices,))


def take_along_axis(arr, indices, axis):
    arr = as_operand(arr)
    if axis is None:
        from ._shape import ravel
        arr, axis = ravel(arr), 0
    from ._base import normalize_axis
    s = shape(arr)
    ax = normalize_axis(axis, len(s))
    indices = as_operand(indices)
    if len(shape(indices)) != len(s):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    key = []
    for d in range(len(s)):
        if d == ax:
            key.append(indices)
        else:
            view = [1] * len(s)
            view[d] = s[d]
            key.append(np.arange(s[d]).reshape(view))
    return getitem(arr, tuple(key))


def nonzero(a):
    if isinstance(a, Tracer):
        raise ShapeError(f"nonzero/argwhere/one-argument where of a traced array at "
                         f"{user_location()}: the result's shape would depend on traced "
                         "values. Use tnp.where(condition, x, y) instead.")
    return np.nonzero(a)


def setitem_error(self, key, value):
    raise TypeError(
        f"traced arrays are immutable: item assignment `x[...] = v` on {aval(self)} at "
        f"{user_location()}. Build the new array with tnp.where, tnp.concatenate or "
        "arithmetic instead.")
