"""Control flow primitives whose parameters hold IRs: `cond` (and switch), `scan` (and
fori_loop), `while_loop`, `checkpoint`.

Each follows the same table discipline as every other primitive: shape rule, NumPy
implementation (the interpreter runs the body IRs), JVP (the JVP of the body IRs), a
partial-evaluation rule (how linearize splits the equation into a known and an unknown
equation with residuals), and a transpose rule for the linear pieces linearize produces.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes
from ..core import Primitive, abstract_eval_rules, bind, eval_ir, impl_rules, trace_flat
from ..errors import ShapeError
from ..ir import IR, Eqn, ShapedArray, TapeType, Var
from ..transforms.jvp import Zero, instantiate, is_zero, jvp_ir, jvp_rules, tangent_aval
from ..transforms.partial_eval import partial_eval, partial_eval_rules
from ..transforms.transpose import is_undefined, transpose_ir, transpose_rules
from .elementwise import _aval, add


def _reorder(ir: IR, in_order=None, out_order=None, name=None) -> IR:
    """The same program with inputs/outputs permuted (positions into the old lists)."""
    invars = ir.invars if in_order is None else [ir.invars[i] for i in in_order]
    outs = ir.outs if out_order is None else [ir.outs[i] for i in out_order]
    return IR(invars, ir.constvars, ir.constvals, ir.eqns, outs, name or ir.name)


def _depends(ir: IR, unknown_in) -> list[bool]:
    """Which outputs of `ir` depend on the inputs marked unknown (forward propagation).

    Mirrors `partial_eval`: a nested control-flow equation with some known inputs splits
    its outputs as its partial-evaluation rule does (the JVP of a cond or scan returns
    primal outputs, which stay known, next to tangent outputs, which do not)."""
    unknown = {v for v, u in zip(ir.invars, unknown_in) if u}
    for eqn in ir.eqns:
        flags = [isinstance(a, Var) and a in unknown for a in eqn.inputs]
        if not any(flags):
            continue
        rule = _depends_rules.get(eqn.prim)
        if rule is None or all(flags):
            unknown.update(eqn.outs)
        else:
            unknown.update(v for v, d in zip(eqn.outs, rule(eqn, flags)) if d)
    return [isinstance(a, Var) and a in unknown for a in ir.outs]


# prim -> rule(eqn, unknown input flags) -> unknown output flags, as its partial_eval rule
# splits them (filled in below, next to each primitive).
_depends_rules: dict = {}


def _no_tapes(avals, where: str) -> None:
    """A while loop's tape has as many rows as that loop ran: it cannot be stacked per step
    of an enclosing loop or stand in for another branch's residuals."""
    if any(isinstance(a, TapeType) for a in avals):
        raise NotImplementedError(
            f"reverse mode of an unbounded while_loop inside {where} is not supported yet: "
            "pass max_iterations=N to the inner tj.while_loop")


def _zeros(aval: ShapedArray):
    return instantiate(Zero(aval))


def _nonzero_carry(body: IR, before: list, nz_carry: list, after: list) -> list[bool]:
    """Carries whose tangent is nonzero: those that start nonzero or that the body makes
    nonzero from nonzero inputs (a fixpoint). Body inputs: before + carry + after."""
    float_carry = _float_mask(body.out_avals[:len(nz_carry)])
    while True:
        _, out_nz = jvp_ir(body, before + nz_carry + after, instantiate_outs=False)
        new = [(a or b) and f for a, b, f in zip(nz_carry, out_nz, float_carry)]
        if new == nz_carry:
            return nz_carry
        nz_carry = new


def _known_carry(body: IR, before: list, k_carry: list, after: list) -> tuple[list, list]:
    """Carries that stay known under partial evaluation (a fixpoint: unknown if they start
    unknown or the body makes them so), and which body outputs are unknown."""
    while True:
        dep = _depends(body, [not k for k in before + k_carry + after])
        new = [k and not d for k, d in zip(k_carry, dep)]
        if new == k_carry:
            return k_carry, dep
        k_carry = new


def _float_mask(avals) -> list[bool]:
    return [dtypes.is_inexact(a.dtype) for a in avals]


# =============================================================================================
# cond: branches[index](*operands)
# =============================================================================================

cond_p = Primitive("cond", multiple_results=True)


def cond_bind(index, operands, branches):
    return bind(cond_p, index, *operands, branches=tuple(branches))


def _cond_abstract(index, *avals, branches):
    if index.shape != () or not dtypes.is_int(index.dtype):
        raise TypeError(f"cond: the branch index must be an integer scalar, got {index}")
    outs = branches[0].out_avals
    for b in branches[1:]:
        if b.out_avals != outs:
            raise ShapeError("cond: branches return different types: "
                             f"{outs} and {b.out_avals}")
    return outs


def _cond_impl(index, *args, branches):
    i = int(np.clip(int(index), 0, len(branches) - 1))
    return eval_ir(branches[i], args)


def _cond_jvp(primals, tangents, *, branches):
    index, args = primals[0], primals[1:]
    t_args = tangents[1:]
    nonzero = [not is_zero(t) for t in t_args]
    n_out = len(branches[0].outs)
    float_out = _float_mask(branches[0].out_avals)
    jvps = [jvp_ir(b, nonzero, instantiate_outs=float_out)[0] for b in branches]
    tans = [t for t in t_args if not is_zero(t)]
    outs = bind(cond_p, index, *args, *tans, branches=tuple(jvps))
    it = iter(outs[n_out:])
    touts = [next(it) if f else Zero(tangent_aval(a))
             for f, a in zip(float_out, branches[0].out_avals)]
    return outs[:n_out], touts


