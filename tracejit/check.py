"""The IR checker: re-runs every equation's shape/dtype rule and checks scoping.

Tests run it on every IR they produce; a pass that breaks an invariant fails here, at the
equation it broke, rather than later as a wrong number.
"""

from __future__ import annotations

from .core import abstract_eval
from .errors import IRCheckError
from .ir import IR, Literal, Var


def check_ir(ir: IR) -> IR:
    """Raise `IRCheckError` on the first inconsistency; return the IR unchanged."""
    defined: set[Var] = set()

    def define(v, where):
        if not isinstance(v, Var):
            raise IRCheckError(f"{where}: binder {v!r} is not a variable\n{ir}")
        if v in defined:
            raise IRCheckError(f"{where}: variable {v!r} is defined twice\n{ir}")
        defined.add(v)

    def use(a, where):
        if isinstance(a, Literal):
            if a.aval.shape != ():
                raise IRCheckError(f"{where}: literal {a} is not a scalar\n{ir}")
            return
        if a not in defined:
            raise IRCheckError(f"{where}: variable {a!r} is used before it is defined\n{ir}")

    for v in ir.invars:
        define(v, "input")
    if len(ir.constvars) != len(ir.constvals):
        raise IRCheckError("constants and their values differ in number")
    for v, c in zip(ir.constvars, ir.constvals):
        define(v, "constant")
        if tuple(c.shape) != v.aval.shape or c.dtype != v.aval.dtype:
            raise IRCheckError(f"constant {v!r} holds a {c.dtype}{list(c.shape)} value")
    for i, eqn in enumerate(ir.eqns):
        where = f"equation {i} ({eqn.prim.name})"
        for a in eqn.inputs:
            use(a, where)
        try:
            expected = abstract_eval(eqn.prim, *[a.aval for a in eqn.inputs], **eqn.params)
        except Exception as e:  # the rule itself rejects the recorded inputs
            raise IRCheckError(f"{where}: {e}\n{ir}") from e
        if len(expected) != len(eqn.outs):
            raise IRCheckError(f"{where}: {len(eqn.outs)} outputs, rule gives "
                               f"{len(expected)}\n{ir}")
        for v, aval in zip(eqn.outs, expected):
            if v.aval != aval:
                raise IRCheckError(f"{where}: output recorded as {v.aval}, rule gives "
                                   f"{aval}\n{ir}")
            define(v, where)
        for value in eqn.params.values():
            for sub in (value if isinstance(value, (tuple, list)) else (value,)):
                if isinstance(sub, IR):
                    check_ir(sub)
    for a in ir.outs:
        use(a, "return")
    return ir
