"""IR -> IR clean-up passes: algebraic simplification, constant folding of scalar literals,
common-subexpression elimination and dead-code elimination.

`simplify_rules[prim](eqn, producers) -> atom | Eqn | None` returns an existing atom that
equals the equation's single output (e.g. `mul x 1.0 -> x`), a cheaper equation defining the
same output, or None; `producers` maps each variable defined so far to the equation that
defines it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .core import Primitive, impl_rules
from .ir import IR, Eqn, Literal, ShapedArray, Var
from .primitives import control as cf
from .primitives import elementwise as ew
from .primitives import indexing as ix
from .primitives import linalg as la
from .primitives import structural as st

simplify_rules: dict[Primitive, Callable] = {}


def _is_literal(a, value) -> bool:
    return isinstance(a, Literal) and a.value == value


def _is_filled(a, value, producers) -> bool:
    """A literal, or a recorded broadcast of a literal, equal to `value` everywhere."""
    if _is_literal(a, value):
        return True
    producer = producers.get(a) if isinstance(a, Var) else None
    return (producer is not None and producer.prim is st.broadcast_in_dim_p
            and _is_literal(producer.inputs[0], value))


def _same_type(a, eqn: Eqn) -> bool:
    return a.aval == eqn.outs[0].aval


def _simplify_add(eqn, producers):
    x, y = eqn.inputs
    if _is_filled(y, 0, producers) and _same_type(x, eqn):
        return x
    if _is_filled(x, 0, producers) and _same_type(y, eqn):
        return y
    return _scatter_into(eqn, producers)


def _simplify_sub(eqn, producers):
    x, y = eqn.inputs
    if _is_filled(y, 0, producers) and _same_type(x, eqn):
        return x
    return None


def _simplify_mul(eqn, producers):
    x, y = eqn.inputs
    if _is_filled(y, 1, producers) and _same_type(x, eqn):
        return x
    if _is_filled(x, 1, producers) and _same_type(y, eqn):
        return y
    return None


def _simplify_div(eqn, producers):
    x, y = eqn.inputs
    if _is_filled(y, 1, producers) and _same_type(x, eqn):
        return x
    return None


def _simplify_neg(eqn, producers):
    (x,) = eqn.inputs
    producer = producers.get(x) if isinstance(x, Var) else None
    if producer is not None and producer.prim is ew.neg_p:
        return producer.inputs[0]
    return None


def _identity_if_same_type(eqn, producers):
    x = eqn.inputs[0]
    return x if _same_type(x, eqn) else None


def _simplify_reshape(eqn, producers):
    """reshape of a reshape reads the inner operand (and vanishes if it is the same type)."""
    x = eqn.inputs[0]
    if _same_type(x, eqn):
        return x
    producer = producers.get(x) if isinstance(x, Var) else None
    if producer is None or producer.prim is not st.reshape_p:
        return None
    inner = producer.inputs[0]
    if _same_type(inner, eqn):
        return inner
    return Eqn(st.reshape_p, [inner], eqn.outs, eqn.params, eqn.source)


def _scatter_into(eqn, producers):
    """`add (scatter_add zeros i u) y` -> `scatter_add y i u`: no zero array materialized."""
    x, y = eqn.inputs
    for s, other in ((x, y), (y, x)):
        producer = producers.get(s) if isinstance(s, Var) else None
        if (producer is not None and producer.prim is ix.scatter_add_p
                and _is_filled(producer.inputs[0], 0, producers) and _same_type(other, eqn)):
            return Eqn(ix.scatter_add_p, [other, *producer.inputs[1:]], eqn.outs,
                       dict(producer.params), eqn.source)
    return None


def _simplify_transpose(eqn, producers):
    """transpose of a transpose is one transpose; a transpose that swaps the two operand
    groups of a dot_general used only here is the dot of the swapped operands (BLAS writes
    the wanted layout; no transposed copy)."""
    x = eqn.inputs[0]
    producer = producers.get(x) if isinstance(x, Var) else None
    if producer is None:
        return None
    perm = eqn.params["permutation"]
    if producer.prim is st.transpose_p:
        inner = producer.inputs[0]
        composed = tuple(producer.params["permutation"][p] for p in perm)
        if composed == tuple(range(len(composed))):
            return inner if _same_type(inner, eqn) else None
        return Eqn(st.transpose_p, [inner], eqn.outs, {"permutation": composed}, eqn.source)
    if producer.prim is la.dot_general_p and producers.uses.get(x) == 1:
        (lc, rc), (lb, rb) = producer.params["dimension_numbers"]
        lhs, rhs = producer.inputs
        n_l, n_r = lhs.aval.ndim - len(lc), rhs.aval.ndim - len(rc)
        if not lb and perm == tuple(range(n_l, n_l + n_r)) + tuple(range(n_l)):
            return Eqn(la.dot_general_p, [rhs, lhs], eqn.outs,
                       {"dimension_numbers": ((rc, lc), ((), ()))}, eqn.source)
    return None


def _simplify_dot(eqn, producers):
    """A product with an operand that is zero everywhere is zero (e.g. the first step of a
    recurrence from `h = zeros`): no BLAS call, and the zeros fold into what reads it."""
    if any(_is_filled(a, 0, producers) for a in eqn.inputs):
        out = eqn.outs[0].aval
        return Eqn(st.broadcast_in_dim_p, [Literal(0, ShapedArray((), out.dtype))], eqn.outs,
                   {"shape": out.shape, "broadcast_dimensions": ()}, eqn.source)
    return None


def _simplify_cond(eqn, producers):
    """A cond on a constant index is a call of the chosen branch."""
    index = eqn.inputs[0]
    if not isinstance(index, Literal):
        return None
    branches = eqn.params["branches"]
    chosen = branches[int(np.clip(int(index.value), 0, len(branches) - 1))]
    return Eqn(cf.call_p, list(eqn.inputs[1:]), eqn.outs, {"body": chosen}, eqn.source)


class _Producers(dict):
    """Var -> defining equation, plus `uses`: how often the input IR reads each Var."""

    def __init__(self, ir: IR):
        super().__init__()
        self.uses: dict = {}
        for e in ir.eqns:
            for a in e.inputs:
                if isinstance(a, Var):
                    self.uses[a] = self.uses.get(a, 0) + 1
        for a in ir.outs:
            if isinstance(a, Var):
                self.uses[a] = self.uses.get(a, 0) + 1


simplify_rules[st.transpose_p] = _simplify_transpose
simplify_rules[la.dot_general_p] = _simplify_dot
simplify_rules[cf.cond_p] = _simplify_cond
simplify_rules[ew.add_p] = _simplify_add
simplify_rules[ew.sub_p] = _simplify_sub
simplify_rules[ew.mul_p] = _simplify_mul
simplify_rules[ew.div_p] = _simplify_div
simplify_rules[ew.neg_p] = _simplify_neg
for _p in (st.convert_p, st.broadcast_in_dim_p):
    simplify_rules[_p] = _identity_if_same_type
simplify_rules[st.reshape_p] = _simplify_reshape


def _scalar_operands(eqn: Eqn, producers) -> Eqn:
    """Elementwise operands that are broadcasts of a 0-d value use the value itself
    (elementwise primitives broadcast 0-d operands implicitly), when another operand
    already has the output's shape."""
    out_shape = eqn.outs[0].aval.shape
    if out_shape == () or not any(a.aval.shape == out_shape for a in eqn.inputs):
        return eqn
    inputs = []
    for a in eqn.inputs:
        producer = producers.get(a) if isinstance(a, Var) else None
        if (producer is not None and producer.prim is st.broadcast_in_dim_p
                and producer.inputs[0].aval.shape == ()):
            a = producer.inputs[0]
        inputs.append(a)
    if sum(a.aval.shape == out_shape for a in inputs) == 0:
        return eqn
    return Eqn(eqn.prim, inputs, eqn.outs, eqn.params, eqn.source)