def _cond_unknown_outs(eqn: Eqn, unknown_in) -> list[bool]:
    if unknown_in[0]:  # unknown index: every output is unknown
        return [True] * len(eqn.outs)
    return [any(col) for col in zip(*[_depends(b, unknown_in[1:])
                                      for b in eqn.params["branches"]])]


_depends_rules[cond_p] = _cond_unknown_outs


def _cond_partial_eval(eqn: Eqn, in_known):
    index_known, args_known = in_known[0], in_known[1:]
    if not index_known:
        return [], [eqn]
    branches = eqn.params["branches"]
    out_unknown = _cond_unknown_outs(eqn, [not k for k in in_known])
    splits = [partial_eval(b, args_known, out_unknown) for b in branches]
    res_avals = [[v.aval for v in unk.invars[:n_res]] for _, unk, n_res in splits]
    _no_tapes([a for avals in res_avals for a in avals], "a cond or switch")
    known_args = [a for a, k in zip(eqn.inputs[1:], args_known) if k]
    unknown_args = [a for a, k in zip(eqn.inputs[1:], args_known) if not k]
    n_known_out = sum(not u for u in out_unknown)

    def known_branch(i):
        known_ir = splits[i][0]

        def fn(*ka):
            outs = eval_ir(known_ir, ka)
            mine = outs[n_known_out:]
            res = []
            for j, avals in enumerate(res_avals):
                res += list(mine) if j == i else [_zeros(a) for a in avals]
            return list(outs[:n_known_out]) + res
        return trace_flat(fn, [a.aval for a in known_args], name=f"cond_known_{i}",
                          stage_all=True)[0]

    def unknown_branch(i):
        unknown_ir, n_res = splits[i][1], splits[i][2]
        all_res = [a for avals in res_avals for a in avals]
        offset = sum(len(r) for r in res_avals[:i])

        def fn(*args):
            res, ua = args[:len(all_res)], args[len(all_res):]
            return eval_ir(unknown_ir, list(res[offset:offset + n_res]) + list(ua))
        return trace_flat(fn, all_res + [a.aval for a in unknown_args],
                          name=f"cond_unknown_{i}", stage_all=True)[0]

    known_branches = tuple(known_branch(i) for i in range(len(branches)))
    unknown_branches = tuple(unknown_branch(i) for i in range(len(branches)))
    res_vars = [Var(a) for avals in res_avals for a in avals]
    known_outs = [v for v, u in zip(eqn.outs, out_unknown) if not u]
    unknown_outs = [v for v, u in zip(eqn.outs, out_unknown) if u]
    known_eqn = Eqn(cond_p, [eqn.inputs[0], *known_args], known_outs + res_vars,
                    {"branches": known_branches}, eqn.source)
    unknown_eqn = Eqn(cond_p, [eqn.inputs[0], *res_vars, *unknown_args], unknown_outs,
                      {"branches": unknown_branches}, eqn.source)
    return [known_eqn], [unknown_eqn]


def _cond_transpose(cts, index, *args, branches):
    if is_undefined(index):
        raise NotImplementedError("cond is not linear in its index")
    linear = [is_undefined(a) for a in args]
    transposed = tuple(transpose_ir(b, linear) for b in branches)
    nonlinear = [a for a in args if not is_undefined(a)]
    ct_vals = [instantiate(c) for c in cts]
    out = bind(cond_p, index, *nonlinear, *ct_vals, branches=transposed)
    it = iter(out)
    return [None] + [next(it) if lin else None for lin in linear]


abstract_eval_rules[cond_p] = _cond_abstract
impl_rules[cond_p] = _cond_impl
jvp_rules[cond_p] = _cond_jvp
partial_eval_rules[cond_p] = _cond_partial_eval
transpose_rules[cond_p] = _cond_transpose


# =============================================================================================
# scan: (consts, carry, xs) -> (carry, ys); body(consts, carry, x_t) -> (carry, y_t)
# =============================================================================================

scan_p = Primitive("scan", multiple_results=True)


def scan_bind(consts, carry, xs, body: IR, length: int, reverse: bool):
    return bind(scan_p, *consts, *carry, *xs, body=body, num_consts=len(consts),
                num_carry=len(carry), length=int(length), reverse=bool(reverse))


def _stacked(aval: ShapedArray, length: int) -> ShapedArray:
    return ShapedArray((length, *aval.shape), aval.dtype)


def _scan_abstract(*avals, body, num_consts, num_carry, length, reverse):
    carry = avals[num_consts:num_consts + num_carry]
    xs = avals[num_consts + num_carry:]
    for a, b in zip(carry, body.out_avals[:num_carry]):
        if a != b:
            raise ShapeError(f"scan: the body returns a carry of type {b} for an input carry "
                             f"of type {a}")
    for x, b in zip(xs, body.in_avals[num_consts + num_carry:]):
        if x.shape[:1] != (length,) or ShapedArray(x.shape[1:], x.dtype) != b:
            raise ShapeError(f"scan: xs of type {x} do not match length {length} and body "
                             f"input {b}")
    ys = [_stacked(a, length) for a in body.out_avals[num_carry:]]
    return list(carry) + ys


