"""Gather (indexed reads) and scatter-add (indexed accumulation), each the other's transpose.

`gather(x, indices)`: `indices` is an integer array of shape (*batch, k) addressing the first
k axes of `x`; the result has shape (*batch, *x.shape[k:]). Indices are clamped into range
(the NumPy front end wraps negative indices and checks concrete ones, as NumPy does).
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, full_like_aval, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import Zero, is_zero, jvp_rules
from ..transforms.transpose import is_undefined, transpose_rules
from .elementwise import _aval

gather_p = Primitive("gather")
scatter_add_p = Primitive("scatter_add")


def gather(x, indices):
    return bind(gather_p, x, indices)


def scatter_add(operand, indices, updates):
    return bind(scatter_add_p, operand, indices, updates)


def _check_indices(x, idx, name):
    if not dtypes.is_int(idx.dtype) or dtypes.is_bool(idx.dtype):
        raise TypeError(f"{name}: indices must be integers, got {idx.dtype}")
    if idx.ndim < 1 or idx.shape[-1] > x.ndim:
        raise ShapeError(f"{name}: indices of shape {idx.shape} cannot address an array of "
                         f"shape {x.shape}")
    k = idx.shape[-1]
    return idx.shape[:-1] + x.shape[k:]


def _gather_abstract(x, idx):
    return ShapedArray(_check_indices(x, idx, "gather"), x.dtype)


def _index_tuple(shape, idx):
    idx = np.asarray(idx)
    k = idx.shape[-1]
    return tuple(np.clip(idx[..., i], 0, max(shape[i] - 1, 0)) for i in range(k))


def _gather_impl(x, idx):
    x = np.asarray(x)
    return np.asarray(x[_index_tuple(x.shape, idx)]).copy()


def _gather_jvp(primals, tangents):
    x, idx = primals
    tx, _ = tangents
    out = gather(x, idx)
    return out, Zero(_aval(out)) if is_zero(tx) else gather(tx, idx)


def _gather_transpose(ct, x, idx):
    if is_undefined(idx):
        raise NotImplementedError("gather is not linear in its indices")
    if is_zero(ct):
        return [Zero(x.aval), None]
    return [scatter_add(full_like_aval(x.aval, 0), idx, ct), None]


abstract_eval_rules[gather_p] = _gather_abstract
impl_rules[gather_p] = _gather_impl
jvp_rules[gather_p] = _gather_jvp
transpose_rules[gather_p] = _gather_transpose


def _scatter_add_abstract(operand, idx, updates):
    expected = _check_indices(operand, idx, "scatter_add")
    if updates.shape != expected or updates.dtype != operand.dtype:
        raise ShapeError(f"scatter_add: updates {updates} do not match operand {operand} "
                         f"indexed by {idx}")
    return ShapedArray(operand.shape, operand.dtype)


def _scatter_add_impl(operand, idx, updates):
    out = np.array(operand, copy=True)
    np.add.at(out, _index_tuple(out.shape, idx), updates)
    return out


def _scatter_add_jvp(primals, tangents):
    operand, idx, updates = primals
    t_op, _, t_up = tangents
    out = scatter_add(operand, idx, updates)
    if is_zero(t_op) and is_zero(t_up):
        return out, Zero(_aval(out))
    if is_zero(t_up):
        return out, t_op
    base = full_like_aval(_aval(out), 0) if is_zero(t_op) else t_op
    return out, scatter_add(base, idx, t_up)


def _scatter_add_transpose(ct, operand, idx, updates):
    if is_undefined(idx):
        raise NotImplementedError("scatter_add is not linear in its indices")
    if is_zero(ct):
        return [Zero(operand.aval) if is_undefined(operand) else None, None,
                Zero(updates.aval) if is_undefined(updates) else None]
    return [ct if is_undefined(operand) else None, None,
            gather(ct, idx) if is_undefined(updates) else None]


abstract_eval_rules[scatter_add_p] = _scatter_add_abstract
impl_rules[scatter_add_p] = _scatter_add_impl
jvp_rules[scatter_add_p] = _scatter_add_jvp
transpose_rules[scatter_add_p] = _scatter_add_transpose
