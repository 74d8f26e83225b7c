"""Reductions (sum, max, min, prod, argmax, argmin) and cumulative ops (cumsum, cumprod,
and `cumlinrec`, the linear recurrence y[i] = a[i] * y[i-1] + b[i] that both cumprod's
derivative and its transpose are made of)."""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import Zero, defjvp_zero, deflinear, instantiate, is_zero, jvp_rules
from ..transforms.transpose import is_undefined, transpose_rules
from .elementwise import _aval, add, convert_like, div, eq, mul
from .structural import broadcast_in_dim, pad, reshape, slice_, transpose


def _axes(axes) -> tuple:
    return tuple(sorted(int(a) for a in axes))


def _reduced_shape(x: ShapedArray, axes, name: str) -> tuple:
    if any(not (0 <= a < x.ndim) for a in axes) or len(set(axes)) != len(axes):
        raise ShapeError(f"{name}: bad axes {axes} for an array of shape {x.shape}")
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def expand_reduced(y, shape, axes):
    """Broadcast a reduction's result back to the operand's shape."""
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return broadcast_in_dim(y, shape, kept)


def _reducer(name, numpy_fn, kinds="number"):
    prim = Primitive(name)

    def abstract(x, *, axes):
        if kinds == "number" and dtypes.is_bool(x.dtype) and name != "reduce_max" \
                and name != "reduce_min":
            raise TypeError(f"{name} does not accept bool operands")
        if name in ("reduce_max", "reduce_min") and dtypes.is_complex(x.dtype):
            raise TypeError(f"{name} does not accept {x.dtype} operands (ordered (not "
                            "complex) only)")
        return ShapedArray(_reduced_shape(x, axes, name), x.dtype)

    def impl(x, *, axes):
        x = np.asarray(x)
        return np.asarray(numpy_fn(x, axis=axes)).astype(x.dtype)

    abstract_eval_rules[prim] = abstract
    impl_rules[prim] = impl

    def wrapper(x, axes):
        axes = _axes(axes)
        if not axes:
            return x
        return bind(prim, x, axes=axes)
    wrapper.__name__ = name
    return prim, wrapper


reduce_sum_p, reduce_sum = _reducer("reduce_sum", np.sum)
reduce_max_p, reduce_max = _reducer("reduce_max", np.max)
reduce_min_p, reduce_min = _reducer("reduce_min", np.min)
reduce_prod_p, reduce_prod = _reducer("reduce_prod", np.prod)

deflinear(reduce_sum_p)
transpose_rules[reduce_sum_p] = lambda ct, x, *, axes: [
    Zero(x.aval) if is_zero(ct) else expand_reduced(ct, x.aval.shape, axes)]


def _minmax_jvp(prim):
    def rule(primals, tangents, *, axes):
        (x,), (t,) = primals, tangents
        out = bind(prim, x, axes=axes)
        shape = _aval(x).shape
        # The derivative goes to the positions attaining the extremum, split evenly on ties.
        location = convert_like(eq(x, expand_reduced(out, shape, axes)), out)
        count = reduce_sum(location, axes)
        weights = div(location, expand_reduced(count, shape, axes))
        return out, reduce_sum(mul(t, weights), axes)
    return rule


jvp_rules[reduce_max_p] = _minmax_jvp(reduce_max_p)
jvp_rules[reduce_min_p] = _minmax_jvp(reduce_min_p)


def _to_last_axis(x, axes):
    """Move the reduced axes last and merge them into one: shape (*kept, k)."""
    shape = _aval(x).shape
    kept = [i for i in range(len(shape)) if i not in axes]
    moved = transpose(x, kept + list(axes))
    k = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    return reshape(moved, [shape[i] for i in kept] + [k]), k


def exclusive_cumprod(x, axis: int, reverse: bool = False):
    """Products of the elements strictly before (after, if reverse) each position."""
    if _aval(x).shape[axis] == 0:
        return x
    return _shifted(cumprod(x, axis, reverse), axis, reverse, 1)


def _reduce_prod_jvp(primals, tangents, *, axes):
    (x,), (t,) = primals, tangents
    out = reduce_prod(x, axes)
    flat, k = _to_last_axis(x, axes)
    if k == 0:
        return out, Zero(_aval(out))
    last = _aval(flat).ndim - 1
    # Product of all the other elements, exact even where some are zero.
    others = mul(exclusive_cumprod(flat, last), exclusive_cumprod(flat, last, reverse=True))
    t_flat, _ = _to_last_axis(t, axes)
    return out, reduce_sum(mul(t_flat, others), (last,))


jvp_rules[reduce_prod_p] = _reduce_prod_jvp


# -- argmax / argmin -------------------------------------------------------------------------

def _argreducer(name, numpy_fn):
    prim = Primitive(name)

    def abstract(x, *, axis, index_dtype):
        if dtypes.is_complex(x.dtype):
            raise TypeError(f"{name} does not accept {x.dtype} operands (ordered (not "
                            "complex) only)")
        return ShapedArray(_reduced_shape(x, (axis,), name), index_dtype)

    def impl(x, *, axis, index_dtype):
        return np.asarray(numpy_fn(np.asarray(x), axis=axis)).astype(index_dtype)

    abstract_eval_rules[prim] = abstract
    impl_rules[prim] = impl
    defjvp_zero(prim)

    def wrapper(x, axis: int, index_dtype=dtypes.int64):
        return bind(prim, x, axis=int(axis), index_dtype=np.dtype(index_dtype))
    wrapper.__name__ = name
    return prim, wrapper