def _scan_impl(*args, body, num_consts, num_carry, length, reverse):
    consts = list(args[:num_consts])
    carry = list(args[num_consts:num_consts + num_carry])
    xs = [np.asarray(x) for x in args[num_consts + num_carry:]]
    y_avals = body.out_avals[num_carry:]
    ys = [np.empty((length, *a.shape), a.dtype) for a in y_avals]
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
        outs = eval_ir(body, consts + carry + [x[t] for x in xs])
        carry = list(outs[:num_carry])
        for y, o in zip(ys, outs[num_carry:]):
            y[t] = o
    return [np.asarray(c) for c in carry] + ys


def _scan_jvp(primals, tangents, *, body, num_consts, num_carry, length, reverse):
    n_in = len(primals)
    nz = [not is_zero(t) for t in tangents]
    nz_consts, nz_carry, nz_xs = (nz[:num_consts], nz[num_consts:num_consts + num_carry],
                                  nz[num_consts + num_carry:])
    nz_carry = _nonzero_carry(body, nz_consts, nz_carry, nz_xs)
    n_ys = len(body.outs) - num_carry
    inst = nz_carry + [False] * n_ys
    jbody, out_nz = jvp_ir(body, nz_consts + nz_carry + nz_xs, instantiate_outs=inst)
    ys_nz = out_nz[num_carry:]
    # Regroup: (consts, t_consts, carry, t_carry, xs, t_xs) -> (carry, t_carry, ys, t_ys).
    idx = list(range(n_in))
    t_pos = iter(range(n_in, n_in + sum(nz_consts + nz_carry + nz_xs)))
    t_of = {i: next(t_pos) for i in idx if (nz_consts + nz_carry + nz_xs)[i]}
    groups = [(0, num_consts), (num_consts, num_consts + num_carry),
              (num_consts + num_carry, n_in)]
    in_order = []
    for lo, hi in groups:
        in_order += list(range(lo, hi)) + [t_of[i] for i in range(lo, hi) if i in t_of]
    n_out = len(body.outs)
    t_out = iter(range(n_out, n_out + sum(out_nz)))
    t_out_of = {i: next(t_out) for i in range(n_out) if out_nz[i]}
    out_order = (list(range(num_carry)) + [t_out_of[i] for i in range(num_carry) if i in t_out_of]
                 + list(range(num_carry, n_out))
                 + [t_out_of[i] for i in range(num_carry, n_out) if i in t_out_of])
    jbody = _reorder(jbody, in_order, out_order, f"jvp_{body.name}")
    consts = list(primals[:num_consts]) + [t for t, k in zip(tangents[:num_consts], nz_consts)
                                           if k]
    carry = list(primals[num_consts:num_consts + num_carry]) + [
        instantiate(t) if not is_zero(t) else _zeros(tangent_aval(_aval(p)))
        for p, t, k in zip(primals[num_consts:num_consts + num_carry],
                           tangents[num_consts:num_consts + num_carry], nz_carry) if k]
    xs = list(primals[num_consts + num_carry:]) + [
        t for t, k in zip(tangents[num_consts + num_carry:], nz_xs) if k]
    outs = scan_bind(consts, carry, xs, jbody, length, reverse)
    n_tc = sum(nz_carry)
    c_out, tc_out = outs[:num_carry], iter(outs[num_carry:num_carry + n_tc])
    ys = outs[num_carry + n_tc:num_carry + n_tc + n_ys]
    t_ys = iter(outs[num_carry + n_tc + n_ys:])
    p_out = list(c_out) + list(ys)
    t_out = [next(tc_out) if k else Zero(tangent_aval(a))
             for k, a in zip(nz_carry, body.out_avals[:num_carry])]
    t_out += [next(t_ys) if k else Zero(tangent_aval(_stacked(a, length)))
              for k, a in zip(ys_nz, body.out_avals[num_carry:])]
    return p_out, t_out


def _scan_known_carry(eqn: Eqn, in_known):
    """(known carries, unknown outputs of the scan) for the inputs marked known."""
    p = eqn.params
    body, nc, nk = p["body"], p["num_consts"], p["num_carry"]
    k_consts, k_carry, k_xs = in_known[:nc], list(in_known[nc:nc + nk]), in_known[nc + nk:]
    k_carry, dep = _known_carry(body, list(k_consts), k_carry, list(k_xs))
    return k_carry, [not k for k in k_carry] + dep[nk:]


_depends_rules[scan_p] = lambda eqn, unknown_in: _scan_known_carry(
    eqn, [not u for u in unknown_in])[1]


