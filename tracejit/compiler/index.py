"""Index arithmetic for loop code: which element of each input an equation's output element
reads. Shared by the fusion planner (to know whether a fused read stays in the current row)
and the code generator (to print the reads).

An index is an `int` (known while planning) or a `str` (a Python expression of loop
variables). Helpers fold constants so generated code reads `x[i0, 3]`, not `x[i0, 1 + 2]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Eqn
from ..primitives import structural as st
from ..primitives.elementwise import each_row, integer_pow_p
from ..primitives.indexing import gather_p

Index = int | str


def iadd(a: Index, b: Index) -> Index:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    if b == 0:
        return a
    if isinstance(b, int) and b < 0:
        return f"({a} - {-b})"
    return f"({a} + {b})"


def isub(a: Index, b: Index) -> Index:
    if isinstance(b, int):
        return iadd(a, -b)
    if isinstance(a, int) and a == 0:
        return f"(-{b})"
    return f"({a} - {b})"


def imul(a: Index, k: int) -> Index:
    if isinstance(a, int):
        return a * k
    if k == 1:
        return a
    if k == 0:
        return 0
    return f"({a} * {k})"


def ifloordiv(a: Index, k: int) -> Index:
    if isinstance(a, int):
        return a // k
    return a if k == 1 else f"({a} // {k})"


def imod(a: Index, k: int) -> Index:
    if isinstance(a, int):
        return a % k
    return 0 if k == 1 else f"({a} % {k})"


def strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return out[::-1]


@dataclass
class Branch:
    """Reads taken when `cond` holds (None: otherwise / always): input position -> index."""

    cond: str | bool | None
    reads: dict


ELEMENTWISE_LIKE = {integer_pow_p, st.select_p, st.convert_p, st.stop_gradient_p}
INDEX_PRIMS = {st.broadcast_in_dim_p, st.reshape_p, st.transpose_p, st.slice_p, st.rev_p,
               st.pad_p, st.concatenate_p, st.iota_p, gather_p}
INLINABLE = ELEMENTWISE_LIKE | INDEX_PRIMS
each_row(ELEMENTWISE_LIKE.add)  # every elementwise row, also those registered later
each_row(INLINABLE.add)


def same_shape_reads(eqn: Eqn, idx: list) -> list[Branch]:
    out_shape = eqn.outs[0].aval.shape
    return [Branch(None, {k: (list(idx) if a.aval.shape == out_shape else [])
                          for k, a in enumerate(eqn.inputs)})]


def input_reads(eqn: Eqn, idx: list) -> list[Branch]:
    """Branches of reads that compute element `idx` of `eqn`'s output (not for gather,
    whose operand index depends on data: see `gather_operand_index`)."""
    prim, params = eqn.prim, eqn.params
    if prim in ELEMENTWISE_LIKE:
        return same_shape_reads(eqn, idx)
    x_shape = eqn.inputs[0].aval.shape if eqn.inputs else ()
    if prim is st.broadcast_in_dim_p:
        dims = params["broadcast_dimensions"]
        return [Branch(None, {0: [0 if x_shape[i] == 1 else idx[d] for i, d in enumerate(dims)]})]
    if prim is st.reshape_p:
        return [Branch(None, {0: reshape_index(x_shape, params["new_shape"], idx)})]
    if prim is st.transpose_p:
        perm = params["permutation"]
        src = [0] * len(perm)
        for i, p in enumerate(perm):
            src[p] = idx[i]
        return [Branch(None, {0: src})]
    if prim is st.slice_p:
        return [Branch(None, {0: [iadd(s, imul(i, k)) for i, s, k in
                                  zip(idx, params["start"], params["strides"])]})]
    if prim is st.rev_p:
        return [Branch(None, {0: [isub(n - 1, i) if d in params["axes"] else i
                                  for d, (i, n) in enumerate(zip(idx, x_shape))]})]
    if prim is st.pad_p:
        return pad_reads(x_shape, params, idx)
    if prim is st.concatenate_p:
        return concat_reads(eqn, params["axis"], idx)
    if prim is st.iota_p:
        return [Branch(None, {})]
    if prim is gather_p:
        k = eqn.inputs[1].aval.shape[-1]
        nb = eqn.inputs[1].aval.ndim - 1
        return [Branch(None, {1: list(idx[:nb]) + [j]}) for j in range(k)]
    raise NotImplementedError(f"no index map for {prim.name}")


def reshape_index(x_shape, new_shape, idx) -> list:
    """Index into the reshaped operand; size-1 axes are matched without division."""
    if [d for d in x_shape if d != 1] == [d for d in new_shape if d != 1]:
        it = iter(i for i, d in zip(idx, new_shape) if d != 1)
        return [0 if d == 1 else next(it) for d in x_shape]
    flat: Index = 0
    for i, s in zip(idx, strides(new_shape)):
        flat = iadd(flat, imul(i, s))
    return [0 if n == 1 else imod(ifloordiv(flat, s), n)
            for n, s in zip(x_shape, strides(x_shape))]


def _conj(conds) -> str | bool:
    conds = [c for c in conds if c is not True]
    if any(c is False for c in conds):
        return False
    if not conds:
        return True
    return " and ".join(f"({c})" if " or " in c else c for c in conds)


def _in_range(i: Index, lo: int, hi: int) -> str | bool:
    if isinstance(i, int):
        return lo <= i < hi
    if lo <= 0:
        return f"{i} < {hi}"
    return f"{lo} <= {i} < {hi}"


def pad_reads(x_shape, params, idx) -> list[Branch]:
    conds, src = [], []
    for i, n, lo, it in zip(idx, x_shape, params["low"], params["interior"]):
        if n == 0:
            conds.append(False)
            src.append(0)
            continue
        j = isub(i, lo)
        if it == 0:
            conds.append(_in_range(i, lo, lo + n))
            src.append(j)
        else:
            span = (n - 1) * (it + 1) + 1
            conds.append(_conj([_in_range(i, lo, lo + span),
                                _eq_zero(imod(j, it + 1))]))
            src.append(ifloordiv(j, it + 1))
    cond = _conj(conds)
    if cond is True:
        return [Branch(None, {0: src})]
    if cond is False:
        return [Branch(None, {1: []})]
    return [Branch(cond, {0: src}), Branch(None, {1: []})]


def _eq_zero(i: Index) -> str | bool:
    return i == 0 if isinstance(i, int) else f"{i} == 0"


def concat_reads(eqn: Eqn, axis: int, idx) -> list[Branch]:
    branches, offset = [], 0
    i = idx[axis]
    for k, a in enumerate(eqn.inputs):
        n = a.aval.shape[axis]
        src = list(idx)
        src[axis] = isub(i, offset)
        last = k == len(eqn.inputs) - 1
        cond: str | bool | None = None if last else (
            (i < offset + n) if isinstance(i, int) else f"{i} < {offset + n}")
        if cond is False or n == 0:
            offset += n
            continue
        branches.append(Branch(None if cond is True else cond, {k: src}))
        if cond is True:
            break
        offset += n
    # Constant conditions pick their branch statically.
    return branches


def literal_index_value(i: Index) -> int | None:
    return i if isinstance(i, (int, np.integer)) else None
