"""Structural primitives: broadcast, reshape, transpose, convert, select, slice, pad,
concatenate, rev, iota, stop_gradient. Each is followed by its rules.

All of these except `select`'s predicate, `iota` and `stop_gradient` are linear, so each has a
transpose rule next to its JVP.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import Zero, deflinear, instantiate, is_zero, jvp_rules
from ..transforms.transpose import is_undefined, transpose_rules
from .elementwise import _aval, _elementwise_shape, sub, unbroadcast


def _ints(xs) -> tuple:
    return tuple(int(x) for x in xs)


# -- broadcast_in_dim -------------------------------------------------------------------------

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def broadcast_in_dim(x, shape, broadcast_dimensions):
    shape, dims = _ints(shape), _ints(broadcast_dimensions)
    if _aval(x).shape == shape and dims == tuple(range(len(shape))):
        return x
    return bind(broadcast_in_dim_p, x, shape=shape, broadcast_dimensions=dims)


def _broadcast_in_dim_abstract(x, *, shape, broadcast_dimensions):
    if len(broadcast_dimensions) != x.ndim or any(
            not (0 <= d < len(shape)) for d in broadcast_dimensions) or list(
            broadcast_dimensions) != sorted(set(broadcast_dimensions)):
        raise ShapeError(f"broadcast_in_dim: bad broadcast_dimensions {broadcast_dimensions} "
                         f"for operand {x.shape} and shape {shape}")
    for i, d in enumerate(broadcast_dimensions):
        if x.shape[i] not in (1, shape[d]):
            raise ShapeError(f"cannot broadcast shape {x.shape} to {shape}")
    return ShapedArray(shape, x.dtype)


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape).copy()


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    from .reductions import reduce_sum
    if is_zero(ct):
        return [Zero(x.aval)]
    summed = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    kept_ones = tuple(d for i, d in enumerate(broadcast_dimensions)
                      if x.aval.shape[i] == 1 and shape[d] != 1)
    out = reduce_sum(ct, tuple(sorted(summed + kept_ones)))
    return [reshape(out, x.aval.shape)]


abstract_eval_rules[broadcast_in_dim_p] = _broadcast_in_dim_abstract
impl_rules[broadcast_in_dim_p] = _broadcast_in_dim_impl
deflinear(broadcast_in_dim_p)
transpose_rules[broadcast_in_dim_p] = _broadcast_in_dim_transpose


# -- reshape ---------------------------------------------------------------------------------

reshape_p = Primitive("reshape")


def reshape(x, new_shape):
    new_shape = _ints(new_shape)
    if _aval(x).shape == new_shape:
        return x
    return bind(reshape_p, x, new_shape=new_shape)


def _reshape_abstract(x, *, new_shape):
    if int(np.prod(new_shape, dtype=np.int64)) != x.size:
        raise ShapeError(f"cannot reshape an array of shape {x.shape} into shape {new_shape}")
    return ShapedArray(new_shape, x.dtype)


abstract_eval_rules[reshape_p] = _reshape_abstract
impl_rules[reshape_p] = lambda x, *, new_shape: np.reshape(np.asarray(x), new_shape).copy()
deflinear(reshape_p)
transpose_rules[reshape_p] = lambda ct, x, *, new_shape: [
    ct if is_zero(ct) else reshape(ct, x.aval.shape)]


# -- transpose -------------------------------------------------------------------------------

transpose_p = Primitive("transpose")


def transpose(x, permutation):
    perm = _ints(permutation)
    if perm == tuple(range(len(perm))):
        return x
    return bind(transpose_p, x, permutation=perm)


def _transpose_abstract(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise ShapeError(f"transpose: {permutation} is not a permutation of the axes of an "
                         f"array of shape {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype)


abstract_eval_rules[transpose_p] = _transpose_abstract
impl_rules[transpose_p] = lambda x, *, permutation: np.transpose(x, permutation).copy()
deflinear(transpose_p)
transpose_rules[transpose_p] = lambda ct, x, *, permutation: [
    ct if is_zero(ct) else transpose(ct, tuple(np.argsort(permutation)))]


# -- convert ---------------------------------------------------------------------------------

convert_p = Primitive("convert")


def convert(x, dtype):
    dtype = np.dtype(dtype)
    if _aval(x).dtype == dtype:
        return x
    return bind(convert_p, x, new_dtype=dtype)


abstract_eval_rules[convert_p] = lambda x, *, new_dtype: ShapedArray(
    x.shape, dtypes.check_supported(new_dtype))
def _convert_impl(x, *, new_dtype):
    x = np.asarray(x)
    if dtypes.is_complex(x.dtype) and dtypes.is_bool(new_dtype):
        return x != 0
    if dtypes.is_complex(x.dtype) and not dtypes.is_complex(new_dtype):
        x = x.real  # NumPy's astype drops the imaginary part too, with a warning
    return x.astype(new_dtype)


impl_rules[convert_p] = _convert_impl


def _convert_jvp(primals, tangents, *, new_dtype):
    (x,), (t,) = primals, tangents
    out = convert(x, new_dtype)
    if is_zero(t) or not (dtypes.is_inexact(new_dtype) and dtypes.is_inexact(_aval(x).dtype)):
        return out, Zero(ShapedArray(_aval(x).shape, new_dtype))
    return out, convert(t, new_dtype)


jvp_rules[convert_p] = _convert_jvp
transpose_rules[convert_p] = lambda ct, x, *, new_dtype: [
    ct if is_zero(ct) else convert(ct, x.aval.dtype)]


# -- select ----------------------------------------------------------------------------------

select_p = Primitive("select")


def select(pred, on_true, on_false):
    """Elementwise `on_true if pred else on_false`; Python scalars take the other's dtype."""
    from .elementwise import _coerce
    on_true, on_false = _coerce(on_true, on_false)
    return bind(select_p, pred, on_true, on_false)