def _scan_partial_eval(eqn: Eqn, in_known):
    p = eqn.params
    body, nc, nk, length = p["body"], p["num_consts"], p["num_carry"], p["length"]
    k_consts, k_xs = in_known[:nc], in_known[nc + nk:]
    k_carry, out_unknown = _scan_known_carry(eqn, in_known)
    body_known = list(k_consts) + k_carry + list(k_xs)
    known_body, unknown_body, n_res = partial_eval(body, body_known, out_unknown)
    res_vars = unknown_body.invars[:n_res]
    _no_tapes([v.aval for v in res_vars], "a scan or fori_loop")
    known_consts_vars = [v for v, k in zip(body.invars[:nc], k_consts) if k]
    # Residuals that are known consts of the body do not change per step: pass them as
    # consts of the unknown scan instead of stacking them.
    invariant = [r in known_consts_vars for r in res_vars]
    # Residuals that are the body's own slices of known xs are those xs: no copy.
    known_xs_vars = [v for v, k in zip(body.invars[nc + nk:], k_xs) if k]
    from_xs = [r in known_xs_vars and not inv for r, inv in zip(res_vars, invariant)]
    n_kout = sum(not u for u in out_unknown)
    # Known scan: outputs (known carry, known ys, stacked per-step residuals).
    per_step_pos = [i for i, inv in enumerate(invariant) if not inv]
    stacked_pos = [i for i in per_step_pos if not from_xs[i]]
    k_out_order = list(range(n_kout)) + [n_kout + i for i in stacked_pos]
    known_body = _reorder(known_body, out_order=k_out_order, name=f"{body.name}_known")
    inputs = eqn.inputs
    kc = [a for a, k in zip(inputs[:nc], k_consts) if k]
    kcar = [a for a, k in zip(inputs[nc:nc + nk], k_carry) if k]
    kx = [a for a, k in zip(inputs[nc + nk:], k_xs) if k]
    n_kcarry = len(kcar)
    res_avals = [v.aval for v in res_vars]
    stacked_vars = [Var(_stacked(res_avals[i], length)) for i in stacked_pos]
    new_stacked = dict(zip(stacked_pos, stacked_vars))
    per_step_outer = [kx[known_xs_vars.index(res_vars[i])] if from_xs[i] else new_stacked[i]
                      for i in per_step_pos]
    known_carry_out = [v for v, k in zip(eqn.outs[:nk], k_carry) if k]
    known_ys_out = [v for v, u in zip(eqn.outs[nk:], out_unknown[nk:]) if not u]
    known_eqn = Eqn(scan_p, kc + kcar + kx, known_carry_out + known_ys_out + stacked_vars,
                    dict(p, body=known_body, num_consts=len(kc), num_carry=n_kcarry),
                    eqn.source)
    # Unknown scan: consts (invariant residuals, unknown consts), carry (unknown carry),
    # xs (stacked residuals, unknown xs).
    inv_outer = [kc[known_consts_vars.index(r)] for r, inv in zip(res_vars, invariant) if inv]
    uc = [a for a, k in zip(inputs[:nc], k_consts) if not k]
    ucar = [a for a, k in zip(inputs[nc:nc + nk], k_carry) if not k]
    ux = [a for a, k in zip(inputs[nc + nk:], k_xs) if not k]
    n_res_inv = sum(invariant)
    # unknown_body inputs: (res..., unknown consts, unknown carry, unknown xs)
    res_inv_pos = [i for i, inv in enumerate(invariant) if inv]
    n_uc, n_ucar = len(uc), len(ucar)
    in_order = (res_inv_pos + list(range(n_res, n_res + n_uc))
                + list(range(n_res + n_uc, n_res + n_uc + n_ucar))
                + per_step_pos + list(range(n_res + n_uc + n_ucar, len(unknown_body.invars))))
    unknown_body = _reorder(unknown_body, in_order, name=f"{body.name}_unknown")
    unknown_carry_out = [v for v, k in zip(eqn.outs[:nk], k_carry) if not k]
    unknown_ys_out = [v for v, u in zip(eqn.outs[nk:], out_unknown[nk:]) if u]
    # Unknown carries whose initial value is known enter as residual-free inputs as they are.
    unknown_eqn = Eqn(scan_p, inv_outer + uc + ucar + per_step_outer + ux,
                      unknown_carry_out + unknown_ys_out,
                      dict(p, body=unknown_body, num_consts=n_res_inv + n_uc,
                           num_carry=n_ucar), eqn.source)
    return [known_eqn], [unknown_eqn]


def _scan_transpose(cts, *args, body, num_consts, num_carry, length, reverse):
    nc, nk = num_consts, num_carry
    consts, carry, xs = args[:nc], args[nc:nc + nk], args[nc + nk:]
    lin_consts = [is_undefined(a) for a in consts]
    lin_xs = [is_undefined(a) for a in xs]
    # Every carry of a linear scan is linear; one whose initial value is a known constant
    # (a zero tangent that the body makes nonzero) simply gets no cotangent back.
    res_consts = [a for a in consts if not is_undefined(a)]
    res_xs = [a for a in xs if not is_undefined(a)]
    linear = lin_consts + [True] * nk + lin_xs
    tbody = transpose_ir(body, linear)
    # tbody: (res consts, res x_t, ct carry_out, ct y_t) -> (ct lin consts, ct carry, ct lin x_t)
    ct_carry = [instantiate(c) for c in cts[:nk]]
    ct_ys = [instantiate(c) for c in cts[nk:]]
    lin_const_avals = [a.aval for a in consts if is_undefined(a)]
    n_rc, n_rx = len(res_consts), len(res_xs)
    n_lc = len(lin_const_avals)
    res_x_avals = [ShapedArray(_aval(x).shape[1:], _aval(x).dtype) for x in res_xs]
    ct_y_avals = [ShapedArray(_aval(c).shape[1:], _aval(c).dtype) for c in ct_ys]

    def step(*a):
        rc = a[:n_rc]
        acc = a[n_rc:n_rc + n_lc]
        cc = a[n_rc + n_lc:n_rc + n_lc + nk]
        rx = a[n_rc + n_lc + nk:n_rc + n_lc + nk + n_rx]
        cy = a[n_rc + n_lc + nk + n_rx:]
        outs = eval_ir(tbody, list(rc) + list(rx) + list(cc) + list(cy))
        c_consts, c_carry, c_xs = outs[:n_lc], outs[n_lc:n_lc + nk], outs[n_lc + nk:]
        return [add(x, y) for x, y in zip(acc, c_consts)] + list(c_carry) + list(c_xs)

    step_avals = ([_aval(c) for c in res_consts] + lin_const_avals
                  + [_aval(c) for c in ct_carry] + res_x_avals + ct_y_avals)
    step_ir, _ = trace_flat(step, step_avals, name=f"transpose_{body.name}", stage_all=True)
    acc0 = [_zeros(a) for a in lin_const_avals]
    outs = scan_bind(list(res_consts), acc0 + ct_carry, list(res_xs) + ct_ys, step_ir, length,
                     not reverse)
    ct_consts_lin, ct_carry_in, ct_xs_lin = outs[:n_lc], outs[n_lc:n_lc + nk], outs[n_lc + nk:]
    it_c, it_x = iter(ct_consts_lin), iter(ct_xs_lin)
    return ([next(it_c) if lin else None for lin in lin_consts]
            + [c if is_undefined(a) else None for c, a in zip(ct_carry_in, carry)]
            + [next(it_x) if lin else None for lin in lin_xs])


