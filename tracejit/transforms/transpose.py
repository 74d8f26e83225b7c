"""Reverse mode's second half: the transpose table and the pass that runs a linear IR backwards.

`transpose_rules[prim](ct, *invals, **params) -> list of cotangents, one per input`, where the
inputs the equation is linear in are passed as `UndefinedPrimal(aval)` and the others as
values. Only linear primitives have rules; reverse mode never needs a VJP rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..core import Primitive, bind, trace_flat
from ..ir import IR, Literal, ShapedArray, Var
from .jvp import Zero, instantiate, is_zero, tangent_aval


class UndefinedPrimal:
    """Marks the input a linear equation is linear in, during transposition."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval})"


def is_undefined(x) -> bool:
    return isinstance(x, UndefinedPrimal)


transpose_rules: dict[Primitive, Callable] = {}


def add_cotangents(a, b):
    if is_zero(a):
        return b
    if is_zero(b):
        return a
    from ..primitives.elementwise import add
    return add(a, b)


def backward_pass(ir: IR, linear: Sequence[bool], nonlinear_args: Sequence,
                  cts_out: Sequence) -> list:
    """Cotangents of the linear inputs of `ir`, given cotangents of its outputs."""
    primal_env: dict[Var, object] = {}
    linear_vars: set[Var] = set()
    it = iter(nonlinear_args)
    for v, lin in zip(ir.invars, linear):
        if lin:
            linear_vars.add(v)
        else:
            primal_env[v] = next(it)
    for v, c in zip(ir.constvars, ir.constvals):
        primal_env[v] = c

    def read(a):
        return a.value if isinstance(a, Literal) else primal_env[a]

    # Forward: equations that do not touch linear values are evaluated; the rest are linear.
    linear_eqns = []
    for eqn in ir.eqns:
        if any(isinstance(a, Var) and a in linear_vars for a in eqn.inputs):
            linear_eqns.append(eqn)
            linear_vars.update(eqn.outs)
        else:
            outs = bind(eqn.prim, *[read(a) for a in eqn.inputs], **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            primal_env.update(zip(eqn.outs, outs))

    ct_env: dict[Var, object] = {}

    def accumulate(v, ct):
        if ct is None or is_zero(ct):
            return
        ct_env[v] = add_cotangents(ct_env[v], ct) if v in ct_env else ct

    for a, ct in zip(ir.outs, cts_out):
        if isinstance(a, Var) and a in linear_vars:
            accumulate(a, ct)

    for eqn in reversed(linear_eqns):
        cts = [ct_env.pop(v, Zero(tangent_aval(v.aval))) for v in eqn.outs]
        if all(is_zero(c) for c in cts):
            continue
        invals = [UndefinedPrimal(a.aval) if isinstance(a, Var) and a in linear_vars
                  else read(a) for a in eqn.inputs]
        rule = transpose_rules.get(eqn.prim)
        if rule is None:
            raise NotImplementedError(
                f"primitive `{eqn.prim.name}` is not linear (no transpose rule), but reverse "
                "mode met it applied to a tangent")
        cts_in = rule(cts if eqn.prim.multiple_results else cts[0], *invals, **eqn.params)
        for a, ct in zip(eqn.inputs, cts_in):
            if isinstance(a, Var) and a in linear_vars:
                accumulate(a, ct)

    return [ct_env.get(v, Zero(tangent_aval(v.aval)))
            for v, lin in zip(ir.invars, linear) if lin]


def transpose_ir(ir: IR, linear: Sequence[bool]) -> IR:
    """IR -> IR: inputs (non-linear inputs..., output cotangents...),
    outputs (cotangents of the linear inputs...)."""
    nonlin_avals = [a for a, lin in zip(ir.in_avals, linear) if not lin]
    ct_avals = [tangent_aval(a) for a in ir.out_avals]
    n = len(nonlin_avals)

    def fn(*args):
        cts = backward_pass(ir, linear, args[:n], args[n:])
        return [instantiate(c) for c in cts]

    new_ir, _ = trace_flat(fn, nonlin_avals + ct_avals, name=f"transpose_{ir.name}",
                           stage_all=True)
    return new_ir
