"""Forward mode: the JVP table and the IR -> IR pass that applies it.

`jvp_rules[prim](primals, tangents, **params) -> (primal_outs, tangent_outs)`. Tangents may
be `Zero(aval)`: symbolic zeros that rules skip instead of multiplying, so that no zero arrays
are materialized and reverse mode never sees them. Rules build tangents only from *linear*
primitives applied to tangents (so linearize + transpose can run them backwards).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import dtypes
from ..core import Primitive, Tracer, bind, full_like_aval, trace_flat
from ..ir import IR, Literal, ShapedArray, Var, aval_of


class Zero:
    """A symbolic zero tangent or cotangent of a given abstract value."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"Zero({self.aval})"


def is_zero(x) -> bool:
    return isinstance(x, Zero)


def instantiate(t, aval: ShapedArray | None = None):
    """Turn a symbolic zero into a real zero array (recorded when tracing)."""
    if isinstance(t, Zero):
        return full_like_aval(t.aval, 0)
    return t


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    return aval.strip_weak()


def has_tangent(aval: ShapedArray) -> bool:
    """Only float and complex arrays carry derivatives; ints, bools and tapes flow
    through."""
    return isinstance(aval, ShapedArray) and dtypes.is_inexact(aval.dtype)


jvp_rules: dict[Primitive, Callable] = {}


def defjvp_zero(*prims: Primitive) -> None:
    """Register primitives whose outputs have zero derivative (rounding, comparisons, ...)."""
    for prim in prims:
        def rule(primals, tangents, _prim=prim, **params):
            outs = bind(_prim, *primals, **params)
            if _prim.multiple_results:
                return outs, [Zero(tangent_aval(aval(o))) for o in outs]
            return outs, Zero(tangent_aval(aval(outs)))
        jvp_rules[prim] = rule


def deflinear(prim: Primitive) -> None:
    """JVP of a primitive linear in all its inputs: apply it to the tangents."""
    def rule(primals, tangents, **params):
        out = bind(prim, *primals, **params)
        if all(is_zero(t) for t in tangents):
            return out, Zero(tangent_aval(aval(out)))
        tans = [instantiate(t) for t in tangents]
        return out, bind(prim, *tans, **params)
    jvp_rules[prim] = rule


def aval(x) -> ShapedArray:
    """Abstract value of a tracer or a concrete value."""
    return x.aval if isinstance(x, Tracer) else aval_of(x)


# -- the pass ------------------------------------------------------------------------------

def jvp_values(ir: IR, primals: Sequence, tangents: Sequence) -> tuple[list, list]:
    """Evaluate `ir` on primals while pushing tangents (some `Zero`) through the JVP rules."""
    env: dict[Var, tuple] = {}

    def read(a):
        if isinstance(a, Literal):
            return a.value, Zero(tangent_aval(a.aval))
        return env[a]

    for v, p, t in zip(ir.invars, primals, tangents):
        env[v] = (p, t)
    for v, c in zip(ir.constvars, ir.constvals):
        env[v] = (c, Zero(tangent_aval(v.aval)))
    for eqn in ir.eqns:
        ps, ts = zip(*[read(a) for a in eqn.inputs]) if eqn.inputs else ((), ())
        if all(is_zero(t) for t in ts):
            outs = bind(eqn.prim, *ps, **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            touts = [Zero(tangent_aval(v.aval)) for v in eqn.outs]
        else:
            rule = jvp_rules.get(eqn.prim)
            if rule is None:
                raise NotImplementedError(f"no JVP rule for primitive `{eqn.prim.name}`")
            outs, touts = rule(list(ps), list(ts), **eqn.params)
            if not eqn.prim.multiple_results:
                outs, touts = [outs], [touts]
        for v, o, t in zip(eqn.outs, outs, touts):
            if not has_tangent(v.aval):
                t = Zero(tangent_aval(v.aval))
            env[v] = (o, t)
    results = [read(a) for a in ir.outs]
    return [p for p, _ in results], [t for _, t in results]


def jvp_ir(ir: IR, nonzero: Sequence[bool], instantiate_outs=True
           ) -> tuple[IR, list[bool]]:
    """IR -> IR: inputs (primals..., tangents of the `nonzero` inputs...),
    outputs (primal outs..., tangent outs...).

    With `instantiate_outs` True, every output gets a tangent output (zeros materialized where
    the output does not depend on the inputs); False drops zero tangent outputs; a sequence of
    bools instantiates per output. The returned mask says which tangent outputs exist.
    """
    in_avals = ir.in_avals
    tan_avals = [tangent_aval(a) for a, nz in zip(in_avals, nonzero) if nz]
    out_nonzero: list[bool] = []

    def fn(*args):
        primals = args[:len(in_avals)]
        it = iter(args[len(in_avals):])
        tangents = [next(it) if nz else Zero(tangent_aval(a))
                    for a, nz in zip(in_avals, nonzero)]
        outs, touts = jvp_values(ir, primals, tangents)
        keep = instantiate_outs if isinstance(instantiate_outs, (list, tuple)) else \
            [bool(instantiate_outs)] * len(touts)
        out_nonzero.extend(k or not is_zero(t) for t, k in zip(touts, keep))
        touts = [instantiate(t) for t, k in zip(touts, keep) if k or not is_zero(t)]
        return list(outs) + list(touts)

    new_ir, captured = trace_flat(fn, list(in_avals) + tan_avals, name=f"jvp_{ir.name}",
                                  stage_all=True)
    assert not captured, "a closed IR cannot capture outer tracers"
    return new_ir, out_nonzero