abstract_eval_rules[scan_p] = _scan_abstract
impl_rules[scan_p] = _scan_impl
jvp_rules[scan_p] = _scan_jvp
partial_eval_rules[scan_p] = _scan_partial_eval
transpose_rules[scan_p] = _scan_transpose


# =============================================================================================
# while_loop: carry = body(carry) while cond(carry)
# =============================================================================================

while_p = Primitive("while_loop", multiple_results=True)


def _while_abstract(*avals, cond_ir, body_ir, cond_nconsts, body_nconsts,
                    max_iterations=None):
    carry = avals[cond_nconsts + body_nconsts:]
    if cond_ir.out_avals != [ShapedArray((), dtypes.bool_)]:
        raise TypeError(f"while_loop: cond_fun must return a bool scalar, got "
                        f"{cond_ir.out_avals}")
    for a, b in zip(carry, body_ir.out_avals):
        if a != b:
            raise ShapeError(f"while_loop: body_fun returns a carry of type {b} for an input "
                             f"carry of type {a}")
    return list(carry)


def _while_impl(*args, cond_ir, body_ir, cond_nconsts, body_nconsts, max_iterations=None):
    cc = list(args[:cond_nconsts])
    bc = list(args[cond_nconsts:cond_nconsts + body_nconsts])
    carry = list(args[cond_nconsts + body_nconsts:])
    steps = 0
    while bool(eval_ir(cond_ir, cc + carry)[0]):
        if max_iterations is not None and steps >= max_iterations:
            break
        carry = list(eval_ir(body_ir, bc + carry))
        steps += 1
    return [np.asarray(c) for c in carry]


def _while_jvp(primals, tangents, *, cond_ir, body_ir, cond_nconsts, body_nconsts,
               max_iterations=None):
    ncc, nbc = cond_nconsts, body_nconsts
    nz = [not is_zero(t) for t in tangents]
    nz_bc, nz_carry = nz[ncc:ncc + nbc], nz[ncc + nbc:]
    nz_carry = _nonzero_carry(body_ir, nz_bc, nz_carry, [])
    jbody, _ = jvp_ir(body_ir, nz_bc + nz_carry, instantiate_outs=nz_carry)
    nb, nk = nbc, len(nz_carry)
    n_tb = sum(nz_bc)
    # jbody inputs: (bc, carry, t_bc, t_carry) -> regroup to (bc, t_bc, carry, t_carry)
    order = (list(range(nb)) + list(range(nb + nk, nb + nk + n_tb)) + list(range(nb, nb + nk))
             + list(range(nb + nk + n_tb, len(jbody.invars))))
    jbody = _reorder(jbody, order, name=f"jvp_{body_ir.name}")
    n_tc = sum(nz_carry)
    # cond sees (consts, carry, t_carry) and ignores the tangents.
    cond_aug = IR(cond_ir.invars + [Var(tangent_aval(a)) for a, k in
                                    zip(body_ir.out_avals, nz_carry) if k],
                  cond_ir.constvars, cond_ir.constvals, cond_ir.eqns, cond_ir.outs,
                  cond_ir.name)
    cc = list(primals[:ncc])
    bc = list(primals[ncc:ncc + nbc]) + [t for t, k in zip(tangents[ncc:ncc + nbc], nz_bc)
                                         if k]
    carry = list(primals[ncc + nbc:])
    t_carry = [instantiate(t) if not is_zero(t) else _zeros(tangent_aval(_aval(p)))
               for p, t, k in zip(carry, tangents[ncc + nbc:], nz_carry) if k]
    outs = bind(while_p, *cc, *bc, *carry, *t_carry, cond_ir=cond_aug, body_ir=jbody,
                cond_nconsts=ncc, body_nconsts=len(bc), max_iterations=max_iterations)
    p_out, t_iter = outs[:nk], iter(outs[nk:nk + n_tc])
    t_out = [next(t_iter) if k else Zero(tangent_aval(a))
             for k, a in zip(nz_carry, body_ir.out_avals)]
    return p_out, t_out


abstract_eval_rules[while_p] = _while_abstract
impl_rules[while_p] = _while_impl
jvp_rules[while_p] = _while_jvp


def _while_split(eqn: Eqn, in_known):
    """Which carries of a while loop stay known under linearize (a fixpoint over the body),
    and whether its condition reads anything unknown."""
    p = eqn.params
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    cond_ir, body_ir = p["cond_ir"], p["body_ir"]
    k_cc, k_bc = list(in_known[:ncc]), list(in_known[ncc:ncc + nbc])
    k_carry, _ = _known_carry(body_ir, k_bc, list(in_known[ncc + nbc:]), [])
    cond_unknown = not all(k_cc) or _depends(
        cond_ir, [not k for k in k_cc] + [not k for k in k_carry])[0]
    return k_bc, k_carry, cond_unknown


