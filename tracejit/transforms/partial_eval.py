"""Partial evaluation: split an IR into the part computable from known inputs and the rest.

Applied to a JVP IR with the primals known and the tangents unknown, this is `linearize`: the
known part computes the primal outputs and the *residuals* (known values the tangent part
reads); the unknown part is linear in the tangents and reads the residuals as inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..ir import IR, Literal, Var

# prim -> rule(eqn, in_known) -> (known_eqns, unknown_eqns): for primitives whose equations
# must themselves be split (control flow: the known part of a loop body runs in a known loop,
# the rest in an unknown loop that reads the known loop's stacked residuals).
partial_eval_rules: dict[object, Callable] = {}


def partial_eval(ir: IR, in_known: Sequence[bool], out_unknown: Sequence[bool]
                 ) -> tuple[IR, IR, int]:
    """Split `ir` into (known_ir, unknown_ir, number of residuals).

    known_ir:   known inputs -> (outputs with out_unknown False..., residuals...)
    unknown_ir: (residuals..., unknown inputs...) -> outputs with out_unknown True
    An output marked unknown that turns out to be known is passed through as a residual.
    """
    known_vars: set[Var] = {v for v, k in zip(ir.invars, in_known) if k}
    known_vars.update(ir.constvars)
    known_eqns, unknown_eqns = [], []
    for eqn in ir.eqns:
        eqn_known = [isinstance(a, Literal) or a in known_vars for a in eqn.inputs]
        if all(eqn_known):
            known_eqns.append(eqn)
            known_vars.update(eqn.outs)
        elif any(eqn_known) and eqn.prim in partial_eval_rules:
            k_eqns, u_eqns = partial_eval_rules[eqn.prim](eqn, eqn_known)
            known_eqns.extend(k_eqns)
            unknown_eqns.extend(u_eqns)
            for e in k_eqns:
                known_vars.update(e.outs)
        else:
            unknown_eqns.append(eqn)

    residuals: list[Var] = []
    seen: set[Var] = set()

    def need(a):
        if isinstance(a, Var) and a in known_vars and a not in seen and a not in ir.constvars:
            seen.add(a)
            residuals.append(a)

    for eqn in unknown_eqns:
        for a in eqn.inputs:
            need(a)
    for a, unk in zip(ir.outs, out_unknown):
        if unk:
            need(a)
        elif isinstance(a, Var) and a not in known_vars:
            raise ValueError("partial_eval: an output required on the known side depends on "
                             "unknown inputs")

    known_outs = [a for a, unk in zip(ir.outs, out_unknown) if not unk]
    known_ir = IR([v for v, k in zip(ir.invars, in_known) if k], list(ir.constvars),
                  list(ir.constvals), known_eqns, known_outs + residuals, f"{ir.name}_known")
    unknown_ir = IR(residuals + [v for v, k in zip(ir.invars, in_known) if not k],
                    list(ir.constvars), list(ir.constvals), unknown_eqns,
                    [a for a, unk in zip(ir.outs, out_unknown) if unk], f"{ir.name}_linear")
    return known_ir, unknown_ir, len(residuals)
