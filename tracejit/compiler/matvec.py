"""Big matrix-vector products as loops the planner can fuse.

A product of a matrix with a vector (`X @ w`, `r @ X`) reads the whole matrix to do two
operations per element: it is bound by memory, and BLAS's gemv runs it on one thread. Written
as a broadcast multiply and a sum, it becomes a loop kernel like any other: it runs on every
core (the sum across rows in per-chunk partials), and it fuses with what surrounds it. The
gradient of a linear model is the case that matters: `X @ w`, a function of each row's
value, and `r @ X` become one pass over X instead of two, with the loss's sums in the same
pass. Measured here (2 cores, float64, jit with threads, median of 100 calls): X (20000, 100)
X @ w 559 us by gemv, 299 us as a loop; r @ X 533 against 305 us; the gradient of
`mean(logaddexp(0, -y (X @ w + b)))` 1.21 ms against 0.39 ms. Below `MATVEC_LOOP_MIN`
elements a serial loop loses to gemv (300 x 300: 7.4 against 13.9 us), so small products
stay BLAS calls, as do products when threads are off.
"""

from __future__ import annotations

from .. import dtypes
from ..ir import IR, Eqn, ShapedArray, Var
from ..primitives import elementwise as ew
from ..primitives import linalg as la
from ..primitives import reductions as rd
from ..primitives import structural as st

# Matrices with fewer elements keep their gemv call (a parallel loop kernel needs at least
# codegen.PARALLEL_MIN_ITERATIONS iterations, and pays well above four times that).
MATVEC_LOOP_MIN = 1 << 16


def _matvec(eqn: Eqn):
    """(matrix, vector, the matrix axis contracted) for a big float matrix-vector product,
    else None."""
    if eqn.prim is not la.dot_general_p:
        return None
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.inputs
    if lb or rb or len(lc) != 1 or not all(isinstance(a, Var) for a in (lhs, rhs)):
        return None
    if not dtypes.is_float(eqn.outs[0].aval.dtype):
        return None
    shapes = (lhs.aval.ndim, rhs.aval.ndim)
    if shapes == (2, 1):
        matrix, vector, axis = lhs, rhs, lc[0]
    elif shapes == (1, 2):
        matrix, vector, axis = rhs, lhs, rc[0]
    else:
        return None
    if matrix.aval.size < MATVEC_LOOP_MIN or matrix.aval.dtype != vector.aval.dtype:
        return None
    return matrix, vector, axis


def matvec_as_loops(ir: IR) -> IR:
    """`ir` with its big matrix-vector products written as broadcast, multiply and sum
    (top-level equations; loop bodies keep theirs)."""
    if not any(_matvec(e) for e in ir.eqns):
        return ir
    eqns: list[Eqn] = []
    for eqn in ir.eqns:
        found = _matvec(eqn)
        if found is None:
            eqns.append(eqn)
            continue
        matrix, vector, axis = found
        shape, dtype = tuple(matrix.aval.shape), matrix.aval.dtype
        spread = Var(ShapedArray(shape, dtype))
        product = Var(ShapedArray(shape, dtype))
        eqns.append(Eqn(st.broadcast_in_dim_p, [vector], [spread],
                        {"shape": shape, "broadcast_dimensions": (axis,)}, eqn.source))
        eqns.append(Eqn(ew.mul_p, [matrix, spread], [product], {}, eqn.source))
        eqns.append(Eqn(rd.reduce_sum_p, [product], list(eqn.outs), {"axes": (axis,)},
                        eqn.source))
    return IR(list(ir.invars), list(ir.constvars), list(ir.constvals), eqns, list(ir.outs),
              ir.name, dict(ir.extra))