def _while_unknown_outs(eqn: Eqn, unknown_in) -> list[bool]:
    p = eqn.params
    if p.get("max_iterations") is not None:
        return _depends(_while_as_scan(p["cond_ir"], p["body_ir"], p["cond_nconsts"],
                                       p["body_nconsts"], p["max_iterations"]), unknown_in)
    _, k_carry, cond_unknown = _while_split(eqn, [not u for u in unknown_in])
    if cond_unknown:
        return [True] * len(eqn.outs)
    return [not k for k in k_carry]


def _while_partial_eval(eqn: Eqn, in_known):
    """Reverse mode of a while loop.

    Unbounded: the known loop runs as before and also records every step's residuals on a
    tape (as many rows as it runs: a buffer that doubles in compiled code); the unknown loop
    replays the recorded steps (`replay`), and its transpose replays them backwards.
    With `max_iterations`: the loop becomes a scan of that many steps that runs the body
    while the condition holds, which linearizes (to any order) like every scan.
    """
    p = eqn.params
    if p.get("max_iterations") is not None:
        lowered = _while_as_scan(p["cond_ir"], p["body_ir"], p["cond_nconsts"],
                                 p["body_nconsts"], p["max_iterations"])
        call = Eqn(call_p, list(eqn.inputs), list(eqn.outs), {"body": lowered}, eqn.source)
        return _call_partial_eval(call, in_known)
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
    cond_ir, body_ir = p["cond_ir"], p["body_ir"]
    k_bc, k_carry, cond_unknown = _while_split(eqn, in_known)
    if cond_unknown:
        return [], [eqn]
    out_unknown = [not k for k in k_carry]
    known_body, unknown_body, n_res = partial_eval(body_ir, k_bc + k_carry, out_unknown)
    res_vars = unknown_body.invars[:n_res]
    known_bc_vars = [v for v, k in zip(body_ir.invars[:nbc], k_bc) if k]
    invariant = [r in known_bc_vars for r in res_vars]
    n_kcarry = sum(k_carry)
    taped = [i for i, inv in enumerate(invariant) if not inv]
    known_body = _reorder(known_body, out_order=list(range(n_kcarry))
                          + [n_kcarry + i for i in taped], name=f"{body_ir.name}_known")
    # The condition reads only known carries: drop the unknown ones from its inputs.
    carry_vars = cond_ir.invars[ncc:]
    cond_known = IR(cond_ir.invars[:ncc] + [v for v, k in zip(carry_vars, k_carry) if k],
                    cond_ir.constvars, cond_ir.constvals, cond_ir.eqns, cond_ir.outs,
                    cond_ir.name)
    inputs = eqn.inputs
    cc = list(inputs[:ncc])
    kbc = [a for a, k in zip(inputs[ncc:ncc + nbc], k_bc) if k]
    ubc = [a for a, k in zip(inputs[ncc:ncc + nbc], k_bc) if not k]
    kcar = [a for a, k in zip(inputs[ncc + nbc:], k_carry) if k]
    ucar = [a for a, k in zip(inputs[ncc + nbc:], k_carry) if not k]
    steps = Var(ShapedArray((), dtypes.int64))
    tapes = [Var(TapeType(res_vars[i].aval)) for i in taped]
    known_eqn = Eqn(while_record_p, cc + kbc + kcar,
                    [v for v, k in zip(eqn.outs, k_carry) if k] + [steps] + tapes,
                    dict(p, cond_ir=cond_known, body_ir=known_body, body_nconsts=len(kbc)),
                    eqn.source)
    inv_outer = [kbc[known_bc_vars.index(r)] for r, inv in zip(res_vars, invariant) if inv]
    n_ubc, n_ucar = len(ubc), len(ucar)
    in_order = ([i for i, inv in enumerate(invariant) if inv]
                + list(range(n_res, n_res + n_ubc + n_ucar)) + taped)
    unknown_body = _reorder(unknown_body, in_order, name=f"{body_ir.name}_unknown")
    unknown_eqn = Eqn(replay_p, [steps] + inv_outer + ubc + ucar + tapes,
                      [v for v, k in zip(eqn.outs, k_carry) if not k],
                      {"body": unknown_body, "num_consts": len(inv_outer) + n_ubc,
                       "num_carry": n_ucar, "reverse": False}, eqn.source)
    return [known_eqn], [unknown_eqn]


def _while_as_scan(cond_ir: IR, body_ir: IR, ncc: int, nbc: int, max_iterations: int) -> IR:
    """(cond consts, body consts, carry) -> carry, as a bounded scan with a cond inside."""
    carry_avals = body_ir.out_avals
    cc_avals = cond_ir.in_avals[:ncc]
    bc_avals = body_ir.in_avals[:nbc]
    keep_vars = [Var(a) for a in bc_avals + carry_avals]
    keep = IR(keep_vars, [], [], [], keep_vars[nbc:], "keep")

    def step(*args):
        cc, bc, carry = args[:ncc], args[ncc:ncc + nbc], args[ncc + nbc:]
        (go,) = eval_ir(cond_ir, list(cc) + list(carry))
        from .structural import convert
        index = convert(go, np.int32)
        outs = cond_bind(index, list(bc) + list(carry), [keep, body_ir])
        return list(outs)

    step_ir = trace_flat(step, cc_avals + bc_avals + carry_avals, name=f"{body_ir.name}_step",
                         stage_all=True)[0]

    def loop(*args):
        return scan_bind(list(args[:ncc + nbc]), list(args[ncc + nbc:]), [], step_ir,
                         max_iterations, False)

    return trace_flat(loop, cc_avals + bc_avals + carry_avals,
                      name=f"while_{body_ir.name}", stage_all=True)[0]


