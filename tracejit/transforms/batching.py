"""Batching (vmap): the batching table and the IR -> IR pass that applies it.

`batching_rules[prim](args, batched, size, **params) -> (outs, out_batched)`. Every batched
value carries its batch axis first (axis 0, of length `size`); unbatched values are the
per-example values themselves. A rule returns its output(s) and whether each is batched (a
bool, or a list for multiple-result primitives). Equations none of whose inputs are batched
are re-bound unchanged, so rules only see at least one batched input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core import Primitive, Tracer, bind, trace_flat
from ..ir import IR, Literal, ShapedArray, Var, aval_of

batching_rules: dict[Primitive, Callable] = {}


def _aval(x) -> ShapedArray:
    return x.aval if isinstance(x, Tracer) else aval_of(x)


def materialize(x, size: int):
    """An unbatched value broadcast to (size, *shape)."""
    from ..primitives.structural import broadcast_in_dim
    shape = _aval(x).shape
    return broadcast_in_dim(x, (size, *shape), tuple(range(1, len(shape) + 1)))


def move_axis(x, src: int, dst: int):
    from ..primitives.structural import transpose
    nd = _aval(x).ndim
    perm = [d for d in range(nd) if d != src]
    perm.insert(dst, src)
    return transpose(x, perm)


# -- the pass ------------------------------------------------------------------------------

def batch_values(ir: IR, args: Sequence, batched: Sequence[bool], size: int
                 ) -> tuple[list, list[bool]]:
    env: dict[Var, tuple] = {}

    def read(a):
        if isinstance(a, Literal):
            return a.value, False
        return env[a]

    for v, x, b in zip(ir.invars, args, batched):
        env[v] = (x, bool(b))
    for v, c in zip(ir.constvars, ir.constvals):
        env[v] = (c, False)
    for eqn in ir.eqns:
        vals, bs = zip(*[read(a) for a in eqn.inputs]) if eqn.inputs else ((), ())
        if not any(bs):
            outs = bind(eqn.prim, *vals, **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            obs = [False] * len(outs)
        else:
            rule = batching_rules.get(eqn.prim)
            if rule is None:
                raise NotImplementedError(
                    f"no batching rule for primitive `{eqn.prim.name}` (vmap)")
            outs, obs = rule(list(vals), list(bs), size, **eqn.params)
            if not eqn.prim.multiple_results:
                outs, obs = [outs], [obs]
        for v, o, b in zip(eqn.outs, outs, obs):
            env[v] = (o, bool(b))
    res = [read(a) for a in ir.outs]
    return [r for r, _ in res], [b for _, b in res]


def batch_ir(ir: IR, batched: Sequence[bool], size: int, instantiate=False
             ) -> tuple[IR, list[bool]]:
    """IR -> IR whose batched inputs (and outputs) have a leading axis of length `size`.
    `instantiate` (a bool or one per output) forces outputs to be batched."""
    in_avals = [ShapedArray((size, *a.shape), a.dtype, a.weak_type) if b else a
                for a, b in zip(ir.in_avals, batched)]
    out_b: list[bool] = []

    def fn(*args):
        outs, obs = batch_values(ir, args, batched, size)
        force = instantiate if isinstance(instantiate, (list, tuple)) else \
            [bool(instantiate)] * len(outs)
        res = []
        for o, b, f in zip(outs, obs, force):
            if f and not b:
                o, b = materialize(o, size), True
            res.append(o)
            out_b.append(b)
        return res

    new_ir, captured = trace_flat(fn, in_avals, name=f"vmap_{ir.name}", stage_all=True)
    assert not captured, "a closed IR cannot capture outer tracers"
    return new_ir, out_b


def _batched_fixpoint(body: IR, before: list, carry: list, after: list,
                      n_carry_out: int) -> list[bool]:
    carry = list(carry)
    while True:
        _, obs = batch_ir(body, before + carry + after, 1)
        new = [c or o for c, o in zip(carry, obs[:n_carry_out])]
        if new == carry:
            return carry
        carry = new


# -- elementwise and elementwise-like -------------------------------------------------------

def _elementwise_rule(prim):
    def rule(args, batched, size, **params):
        shapes = {(_aval(a).shape[1:] if b else _aval(a).shape) for a, b in zip(args, batched)}
        shapes.discard(())
        s = shapes.pop() if shapes else ()
        full = (size, *s)
        from ..primitives.structural import broadcast_in_dim
        new = []
        for a, b in zip(args, batched):
            shape = _aval(a).shape
            if b:
                if shape != full:
                    a = broadcast_in_dim(a, full, (0,))
            elif shape != ():
                a = broadcast_in_dim(a, full, tuple(range(1, len(full))))
            new.append(a)
        return bind(prim, *new, **params), True
    return rule


def _register_elementwise(prim):
    batching_rules[prim] = _elementwise_rule(prim)


def _unary(prim, shift: tuple = ()):
    """One batched operand: params naming axes in `shift` move by one."""
    def rule(args, batched, size, **params):
        p = dict(params)
        for k in shift:
            v = p[k]
            p[k] = tuple(a + 1 for a in v) if isinstance(v, tuple) else v + 1
        return bind(prim, *args, **p), True
    return rule


def _all_batched(args, batched, size):
    return [a if b else materialize(a, size) for a, b in zip(args, batched)]


def _register_all():
    from ..primitives import control as cf
    from ..primitives import elementwise as ew
    from ..primitives import indexing as ix
    from ..primitives import linalg as la
    from ..primitives import reductions as rd
    from ..primitives import structural as st

    ew.each_row(_register_elementwise)
    batching_rules[st.select_p] = _elementwise_rule(st.select_p)
    batching_rules[ew.integer_pow_p] = _unary(ew.integer_pow_p)
    batching_rules[st.convert_p] = _unary(st.convert_p)
    batching_rules[st.stop_gradient_p] = _unary(st.stop_gradient_p)
    batching_rules[st.rev_p] = _unary(st.rev_p, ("axes",))
    for p in (rd.reduce_sum_p, rd.reduce_max_p, rd.reduce_min_p, rd.reduce_prod_p):
        batching_rules[p] = _unary(p, ("axes",))
    for p in (rd.argmax_p, rd.argmin_p, rd.cumsum_p, rd.cumprod_p):
        batching_rules[p] = _unary(p, ("axis",))
    from ..primitives import sorting as so
    batching_rules[so.argsort_p] = _unary(so.argsort_p, ("axis",))

    def searchsorted_rule(args, batched, size, *, side):
        if batched[0]:
            raise NotImplementedError("vmap of searchsorted over the sorted array")
        return so.searchsorted(args[0], args[1], side), batched[1]
    batching_rules[so.searchsorted_p] = searchsorted_rule

    def cumlinrec_rule(args, batched, size, *, axis, reverse):
        a, b = _all_batched(args, batched, size)
        return rd.cumlinrec(a, b, axis + 1, reverse), True
    batching_rules[rd.cumlinrec_p] = cumlinrec_rule

    def bcast_rule(args, batched, size, *, shape, broadcast_dimensions):
        return st.broadcast_in_dim(args[0], (size, *shape),
                                   (0,) + tuple(d + 1 for d in broadcast_dimensions)), True
    batching_rules[st.broadcast_in_dim_p] = bcast_rule
    batching_rules[st.reshape_p] = lambda args, batched, size, *, new_shape: (
        st.reshape(args[0], (size, *new_shape)), True)
    batching_rules[st.transpose_p] = lambda args, batched, size, *, permutation: (
        st.transpose(args[0], (0,) + tuple(p + 1 for p in permutation)), True)
    batching_rules[st.slice_p] = lambda args, batched, size, *, start, limit, strides: (
        st.slice_(args[0], (0, *start), (size, *limit), (1, *strides)), True)

    def pad_rule(args, batched, size, *, low, high, interior):
        x, v = args
        xb, vb = batched
        if not xb:
            x = materialize(x, size)
        if not vb:
            return st.pad(x, v, (0, *low), (0, *high), (0, *interior)), True
        dtype = _aval(x).dtype
        padded = st.pad(x, np.zeros((), dtype)[()], (0, *low), (0, *high), (0, *interior))
        inner = _aval(x).shape[1:]
        ones = st.broadcast_in_dim(np.True_, inner, ())
        mask = st.pad(ones, np.False_, low, high, interior)
        full = _aval(padded).shape
        mask = st.broadcast_in_dim(mask, full, tuple(range(1, len(full))))
        vfull = st.broadcast_in_dim(v, full, (0,))
        return st.select(mask, padded, vfull), True
    batching_rules[st.pad_p] = pad_rule

    def concat_rule(args, batched, size, *, axis):
        return st.concatenate(_all_batched(args, batched, size), axis + 1), True
    batching_rules[st.concatenate_p] = concat_rule

    def _lane_indices(idx, size):
        """Indices (size, *ib, k) prefixed by the lane number: (size, *ib, k + 1)."""
        ia = _aval(idx)
        shape = ia.shape[:-1] + (1,)
        lane = st.iota(ia.dtype, shape, 0)
        return st.concatenate([lane, idx], len(shape) - 1)

    def gather_rule(args, batched, size):
        x, idx = args
        xb, ib = batched
        if not xb:
            return ix.gather(x, idx), True
        if not ib:
            idx = materialize(idx, size)
        return ix.gather(x, _lane_indices(idx, size)), True
    batching_rules[ix.gather_p] = gather_rule

    def scatter_rule(args, batched, size):
        operand, idx, updates = _all_batched(args, batched, size)
        return ix.scatter_add(operand, _lane_indices(idx, size), updates), True
    batching_rules[ix.scatter_add_p] = scatter_rule

    def dot_rule(args, batched, size, *, dimension_numbers):
        lhs, rhs = args
        lb_, rb_ = batched
        (lc, rc), (lb, rb) = dimension_numbers
        up = lambda ds: tuple(d + 1 for d in ds)  # noqa: E731
        small = _small_product(lhs, rhs, lb_, rb_, dimension_numbers)
        if small is not None:
            return small, True
        if lb_ and rb_:
            out = la.dot_general(lhs, rhs, (up(lc), up(rc)), ((0, *up(lb)), (0, *up(rb))))
            return out, True
        if lb_:
            # lhs free dims follow the batch dims: the lane axis is the first free one.
            out = la.dot_general(lhs, rhs, (up(lc), rc), (up(lb), rb))
            return move_axis(out, len(lb), 0), True
        out = la.dot_general(lhs, rhs, (lc, up(rc)), (lb, up(rb)))
        n_lfree = _aval(lhs).ndim - len(lc) - len(lb)
        return move_axis(out, len(lb) + n_lfree, 0), True
    batching_rules[la.dot_general_p] = dot_rule

    # -- control flow ------------------------------------------------------------------
    def cond_rule(args, batched, size, *, branches):
        index, ops = args[0], args[1:]
        ib, obs = batched[0], list(batched[1:])
        if not ib:
            out_b = [False] * len(branches[0].outs)
            for br in branches:
                _, bb = batch_ir(br, obs, size)
                out_b = [a or b for a, b in zip(out_b, bb)]
            new = tuple(batch_ir(br, obs, size, out_b)[0] for br in branches)
            return cf.cond_bind(index, ops, new), out_b
        # A batched index runs every branch and selects each lane's result.
        n = len(branches)
        results = [batch_ir(br, obs, size, True)[0] for br in branches]
        outs_per = [_eval(r, ops) for r in results]
        index = ew.max_(ew.min_(index, np.asarray(n - 1, _aval(index).dtype)[()]),
                        np.asarray(0, _aval(index).dtype)[()])
        outs = list(outs_per[-1])
        for i in range(n - 2, -1, -1):
            pred = ew.eq(index, np.asarray(i, _aval(index).dtype)[()])
            new = []
            for o_i, acc in zip(outs_per[i], outs):
                shape = _aval(acc).shape
                p = st.broadcast_in_dim(pred, shape, (0,)) if len(shape) > 1 else pred
                new.append(st.select(p, o_i, acc))
            outs = new
        return outs, [True] * len(outs)
    batching_rules[cf.cond_p] = cond_rule

    def scan_rule(args, batched, size, *, body, num_consts, num_carry, length, reverse):
        nc, nk = num_consts, num_carry
        cb, kb, xb = (list(batched[:nc]), list(batched[nc:nc + nk]),
                      list(batched[nc + nk:]))
        kb = _batched_fixpoint(body, cb, kb, xb, nk)
        n_y = len(body.outs) - nk
        new_body, obs = batch_ir(body, cb + kb + xb, size, kb + [False] * n_y)
        consts = list(args[:nc])
        carry = [c if b else (materialize(c, size) if k else c)
                 for c, b, k in zip(args[nc:nc + nk], batched[nc:nc + nk], kb)]
        xs = [move_axis(x, 0, 1) if b else x for x, b in zip(args[nc + nk:], xb)]
        outs = cf.scan_bind(consts, carry, xs, new_body, length, reverse)
        ys = [move_axis(y, 1, 0) if b else y for y, b in zip(outs[nk:], obs[nk:])]
        return list(outs[:nk]) + ys, list(obs)
    batching_rules[cf.scan_p] = scan_rule

    def while_rule(args, batched, size, *, cond_ir, body_ir, cond_nconsts, body_nconsts,
                   max_iterations=None):
        ncc, nbc = cond_nconsts, body_nconsts
        ccb, bcb = list(batched[:ncc]), list(batched[ncc:ncc + nbc])
        kb = list(batched[ncc + nbc:])
        kb = _batched_fixpoint(body_ir, bcb, kb, [], len(kb))
        _, (pb,) = batch_ir(cond_ir, ccb + kb, size)
        if pb:
            kb = [True] * len(kb)
        cc, bc = list(args[:ncc]), list(args[ncc:ncc + nbc])
        carry = [c if b else (materialize(c, size) if k else c)
                 for c, b, k in zip(args[ncc + nbc:], batched[ncc + nbc:], kb)]
        bcond, _ = batch_ir(cond_ir, ccb + kb, size)
        bbody, _ = batch_ir(body_ir, bcb + kb, size, kb)
        if not pb:
            outs = bind(cf.while_p, *cc, *bc, *carry, cond_ir=bcond, body_ir=bbody,
                        cond_nconsts=ncc, body_nconsts=nbc, max_iterations=max_iterations)
            return outs, kb
        # A batched predicate: run while any lane runs; finished lanes keep their carry.
        carry_avals = [_aval(c) for c in carry]
        cc_avals = [_aval(c) for c in cc]
        bc_avals = [_aval(c) for c in bc]

        def any_cond(*a):
            (p,) = _eval(bcond, a)
            return [rd.reduce_max(p, (0,))]

        def frozen_body(*a):
            ccv, bcv, k = a[:ncc], a[ncc:ncc + nbc], a[ncc + nbc:]
            (p,) = _eval(bcond, list(ccv) + list(k))
            new = _eval(bbody, list(bcv) + list(k))
            res = []
            for n_, o in zip(new, k):
                shape = _aval(o).shape
                pp = st.broadcast_in_dim(p, shape, (0,)) if len(shape) > 1 else p
                res.append(st.select(pp, n_, o))
            return res

        acond, _ = trace_flat(any_cond, cc_avals + carry_avals, name="vmap_any",
                              stage_all=True)
        fbody, _ = trace_flat(frozen_body, cc_avals + bc_avals + carry_avals,
                              name="vmap_lanes", stage_all=True)
        outs = bind(cf.while_p, *cc, *cc, *bc, *carry, cond_ir=acond, body_ir=fbody,
                    cond_nconsts=ncc, body_nconsts=ncc + nbc, max_iterations=max_iterations)
        return outs, [True] * len(outs)
    batching_rules[cf.while_p] = while_rule

    _register_sorting()

    def body_rule(prim):
        def rule(args, batched, size, *, body):
            new_body, obs = batch_ir(body, batched, size)
            return bind(prim, *args, body=new_body), obs
        return rule
    batching_rules[cf.call_p] = body_rule(cf.call_p)
    batching_rules[cf.checkpoint_p] = body_rule(cf.checkpoint_p)


SMALL_PRODUCT = 256


def _small_product(lhs, rhs, lhs_b, rhs_b, dimension_numbers):
    """A per-example product of at most SMALL_PRODUCT multiply-adds (a row of X times w) as
    a multiply and a row reduction, so the planner fuses it into one loop over the lanes
    with what reads its result (X is read once) instead of a BLAS call and a second pass."""
    from ..primitives import elementwise as ew
    from ..primitives import reductions as rd
    from ..primitives import structural as st
    (lc, rc), (lb, rb) = dimension_numbers
    la_, ra_ = _aval(lhs), _aval(rhs)
    if la_.dtype.kind != "f" or not lc:
        return None
    ls = la_.shape[1:] if lhs_b else la_.shape
    rs = ra_.shape[1:] if rhs_b else ra_.shape
    lf = [d for d in range(len(ls)) if d not in lc and d not in lb]
    rf = [d for d in range(len(rs)) if d not in rc and d not in rb]
    out = [ls[d] for d in lb] + [ls[d] for d in lf] + [rs[d] for d in rf]
    contract = [ls[d] for d in lc]
    if int(np.prod(out + contract, dtype=np.int64)) > SMALL_PRODUCT:
        return None
    size = la_.shape[0] if lhs_b else ra_.shape[0]
    nb, nl, nr, ncon = len(lb), len(lf), len(rf), len(lc)
    full = (size, *out, *contract)
    batch_pos = list(range(1, 1 + nb))
    lf_pos = list(range(1 + nb, 1 + nb + nl))
    rf_pos = list(range(1 + nb + nl, 1 + nb + nl + nr))
    c_pos = list(range(1 + nb + nl + nr, 1 + nb + nl + nr + ncon))

    def place(x, batched, b, f, c, f_pos):
        order = list(b) + list(f) + list(c)
        pos = batch_pos + f_pos + c_pos
        if batched:
            x = st.transpose(x, [0] + [d + 1 for d in order])
            return st.broadcast_in_dim(x, full, [0] + pos)
        x = st.transpose(x, order)
        return st.broadcast_in_dim(x, full, pos)
    left = place(lhs, lhs_b, lb, lf, lc, lf_pos)
    right = place(rhs, rhs_b, rb, rf, rc, rf_pos)
    return rd.reduce_sum(ew.mul(left, right), tuple(c_pos))


def _register_sorting():
    try:  # primitives/sorting.py is newer than this module
        from ..primitives import sorting as so
    except ImportError:
        return
    from ..primitives import elementwise as ew
    from ..primitives import reductions as rd
    from ..primitives import structural as st
    batching_rules[so.argsort_p] = _unary(so.argsort_p, ("axis",))

    def searchsorted_rule(args, batched, size, *, side):
        a, v = args
        if not batched[0]:
            return so.searchsorted(a, v, side), True
        # Each lane has its own sorted array: count its elements below v (left) or at most
        # v (right).
        if not batched[1]:
            v = materialize(v, size)
        vs, n = _aval(v).shape, _aval(a).shape[1]
        full = (*vs, n)
        ab = st.broadcast_in_dim(a, full, (0, len(vs)))
        vb = st.broadcast_in_dim(v, full, tuple(range(len(vs))))
        below = (ew.lt if side == "left" else ew.le)(ab, vb)
        return rd.reduce_sum(st.convert(below, np.int64), (len(vs),)), True
    batching_rules[so.searchsorted_p] = searchsorted_rule


def _eval(ir, args):
    from ..core import eval_ir
    return eval_ir(ir, list(args))


# Primitives with no batching rule, and why (tests/test_vmap.py checks this list).
EXEMPT = {
    "iota": "takes no operands, so it is never batched",
    "while_record": "reverse mode of an unbounded while_loop records a tape whose length is "
                    "the loop's step count; lanes would need tapes of different lengths",
    "replay": "reads while_record's tapes (see while_record)",
    "custom_lin": "the tangent of a custom_vjp function exists only to be transposed (into "
                  "its bwd rule); forward mode through custom_vjp is an error",
}


_register_all()


# -- the user API ----------------------------------------------------------------------------

def _is_axis(a) -> bool:
    return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))


def _prefix_leaves(axes, value, what: str) -> list:
    """One axis per leaf of `value`, from `axes`, a pytree prefix of it (JAX's rule)."""
    from ..tree_util import _node_type, _registry, tree_flatten
    if _is_axis(axes):
        return [axes] * len(tree_flatten(value)[0])
    t, tv = _node_type(axes), _node_type(value)
    if t is None or t is not tv:
        raise ValueError(f"vmap: {what} {axes!r} does not match the structure of the "
                         f"argument {type(value).__name__} (a tree prefix of it is expected)")
    if t in _registry:
        ca, aux_a = _registry[t].to_iterable(axes)
        cv, aux_v = _registry[t].to_iterable(value)
    else:
        ca, aux_a, cv, aux_v = list(axes), None, list(value), None
    if aux_a != aux_v or len(ca) != len(cv):
        raise ValueError(f"vmap: {what} {axes!r} does not match the structure of the "
                         f"argument (keys or lengths differ)")
    out = []
    for a, v in zip(ca, cv):
        out += _prefix_leaves(a, v, what)
    return out


def vmap(fun: Callable, in_axes=0, out_axes=0, axis_size: int | None = None) -> Callable:
    """Vectorize `fun` over a batch axis: `vmap(f)(xs)[i] == f(xs[i])`.

    `in_axes`: an int (negative allowed), None (not batched), or a pytree prefix of the
    arguments (a tuple with one entry per positional argument); keyword arguments are
    batched along axis 0. `out_axes`: the same for the outputs. `axis_size` is required
    when no argument is batched.
    """
    import functools

    from .. import api
    from ..tree_util import tree_flatten, tree_unflatten

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        if isinstance(in_axes, (tuple, list)):
            if len(in_axes) != len(args):
                raise ValueError(f"vmap: in_axes has {len(in_axes)} entries for "
                                 f"{len(args)} positional arguments")
            per_arg = [_prefix_leaves(a, x, "in_axes") for a, x in zip(in_axes, args)]
        elif _is_axis(in_axes):
            per_arg = [_prefix_leaves(in_axes, x, "in_axes") for x in args]
        else:
            raise ValueError(f"vmap: in_axes must be an int, None or a tuple, got "
                             f"{in_axes!r}")
        # Python ints and bools that are not batched stay concrete (loop counts, flags).
        static = tuple(i for i, (x, ax) in enumerate(zip(args, per_arg))
                       if api._is_count(x) and ax == [None])
        axes, sizes = [], []
        new_args = list(args)
        for i, (x, ax_leaves) in enumerate(zip(args, per_arg)):
            if i in static:
                continue
            leaves, tree = tree_flatten(x)
            ex = []
            for k, (leaf, ax) in enumerate(zip(leaves, ax_leaves)):
                if ax is None:
                    axes.append(None)
                    ex.append(leaf)
                    continue
                aval = api._leaf_aval(leaf, f"argument {i}")
                nd = aval.ndim
                if not -nd <= ax < nd:
                    raise ValueError(f"vmap: in_axes {ax} out of range for argument {i} "
                                     f"(leaf {k}) of shape {aval.shape}")
                ax = int(ax) % nd
                axes.append(ax)
                sizes.append((aval.shape[ax], f"argument {i} (leaf {k}) axis {ax}"))
                ex.append(np.zeros(aval.shape[:ax] + aval.shape[ax + 1:], aval.dtype))
            new_args[i] = tree_unflatten(tree, ex)
        kw_leaves, kw_tree = tree_flatten(kwargs)
        kw_ex = []
        for k, leaf in enumerate(kw_leaves):
            aval = api._leaf_aval(leaf, "keyword argument")
            if aval.ndim == 0:
                raise ValueError("vmap: keyword arguments are batched along axis 0, but "
                                 f"keyword leaf {k} is 0-d")
            axes.append(0)
            sizes.append((aval.shape[0], f"keyword leaf {k} axis 0"))
            kw_ex.append(np.zeros(aval.shape[1:], aval.dtype))
        distinct = {s for s, _ in sizes}
        if len(distinct) > 1:
            raise ValueError("vmap got inconsistent batch sizes: "
                             + ", ".join(f"{w} has size {s}" for s, w in sizes))
        if distinct:
            size = distinct.pop()
            if axis_size is not None and axis_size != size:
                raise ValueError(f"vmap: axis_size={axis_size} but the batched arguments "
                                 f"have size {size}")
        elif axis_size is None:
            raise ValueError("vmap: no argument is batched (in_axes are all None): pass "
                             "axis_size=")
        else:
            size = int(axis_size)
        traced, leaves = api.trace(fun, new_args, tree_unflatten(kw_tree, kw_ex), static)
        ir = traced.ir
        # Actual values for the IR's inputs: the batched leaves with their axis first.
        actual = []
        for i, x in enumerate(args):
            if i not in static:
                actual += tree_flatten(x)[0]
        actual += kw_leaves
        batched = [ax is not None for ax in axes] + [False] * len(traced.captured)
        out_tree = traced.out_tree
        out_leaves_ex = tree_unflatten(out_tree, [0] * out_tree.num_leaves)
        if isinstance(out_axes, (tuple, list)) and out_tree.node_type not in (tuple, list):
            raise ValueError(f"vmap: out_axes {out_axes!r} does not match the output "
                             "structure")
        oaxes = _prefix_leaves(out_axes, out_leaves_ex, "out_axes") if not _is_axis(
            out_axes) else [out_axes] * out_tree.num_leaves
        force = [a is not None for a in oaxes]
        key = ("vmap", id(ir), tuple(batched), size, tuple(force))
        bir, out_b = api._cached(fun, key, lambda: batch_ir(ir, batched, size, force),
                                 uncached=bool(traced.captured))
        moved = [move_axis(x, ax, 0) if ax not in (None, 0) else x
                 for x, ax in zip(actual, axes)]
        outs = api._run(bir, moved + list(traced.captured))
        final = []
        for k, (o, b, ax) in enumerate(zip(outs, out_b, oaxes)):
            if ax is None:
                if b:
                    raise ValueError(f"vmap: out_axes is None for output leaf {k}, but it "
                                     "depends on a batched argument")
                final.append(o)
                continue
            nd = _aval(o).ndim
            if not -nd <= ax < nd:
                raise ValueError(f"vmap: out_axes {ax} out of range for output leaf {k} "
                                 f"of batched shape {_aval(o).shape}")
            ax = int(ax) % nd
            final.append(api._as_output(move_axis(o, 0, ax)) if ax else o)
        return tree_unflatten(out_tree, final)
    return wrapper
