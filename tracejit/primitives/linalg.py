"""`dot_general`: contraction with batch dimensions, the one primitive behind dot, matmul,
tensordot, einsum, inner, outer and vdot. Bilinear: its JVP is two dots and each operand
has a transpose rule (a dot of the cotangent with the other operand, then a permutation)."""

from __future__ import annotations

import numpy as np

from ..core import Primitive, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray
from ..transforms.jvp import Zero, is_zero, jvp_rules
from ..transforms.transpose import is_undefined, transpose_rules
from .elementwise import _aval, add, mul
from .structural import broadcast_in_dim, transpose

dot_general_p = Primitive("dot_general")


def dot_general(lhs, rhs, contracting, batch=((), ())):
    """Output dims: batch dims (in `batch` order), lhs free dims, rhs free dims.

    A product that contracts nothing (an outer product, a product with a 0-d operand, e.g.
    the transpose of `dot(a, b)` of two vectors) is elementwise: it is recorded as a `mul` of
    broadcasts, which fuses with its neighbours instead of calling BLAS."""
    (lc, rc), (lb, rb) = contracting, batch
    dims = ((tuple(map(int, lc)), tuple(map(int, rc))), (tuple(map(int, lb)), tuple(map(int, rb))))
    if not dims[0][0] and _aval(lhs).dtype.kind in "fiu":
        return _elementwise_product(lhs, rhs, dims[1])
    return bind(dot_general_p, lhs, rhs, dimension_numbers=dims)


def _elementwise_product(lhs, rhs, batch):
    """dot_general without contracting dims: (batch, lhs free, rhs free) = lhs * rhs."""
    la, ra = _aval(lhs), _aval(rhs)
    if la.dtype != ra.dtype:
        raise TypeError(f"dot_general: operands must have one dtype, got {la.dtype} and "
                        f"{ra.dtype}")
    lb, rb = batch
    lf, rf = _free(la.ndim, (), lb), _free(ra.ndim, (), rb)
    nb, nl = len(lb), len(lf)
    shape = ([la.shape[d] for d in lb] + [la.shape[d] for d in lf]
             + [ra.shape[d] for d in rf])
    if la.ndim == 0 or ra.ndim == 0:  # a 0-d operand broadcasts implicitly
        return mul(lhs, rhs)
    left = broadcast_in_dim(transpose(lhs, list(lb) + lf), shape, range(nb + nl))
    right = broadcast_in_dim(transpose(rhs, list(rb) + rf), shape,
                             list(range(nb)) + list(range(nb + nl, len(shape))))
    return mul(left, right)


def _free(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


def _dot_general_abstract(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"dot_general: operands must have one dtype, got {lhs.dtype} and "
                        f"{rhs.dtype}")
    if len(lc) != len(rc) or len(lb) != len(rb) or any(
            lhs.shape[a] != rhs.shape[b] for a, b in zip(lc + lb, rc + rb)):
        raise ShapeError(f"dot_general: shapes {lhs.shape} and {rhs.shape} do not match on "
                         f"contracting dims {lc}/{rc} or batch dims {lb}/{rb}")
    shape = ([lhs.shape[d] for d in lb] + [lhs.shape[d] for d in _free(lhs.ndim, lc, lb)]
             + [rhs.shape[d] for d in _free(rhs.ndim, rc, rb)])
    return ShapedArray(shape, lhs.dtype)


def _dot_general_impl(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    lf, rf = _free(lhs.ndim, lc, lb), _free(rhs.ndim, rc, rb)
    a = np.transpose(lhs, list(lb) + lf + list(lc))
    b = np.transpose(rhs, list(rb) + list(rc) + rf)
    nb = [lhs.shape[d] for d in lb]
    m = int(np.prod([lhs.shape[d] for d in lf], dtype=np.int64))
    k = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))
    n = int(np.prod([rhs.shape[d] for d in rf], dtype=np.int64))
    bsz = int(np.prod(nb, dtype=np.int64))
    out = np.matmul(a.reshape(bsz, m, k), b.reshape(bsz, k, n))
    shape = nb + [lhs.shape[d] for d in lf] + [rhs.shape[d] for d in rf]
    return out.reshape(shape).astype(lhs.dtype)


def _dot_general_jvp(primals, tangents, *, dimension_numbers):
    lhs, rhs = primals
    tl, tr = tangents
    out = bind(dot_general_p, lhs, rhs, dimension_numbers=dimension_numbers)
    terms = []
    if not is_zero(tl):
        terms.append(bind(dot_general_p, tl, rhs, dimension_numbers=dimension_numbers))
    if not is_zero(tr):
        terms.append(bind(dot_general_p, lhs, tr, dimension_numbers=dimension_numbers))
    if not terms:
        return out, Zero(_aval(out))
    return out, terms[0] if len(terms) == 1 else add(*terms)


def _dot_general_transpose(ct, lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined(lhs) and is_undefined(rhs):
        raise NotImplementedError("dot_general of two linear values is not linear")
    if is_zero(ct):
        return [Zero(lhs.aval) if is_undefined(lhs) else None,
                Zero(rhs.aval) if is_undefined(rhs) else None]
    lhs_ndim = lhs.aval.ndim if is_undefined(lhs) else _aval(lhs).ndim
    rhs_ndim = rhs.aval.ndim if is_undefined(rhs) else _aval(rhs).ndim
    lf, rf = _free(lhs_ndim, lc, lb), _free(rhs_ndim, rc, rb)
    nb = len(lb)
    ct_batch = tuple(range(nb))
    ct_lf = tuple(range(nb, nb + len(lf)))
    ct_rf = tuple(range(nb + len(lf), nb + len(lf) + len(rf)))
    if is_undefined(lhs):
        # (B, Lf, Rc sorted) = ct[B, Lf, Rf] . rhs[B, Rc, Rf]
        res = dot_general(ct, rhs, (ct_rf, tuple(rf)), (ct_batch, rb))
        rc_rank = {d: i for i, d in enumerate(sorted(rc))}
        pos = {}
        for k, d in enumerate(lb):
            pos[d] = k
        for k, d in enumerate(lf):
            pos[d] = nb + k
        for d_l, d_r in zip(lc, rc):
            pos[d_l] = nb + len(lf) + rc_rank[d_r]
        return [transpose(res, [pos[d] for d in range(lhs_ndim)]), None]
    # (B, Rf, Lc sorted) = ct[B, Lf, Rf] . lhs[B, Lf, Lc]
    res = dot_general(ct, lhs, (ct_lf, tuple(lf)), (ct_batch, lb))
    lc_rank = {d: i for i, d in enumerate(sorted(lc))}
    pos = {}
    for k, d in enumerate(rb):
        pos[d] = k
    for k, d in enumerate(rf):
        pos[d] = nb + k
    for d_l, d_r in zip(lc, rc):
        pos[d_r] = nb + len(rf) + lc_rank[d_l]
    return [None, transpose(res, [pos[d] for d in range(rhs_ndim)])]


abstract_eval_rules[dot_general_p] = _dot_general_abstract
impl_rules[dot_general_p] = _dot_general_impl
jvp_rules[dot_general_p] = _dot_general_jvp
transpose_rules[dot_general_p] = _dot_general_transpose