partial_eval_rules[while_p] = _while_partial_eval
_depends_rules[while_p] = _while_unknown_outs


# -- the tape: a while loop that records each step, and a loop that replays the record ------

while_record_p = Primitive("while_record", multiple_results=True)


def _while_record_abstract(*avals, cond_ir, body_ir, cond_nconsts, body_nconsts,
                           max_iterations=None):
    nk = len(avals) - cond_nconsts - body_nconsts
    return (list(body_ir.out_avals[:nk]) + [ShapedArray((), dtypes.int64)]
            + [TapeType(a) for a in body_ir.out_avals[nk:]])


def _while_record_impl(*args, cond_ir, body_ir, cond_nconsts, body_nconsts,
                       max_iterations=None):
    cc = list(args[:cond_nconsts])
    bc = list(args[cond_nconsts:cond_nconsts + body_nconsts])
    carry = list(args[cond_nconsts + body_nconsts:])
    nk = len(carry)
    rows: list = [[] for _ in body_ir.outs[nk:]]
    steps = 0
    while bool(eval_ir(cond_ir, cc + carry)[0]):
        if max_iterations is not None and steps >= max_iterations:
            break
        outs = eval_ir(body_ir, bc + carry)
        for r, o in zip(rows, outs[nk:]):
            r.append(np.asarray(o))
        carry = list(outs[:nk])
        steps += 1
    tapes = [np.asarray(r, dtype=a.dtype).reshape((steps, *a.shape))
             for r, a in zip(rows, body_ir.out_avals[nk:])]
    return [np.asarray(c) for c in carry] + [np.int64(steps)] + tapes


abstract_eval_rules[while_record_p] = _while_record_abstract
impl_rules[while_record_p] = _while_record_impl

replay_p = Primitive("replay", multiple_results=True)


def _replay_abstract(steps, *avals, body, num_consts, num_carry, reverse):
    return body.out_avals


def _replay_impl(steps, *args, body, num_consts, num_carry, reverse):
    consts = list(args[:num_consts])
    carry = list(args[num_consts:num_consts + num_carry])
    tapes = args[num_consts + num_carry:]
    n = int(steps)
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        carry = list(eval_ir(body, consts + carry + [tape[t] for tape in tapes]))
    return [np.asarray(c) for c in carry]


def _replay_transpose(cts, steps, *args, body, num_consts, num_carry, reverse):
    nc, nk = num_consts, num_carry
    consts, carry, tapes = args[:nc], args[nc:nc + nk], args[nc + nk:]
    lin_consts = [is_undefined(a) for a in consts]
    res_consts = [a for a in consts if not is_undefined(a)]
    tbody = transpose_ir(body, lin_consts + [True] * nk + [False] * len(tapes))
    # tbody: (res consts, tape rows, ct carry_out) -> (ct lin consts, ct carry)
    lin_avals = [a.aval for a in consts if is_undefined(a)]
    n_rc, n_lc = len(res_consts), len(lin_avals)
    ct_carry = [instantiate(c) for c in cts]
    row_avals = [_aval(t).row for t in tapes]

    def step(*a):
        rc, acc = a[:n_rc], a[n_rc:n_rc + n_lc]
        cc, rows = a[n_rc + n_lc:n_rc + n_lc + nk], a[n_rc + n_lc + nk:]
        outs = eval_ir(tbody, list(rc) + list(rows) + list(cc))
        return [add(x, y) for x, y in zip(acc, outs[:n_lc])] + list(outs[n_lc:])

    step_ir, _ = trace_flat(step, [_aval(c) for c in res_consts] + lin_avals
                            + [_aval(c) for c in ct_carry] + row_avals,
                            name=f"transpose_{body.name}", stage_all=True)
    outs = bind(replay_p, steps, *res_consts, *[_zeros(a) for a in lin_avals], *ct_carry,
                *tapes, body=step_ir, num_consts=n_rc, num_carry=n_lc + nk,
                reverse=not reverse)
    it = iter(outs[:n_lc])
    return ([None] + [next(it) if lin else None for lin in lin_consts]
            + [c if is_undefined(a) else None for c, a in zip(outs[n_lc:], carry)]
            + [None] * len(tapes))


def _no_higher_order(name):
    def rule(primals, tangents, **params):
        raise NotImplementedError(
            f"differentiating the reverse pass of an unbounded while_loop ({name}) again is "
            "not supported yet: for higher derivatives pass max_iterations=N to "
            "tj.while_loop, or use tj.fori_loop or tj.scan")
    return rule


abstract_eval_rules[replay_p] = _replay_abstract
impl_rules[replay_p] = _replay_impl
transpose_rules[replay_p] = _replay_transpose
jvp_rules[while_record_p] = _no_higher_order("while_record")
jvp_rules[replay_p] = _no_higher_order("replay")


# =============================================================================================
# call: run a closed IR
# =============================================================================================

call_p = Primitive("call", multiple_results=True)