_IMPLICIT_SCALARS = {st.select_p}
ew.each_row(_IMPLICIT_SCALARS.add)


def _fold_literals(eqn: Eqn):
    """Evaluate an equation whose inputs are all scalar literals."""
    if eqn.prim.multiple_results or not eqn.inputs or eqn.outs[0].aval.shape != ():
        return None
    if not all(isinstance(a, Literal) for a in eqn.inputs):
        return None
    value = impl_rules[eqn.prim](*[a.value for a in eqn.inputs], **eqn.params)
    return Literal(np.asarray(value, eqn.outs[0].aval.dtype)[()], eqn.outs[0].aval)


def _filled_value(a, producers):
    """The scalar literal `a` is filled with (a literal or a broadcast of one), else None."""
    if isinstance(a, Literal):
        return a
    producer = producers.get(a) if isinstance(a, Var) else None
    if (producer is not None and producer.prim is st.broadcast_in_dim_p
            and isinstance(producer.inputs[0], Literal)):
        return producer.inputs[0]
    return None


_SHAPE_ONLY = (st.broadcast_in_dim_p, st.reshape_p, st.transpose_p, st.rev_p, st.convert_p)


def _fold_filled(eqn: Eqn, producers):
    """An array equation whose operands are all literals or broadcasts of literals (e.g.
    `mul 100.0 (broadcast 1.0)`, `reshape (broadcast 0.25)`) becomes one broadcast of the
    folded literal, which later equations then read as an implicit scalar."""
    out = eqn.outs[0].aval
    if out.shape == () or not eqn.inputs or (
            eqn.prim not in ew.elementwise_table and eqn.prim not in _SHAPE_ONLY):
        return None
    lits = [_filled_value(a, producers) for a in eqn.inputs]
    if any(lit is None for lit in lits):
        return None
    if eqn.prim is st.broadcast_in_dim_p and isinstance(eqn.inputs[0], Literal):
        return None  # already the canonical form
    if eqn.prim in ew.elementwise_table:
        value = impl_rules[eqn.prim](*[lit.value for lit in lits])
    else:
        value = lits[0].value
    lit = Literal(np.asarray(value).astype(out.dtype)[()], ShapedArray((), out.dtype))
    return Eqn(st.broadcast_in_dim_p, [lit], eqn.outs,
               {"shape": out.shape, "broadcast_dimensions": ()}, eqn.source)