argmax_p, argmax = _argreducer("argmax", np.argmax)
argmin_p, argmin = _argreducer("argmin", np.argmin)


# -- cumulative ops --------------------------------------------------------------------------

def _cum_abstract(name):
    def abstract(x, *, axis, reverse):
        if not (0 <= axis < x.ndim):
            raise ShapeError(f"{name}: bad axis {axis} for an array of shape {x.shape}")
        return ShapedArray(x.shape, x.dtype)
    return abstract


def _cum_impl(numpy_fn):
    def impl(x, *, axis, reverse):
        x = np.asarray(x)
        if reverse:
            return np.flip(numpy_fn(np.flip(x, axis), axis=axis), axis).astype(x.dtype)
        return numpy_fn(x, axis=axis).astype(x.dtype)
    return impl


cumsum_p = Primitive("cumsum")
cumprod_p = Primitive("cumprod")


def cumsum(x, axis: int, reverse: bool = False):
    return bind(cumsum_p, x, axis=int(axis), reverse=bool(reverse))


def cumprod(x, axis: int, reverse: bool = False):
    return bind(cumprod_p, x, axis=int(axis), reverse=bool(reverse))


abstract_eval_rules[cumsum_p] = _cum_abstract("cumsum")
impl_rules[cumsum_p] = _cum_impl(np.cumsum)
deflinear(cumsum_p)
transpose_rules[cumsum_p] = lambda ct, x, *, axis, reverse: [
    Zero(x.aval) if is_zero(ct) else cumsum(ct, axis, not reverse)]

abstract_eval_rules[cumprod_p] = _cum_abstract("cumprod")
impl_rules[cumprod_p] = _cum_impl(np.cumprod)


def _shifted(y, axis: int, reverse: bool, fill):
    """y moved one step along `axis` (later for forward, earlier for reverse), `fill` at the
    vacated end: the previous element of a recurrence."""
    shape = _aval(y).shape
    n = shape[axis]
    if n == 0:  # nothing to shift (and no slice of the empty axis to take)
        return y
    start, limit = [0] * len(shape), list(shape)
    low, high = [0] * len(shape), [0] * len(shape)
    if reverse:
        start[axis], high[axis] = 1, 1
    else:
        limit[axis], low[axis] = n - 1, 1
    return pad(slice_(y, start, limit), np.asarray(fill, _aval(y).dtype)[()], low, high)


def _cumprod_jvp(primals, tangents, *, axis, reverse):
    (x,), (t,) = primals, tangents
    out = cumprod(x, axis, reverse)
    # y[i] = x[i] * y[i-1]  =>  dy[i] = x[i] * dy[i-1] + y[i-1] * dx[i]
    previous = _shifted(out, axis, reverse, 1)
    return out, cumlinrec(x, mul(t, previous), axis, reverse)


jvp_rules[cumprod_p] = _cumprod_jvp

cumlinrec_p = Primitive("cumlinrec")


def cumlinrec(a, b, axis: int, reverse: bool = False):
    """y[i] = a[i] * y[i-1] + b[i] along `axis` (from the end when `reverse`); linear in b."""
    return bind(cumlinrec_p, a, b, axis=int(axis), reverse=bool(reverse))


def _cumlinrec_abstract(a, b, *, axis, reverse):
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ShapeError(f"cumlinrec: coefficients {a} and values {b} must match")
    return _cum_abstract("cumlinrec")(b, axis=axis, reverse=reverse)


def _cumlinrec_impl(a, b, *, axis, reverse):
    a = np.moveaxis(np.asarray(a), axis, 0)
    b = np.moveaxis(np.asarray(b), axis, 0)
    y = np.empty_like(b)
    order = range(b.shape[0] - 1, -1, -1) if reverse else range(b.shape[0])
    prev = np.zeros_like(b[0]) if b.shape[0] else None
    for i in order:
        prev = a[i] * prev + b[i]
        y[i] = prev
    return np.moveaxis(y, 0, axis)


def _cumlinrec_jvp(primals, tangents, *, axis, reverse):
    a, b = primals
    ta, tb = tangents
    out = cumlinrec(a, b, axis, reverse)
    if is_zero(ta) and is_zero(tb):
        return out, Zero(_aval(out))
    drive = instantiate(tb)
    if not is_zero(ta):
        drive = add(drive, mul(ta, _shifted(out, axis, reverse, 0)))
    return out, cumlinrec(a, drive, axis, reverse)


def _cumlinrec_transpose(ct, a, b, *, axis, reverse):
    if is_undefined(a):
        raise NotImplementedError("cumlinrec is linear only in its values")
    if is_zero(ct):
        return [None, Zero(b.aval)]
    # z[j] = ct[j] + a[j+1] * z[j+1]: the same recurrence run the other way.
    return [None, cumlinrec(_shifted(a, axis, not reverse, 0), ct, axis, not reverse)]


abstract_eval_rules[cumlinrec_p] = _cumlinrec_abstract
impl_rules[cumlinrec_p] = _cumlinrec_impl
jvp_rules[cumlinrec_p] = _cumlinrec_jvp
transpose_rules[cumlinrec_p] = _cumlinrec_transpose