abstract_eval_rules[call_p] = lambda *avals, body: body.out_avals
impl_rules[call_p] = lambda *args, body: eval_ir(body, args)


def _call_jvp(primals, tangents, *, body):
    nz = [not is_zero(t) for t in tangents]
    jbody, out_nz = jvp_ir(body, nz, instantiate_outs=False)
    outs = bind(call_p, *primals, *[t for t in tangents if not is_zero(t)], body=jbody)
    n = len(body.outs)
    it = iter(outs[n:])
    return outs[:n], [next(it) if k else Zero(tangent_aval(a))
                      for k, a in zip(out_nz, body.out_avals)]


def _call_partial_eval(eqn: Eqn, in_known):
    body = eqn.params["body"]
    out_unknown = _depends(body, [not k for k in in_known])
    known_ir, unknown_ir, n_res = partial_eval(body, in_known, out_unknown)
    res_vars = [Var(v.aval) for v in unknown_ir.invars[:n_res]]
    known_eqn = Eqn(call_p, [a for a, k in zip(eqn.inputs, in_known) if k],
                    [v for v, u in zip(eqn.outs, out_unknown) if not u] + res_vars,
                    {"body": _dce_ir(known_ir)}, eqn.source)
    unknown_eqn = Eqn(call_p, res_vars + [a for a, k in zip(eqn.inputs, in_known) if not k],
                      [v for v, u in zip(eqn.outs, out_unknown) if u],
                      {"body": unknown_ir}, eqn.source)
    return [known_eqn], [unknown_eqn]


def _call_transpose(cts, *args, body):
    linear = [is_undefined(a) for a in args]
    t_body = transpose_ir(body, linear)
    outs = bind(call_p, *[a for a in args if not is_undefined(a)],
                *[instantiate(c) for c in cts], body=t_body)
    it = iter(outs)
    return [next(it) if lin else None for lin in linear]


jvp_rules[call_p] = _call_jvp
partial_eval_rules[call_p] = _call_partial_eval
transpose_rules[call_p] = _call_transpose
_depends_rules[call_p] = lambda eqn, unknown_in: _depends(eqn.params["body"], unknown_in)





# =============================================================================================
# checkpoint: recompute the body's residuals in the backward pass instead of storing them
# =============================================================================================

checkpoint_p = Primitive("checkpoint", multiple_results=True)

abstract_eval_rules[checkpoint_p] = lambda *avals, body: body.out_avals
impl_rules[checkpoint_p] = lambda *args, body: eval_ir(body, args)


def _checkpoint_jvp(primals, tangents, *, body):
    nz = [not is_zero(t) for t in tangents]
    jbody, out_nz = jvp_ir(body, nz, instantiate_outs=_float_mask(body.out_avals))
    tans = [t for t in tangents if not is_zero(t)]
    outs = bind(checkpoint_p, *primals, *tans, body=jbody)
    n = len(body.outs)
    it = iter(outs[n:])
    return outs[:n], [next(it) if k else Zero(tangent_aval(a))
                      for k, a in zip(out_nz, body.out_avals)]


def _checkpoint_partial_eval(eqn: Eqn, in_known):
    """The known part runs the body for its outputs only; the unknown part re-runs the whole
    body from the known inputs (its residuals are just those inputs)."""
    body = eqn.params["body"]
    out_unknown = _depends(body, [not k for k in in_known])
    known_outs = [i for i, u in enumerate(out_unknown) if not u]
    # partial_eval (not just dropping inputs): a nested cond/scan equation may give known
    # outputs while reading unknown inputs; its known half is what runs here.
    known_ir = partial_eval(body, in_known, out_unknown)[0]
    known_body = _reorder(known_ir, None, list(range(len(known_outs))))
    known_eqn = Eqn(checkpoint_p, [a for a, k in zip(eqn.inputs, in_known) if k],
                    [eqn.outs[i] for i in known_outs], {"body": _dce_ir(known_body)},
                    eqn.source)
    unknown_out = [i for i, u in enumerate(out_unknown) if u]
    unknown_body = _reorder(body, None, unknown_out)
    unknown_eqn = Eqn(checkpoint_p, list(eqn.inputs), [eqn.outs[i] for i in unknown_out],
                      {"body": unknown_body}, eqn.source)
    return [known_eqn], [unknown_eqn]


_depends_rules[checkpoint_p] = lambda eqn, unknown_in: _depends(eqn.params["body"], unknown_in)


def _dce_ir(ir: IR) -> IR:
    from ..optimize import dce
    return dce(ir)


def _checkpoint_transpose(cts, *args, body):
    """Recompute the known (primal) part of the body, then transpose its linear part."""
    linear = [is_undefined(a) for a in args]
    known = [not lin for lin in linear]
    out_unknown = [True] * len(body.outs)
    known_ir, linear_ir, n_res = partial_eval(body, known, out_unknown)
    res = eval_ir(known_ir, [a for a in args if not is_undefined(a)])
    n_known_out = len(known_ir.outs) - n_res
    residuals = res[n_known_out:]
    t_ir = transpose_ir(linear_ir, [False] * n_res + [True] * sum(linear))
    ct_in = eval_ir(t_ir, list(residuals) + [instantiate(c) for c in cts])
    it = iter(ct_in)
    return [next(it) if lin else None for lin in linear]


jvp_rules[checkpoint_p] = _checkpoint_jvp
partial_eval_rules[checkpoint_p] = _checkpoint_partial_eval
transpose_rules[checkpoint_p] = _checkpoint_transpose