def _param_key(value):
    if isinstance(value, IR):
        return ("ir", id(value))
    if isinstance(value, (list, tuple)):
        return tuple(_param_key(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("array", id(value))
    return value


def _atom_key(a):
    if isinstance(a, Literal):
        return ("lit", a.aval.dtype.str, a.value.item())
    return id(a)


# (max/min are left out: np.maximum(0.0, -0.0) and np.maximum(-0.0, 0.0) differ in sign.)
_COMMUTATIVE = {ew.add_p, ew.mul_p, ew.eq_p, ew.ne_p, ew.and_p, ew.or_p, ew.xor_p, ew.hypot_p}


def simplify_and_cse(ir: IR) -> IR:
    """One forward sweep: substitute, fold, simplify, and reuse identical equations."""
    subst: dict[Var, object] = {}
    seen: dict[tuple, list] = {}
    eqns: list[Eqn] = []
    producers = _Producers(ir)

    def read(a):
        while isinstance(a, Var) and a in subst:
            a = subst[a]
        return a

    for eqn in ir.eqns:
        new = Eqn(eqn.prim, [read(a) for a in eqn.inputs], eqn.outs, eqn.params, eqn.source)
        if eqn.prim in _IMPLICIT_SCALARS:
            new = _scalar_operands(new, producers)
        if not eqn.prim.multiple_results:
            replacement = _fold_literals(new)
            if replacement is None:
                replacement = _fold_filled(new, producers)
            if replacement is None and new.prim in simplify_rules:
                replacement = simplify_rules[new.prim](new, producers)
            if isinstance(replacement, Eqn):  # a cheaper equation defining the same output
                new = replacement
            elif replacement is not None:
                subst[eqn.outs[0]] = replacement
                continue
        elif new.prim in simplify_rules:  # multi-output: rules may only rewrite the equation
            replacement = simplify_rules[new.prim](new, producers)
            if isinstance(replacement, Eqn):
                new = replacement
        atoms = tuple(_atom_key(a) for a in new.inputs)
        if new.prim in _COMMUTATIVE:  # `mul a b` and `mul b a` are one computation
            atoms = tuple(sorted(atoms, key=repr))
        key = (new.prim, atoms,
               tuple(sorted((k, _param_key(v)) for k, v in new.params.items())))
        try:
            previous = seen.get(key)
        except TypeError:  # unhashable params: skip CSE for this equation
            previous, key = None, None
        if previous is not None:
            for v, p in zip(eqn.outs, previous):
                subst[v] = p
            continue
        if key is not None:
            seen[key] = eqn.outs
        for v in eqn.outs:
            producers[v] = new
        eqns.append(new)
    return IR(list(ir.invars), list(ir.constvars), list(ir.constvals), eqns,
              [read(a) for a in ir.outs], ir.name, dict(ir.extra))


def _used_inputs(body: IR) -> list[bool]:
    live = {a for a in body.outs if isinstance(a, Var)}
    for e in reversed(body.eqns):
        if any(v in live for v in e.outs):
            live.update(a for a in e.inputs if isinstance(a, Var))
    return [v in live for v in body.invars]


def _prune_body(body: IR, keep_outs: list[bool], keep_ins: list[bool]) -> IR:
    return dce(IR([v for v, k in zip(body.invars, keep_ins) if k], body.constvars,
                  body.constvals, body.eqns, [a for a, k in zip(body.outs, keep_outs) if k],
                  body.name))


def _dce_scan(eqn: Eqn, used: list[bool]) -> Eqn:
    """Drop stacked outputs nobody reads, then consts and xs the body no longer reads."""
    p = eqn.params
    nc, nk, body = p["num_consts"], p["num_carry"], p["body"]
    keep_outs = [True] * nk + used[nk:]
    trimmed = _prune_body(body, keep_outs, [True] * len(body.invars))
    reads = _used_inputs(trimmed)
    keep_ins = [r for r in reads[:nc]] + [True] * nk + [r for r in reads[nc + nk:]]
    new_body = _prune_body(body, keep_outs, keep_ins)
    return Eqn(eqn.prim, [a for a, k in zip(eqn.inputs, keep_ins) if k],
               [v for v, k in zip(eqn.outs, keep_outs) if k],
               dict(p, body=new_body, num_consts=sum(keep_ins[:nc])), eqn.source)


def _dce_cond(eqn: Eqn, used: list[bool]) -> Eqn:
    branches = [_prune_body(b, used, [True] * len(b.invars)) for b in eqn.params["branches"]]
    reads = [any(col) for col in zip(*[_used_inputs(b) for b in branches])]
    branches = [_prune_body(b, [True] * len(b.outs), reads) for b in branches]
    return Eqn(eqn.prim, [eqn.inputs[0]] + [a for a, r in zip(eqn.inputs[1:], reads) if r],
               [v for v, u in zip(eqn.outs, used) if u], {"branches": tuple(branches)},
               eqn.source)


def _dce_checkpoint(eqn: Eqn, used: list[bool]) -> Eqn:
    body = _prune_body(eqn.params["body"], used, [True] * len(eqn.inputs))
    return Eqn(eqn.prim, list(eqn.inputs), [v for v, u in zip(eqn.outs, used) if u],
               {"body": body}, eqn.source)


# prim -> rule(eqn, which outputs are used) -> an equation with only those (and inputs)
dce_rules: dict[Primitive, Callable] = {cf.scan_p: _dce_scan, cf.cond_p: _dce_cond,
                                        cf.checkpoint_p: _dce_checkpoint}


def dce(ir: IR) -> IR:
    """Drop equations and constants whose outputs nothing uses (every primitive is pure);
    multi-output control flow drops the outputs nobody reads (`dce_rules`)."""
    live: set[Var] = {a for a in ir.outs if isinstance(a, Var)}
    kept: list[Eqn] = []
    for eqn in reversed(ir.eqns):
        used = [v in live for v in eqn.outs]
        if any(used):
            if not all(used) and eqn.prim in dce_rules:
                eqn = dce_rules[eqn.prim](eqn, used)
            kept.append(eqn)
            live.update(a for a in eqn.inputs if isinstance(a, Var))
    kept.reverse()
    consts = [(v, c) for v, c in zip(ir.constvars, ir.constvals) if v in live]
    return IR(list(ir.invars), [v for v, _ in consts], [c for _, c in consts], kept,
              list(ir.outs), ir.name, dict(ir.extra))


def inline_calls(ir: IR) -> IR:
    """Replace every `call` equation by the equations of its body (fresh variables), so
    the rest of the optimizer sees through it."""
    if not any(e.prim is cf.call_p for e in ir.eqns):
        return ir
    subst: dict = {}
    eqns: list[Eqn] = []
    constvars, constvals = list(ir.constvars), list(ir.constvals)

    def read(a):
        while isinstance(a, Var) and a in subst:
            a = subst[a]
        return a

    def splice(body: IR, inputs: list, outs: list) -> None:
        env = dict(zip(body.invars, inputs))
        for v, val in zip(body.constvars, body.constvals):
            fresh = Var(v.aval)
            constvars.append(fresh)
            constvals.append(val)
            env[v] = fresh
        for e in body.eqns:
            ins = [env.get(a, a) if isinstance(a, Var) else a for a in e.inputs]
            if e.prim is cf.call_p:
                inner_outs = [Var(v.aval) for v in e.outs]
                splice(e.params["body"], ins, inner_outs)
                env.update(zip(e.outs, inner_outs))
                continue
            new_outs = [Var(v.aval) for v in e.outs]
            env.update(zip(e.outs, new_outs))
            eqns.append(Eqn(e.prim, ins, new_outs, e.params, e.source))
        for v, a in zip(outs, body.outs):
            subst[v] = env.get(a, a) if isinstance(a, Var) else a

    for eqn in ir.eqns:
        inputs = [read(a) for a in eqn.inputs]
        if eqn.prim is cf.call_p:
            splice(eqn.params["body"], inputs, eqn.outs)
        else:
            eqns.append(Eqn(eqn.prim, inputs, eqn.outs, eqn.params, eqn.source))
    return IR(list(ir.invars), constvars, constvals, eqns, [read(a) for a in ir.outs],
              ir.name, dict(ir.extra))


def optimize(ir: IR) -> IR:
    """Inline calls, then simplify, CSE and DCE until nothing changes."""
    while True:
        before = len(ir.eqns)
        ir = dce(simplify_and_cse(inline_calls(ir)))
        if len(ir.eqns) == before and not any(e.prim is cf.call_p for e in ir.eqns):
            return ir