def _select_abstract(pred, a, b):
    if not dtypes.is_bool(pred.dtype):
        raise TypeError(f"select: predicate must be bool, got {pred.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"select: branches must have one dtype, got {a.dtype} and {b.dtype}")
    return ShapedArray(_elementwise_shape("select", (pred, a, b)), a.dtype)


def _select_impl(pred, a, b):
    return np.asarray(np.where(pred, a, b), dtype=np.result_type(a, b))


def _select_jvp(primals, tangents):
    pred, a, b = primals
    _, ta, tb = tangents
    out = select(pred, a, b)
    if is_zero(ta) and is_zero(tb):
        return out, Zero(_aval(out))
    return out, select(pred, instantiate(ta), instantiate(tb))


def _select_transpose(ct, pred, a, b):
    if is_undefined(pred):
        raise NotImplementedError("select is not linear in its predicate")
    if is_zero(ct):
        return [None, Zero(a.aval) if is_undefined(a) else None,
                Zero(b.aval) if is_undefined(b) else None]
    zero = np.zeros((), _aval(ct).dtype)[()]
    return [None,
            unbroadcast(select(pred, ct, zero), a.aval) if is_undefined(a) else None,
            unbroadcast(select(pred, zero, ct), b.aval) if is_undefined(b) else None]


abstract_eval_rules[select_p] = _select_abstract
impl_rules[select_p] = _select_impl
jvp_rules[select_p] = _select_jvp
transpose_rules[select_p] = _select_transpose


# -- slice -----------------------------------------------------------------------------------

slice_p = Primitive("slice")


def slice_(x, start, limit, strides=None):
    shape = _aval(x).shape
    start, limit = _ints(start), _ints(limit)
    strides = _ints(strides) if strides is not None else (1,) * len(shape)
    if start == (0,) * len(shape) and limit == shape and strides == (1,) * len(shape):
        return x
    return bind(slice_p, x, start=start, limit=limit, strides=strides)


def _slice_out_shape(start, limit, strides):
    return tuple(max(0, -(-(hi - lo) // st)) for lo, hi, st in zip(start, limit, strides))


def _slice_abstract(x, *, start, limit, strides):
    if not (len(start) == len(limit) == len(strides) == x.ndim) or any(
            not (0 <= lo <= hi <= n) or st < 1
            for lo, hi, st, n in zip(start, limit, strides, x.shape)):
        raise ShapeError(f"slice: bad bounds start={start} limit={limit} strides={strides} "
                         f"for shape {x.shape}")
    return ShapedArray(_slice_out_shape(start, limit, strides), x.dtype)


def _slice_impl(x, *, start, limit, strides):
    return np.asarray(x)[tuple(slice(a, b, s) for a, b, s in zip(start, limit, strides))].copy()


def _slice_transpose(ct, x, *, start, limit, strides):
    if is_zero(ct):
        return [Zero(x.aval)]
    out_shape = _aval(ct).shape
    low = start
    interior = tuple(s - 1 for s in strides)
    high = tuple(n - (lo + (m - 1) * st + 1) if m > 0 else n - lo
                 for n, lo, m, st in zip(x.aval.shape, start, out_shape, strides))
    zero = np.zeros((), x.aval.dtype)[()]
    return [pad(ct, zero, low, high, interior)]


abstract_eval_rules[slice_p] = _slice_abstract
impl_rules[slice_p] = _slice_impl
deflinear(slice_p)
transpose_rules[slice_p] = _slice_transpose


# -- pad -------------------------------------------------------------------------------------

pad_p = Primitive("pad")


def pad(x, padding_value, low, high, interior=None):
    n = _aval(x).ndim
    interior = _ints(interior) if interior is not None else (0,) * n
    from .elementwise import _coerce
    x, padding_value = _coerce(x, padding_value)
    return bind(pad_p, x, padding_value, low=_ints(low), high=_ints(high), interior=interior)


def _pad_shape(shape, low, high, interior):
    return tuple(lo + hi + n + max(n - 1, 0) * it
                 for n, lo, hi, it in zip(shape, low, high, interior))


def _pad_abstract(x, v, *, low, high, interior):
    if v.shape != () or v.dtype != x.dtype:
        raise TypeError(f"pad: padding value must be a 0-d {x.dtype}, got {v}")
    if not (len(low) == len(high) == len(interior) == x.ndim) or min(
            low + high + interior, default=0) < 0:
        raise ShapeError(f"pad: bad padding low={low} high={high} interior={interior} for "
                         f"shape {x.shape}")
    return ShapedArray(_pad_shape(x.shape, low, high, interior), x.dtype)


def _pad_impl(x, v, *, low, high, interior):
    x = np.asarray(x)
    out = np.full(_pad_shape(x.shape, low, high, interior), v, dtype=x.dtype)
    index = tuple(slice(lo, lo + max(n - 1, 0) * (it + 1) + 1, it + 1)
                  for n, lo, it in zip(x.shape, low, interior))
    if x.size:
        out[index] = x
    return out


def _pad_transpose(ct, x, v, *, low, high, interior):
    from .reductions import reduce_sum
    if is_zero(ct):
        return [Zero(x.aval) if is_undefined(x) else None,
                Zero(v.aval) if is_undefined(v) else None]
    shape = x.aval.shape if is_undefined(x) else _aval(x).shape
    limit = tuple(lo + max(n - 1, 0) * (it + 1) + 1 if n else lo
                  for n, lo, it in zip(shape, low, interior))
    ct_x = slice_(ct, low, limit, tuple(it + 1 for it in interior))
    ct_v = None
    if is_undefined(v):
        axes = tuple(range(len(shape)))
        ct_v = sub(reduce_sum(ct, axes), reduce_sum(ct_x, axes))
    return [ct_x if is_undefined(x) else None, ct_v]


abstract_eval_rules[pad_p] = _pad_abstract
impl_rules[pad_p] = _pad_impl
deflinear(pad_p)
transpose_rules[pad_p] = _pad_transpose


# -- concatenate -----------------------------------------------------------------------------

concatenate_p = Primitive("concatenate")


def concatenate(xs, axis: int):
    xs = list(xs)
    if len(xs) == 1:
        return xs[0]
    return bind(concatenate_p, *xs, axis=int(axis))


def _concatenate_abstract(*xs, axis):
    first = xs[0]
    if any(x.dtype != first.dtype for x in xs):
        raise TypeError("concatenate: operands must have one dtype, got "
                        + ", ".join(str(x.dtype) for x in xs))
    if not (0 <= axis < first.ndim) or any(
            x.ndim != first.ndim or x.shape[:axis] + x.shape[axis + 1:]
            != first.shape[:axis] + first.shape[axis + 1:] for x in xs):
        raise ShapeError(f"concatenate along axis {axis}: shapes "
                         + ", ".join(str(x.shape) for x in xs) + " do not match")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return ShapedArray(shape, first.dtype)


def _concatenate_transpose(ct, *xs, axis):
    outs = []
    offset = 0
    for x in xs:
        shape = x.aval.shape if is_undefined(x) else _aval(x).shape
        n = shape[axis]
        if is_undefined(x):
            if is_zero(ct):
                outs.append(Zero(x.aval))
            else:
                start = [0] * len(shape)
                limit = list(_aval(ct).shape)
                start[axis], limit[axis] = offset, offset + n
                outs.append(slice_(ct, start, limit))
        else:
            outs.append(None)
        offset += n
    return outs


abstract_eval_rules[concatenate_p] = _concatenate_abstract
impl_rules[concatenate_p] = lambda *xs, axis: np.concatenate(xs, axis=axis)
deflinear(concatenate_p)
transpose_rules[concatenate_p] = _concatenate_transpose


# -- rev -------------------------------------------------------------------------------------

rev_p = Primitive("rev")


def rev(x, axes):
    axes = _ints(axes)
    if not axes:
        return x
    return bind(rev_p, x, axes=axes)


abstract_eval_rules[rev_p] = lambda x, *, axes: ShapedArray(x.shape, x.dtype)
impl_rules[rev_p] = lambda x, *, axes: np.flip(x, axes).copy()
deflinear(rev_p)
transpose_rules[rev_p] = lambda ct, x, *, axes: [ct if is_zero(ct) else rev(ct, axes)]


# -- iota ------------------------------------------------------------------------------------

iota_p = Primitive("iota")


def iota(dtype, shape, dimension: int):
    """Indices along `dimension`, broadcast to `shape` (recorded when tracing a transform)."""
    return bind(iota_p, dtype=np.dtype(dtype), shape=_ints(shape), dimension=int(dimension))


def _iota_impl(*, dtype, shape, dimension):
    idx = np.arange(shape[dimension], dtype=dtype)
    view = [1] * len(shape)
    view[dimension] = shape[dimension]
    return np.broadcast_to(idx.reshape(view), shape).copy()


abstract_eval_rules[iota_p] = lambda *, dtype, shape, dimension: ShapedArray(shape, dtype)
impl_rules[iota_p] = _iota_impl


# -- stop_gradient ---------------------------------------------------------------------------

stop_gradient_p = Primitive("stop_gradient")


def stop_gradient(x):
    return bind(stop_gradient_p, x)


abstract_eval_rules[stop_gradient_p] = lambda x: ShapedArray(x.shape, x.dtype)
impl_rules[stop_gradient_p] = lambda x: np.asarray(x)
jvp_rules[stop_gradient_p] = lambda primals, tangents: (
    stop_gradient(primals[0]), Zero(_aval(primals[0]).strip_weak()))

