"""Control flow users call: cond, switch, while_loop, fori_loop, scan, checkpoint.

Each traces its Python callables into closed IRs (values they close over become explicit
inputs), checks that branches and loop carries agree leaf by leaf, and binds one primitive
(`primitives/control.py`). Branches are traced and checked even when the predicate or index
is concrete (the optimizer then keeps only the chosen branch); loops always build their
primitive, so compiled code has real loops.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from . import dtypes
from .core import Tracer, trace_flat
from .ir import IR, ShapedArray, Var, aval_of
from .primitives import control as cf
from .primitives import structural as st
from .tree_util import tree_flatten, tree_unflatten


def _aval(x) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval.strip_weak()
    return aval_of(x).strip_weak()


def _leaf_avals(leaves, what):
    try:
        return [_aval(x) for x in leaves]
    except TypeError as e:
        raise TypeError(f"{what}: {e}") from None


def _trace_fun(fun: Callable, in_tree, in_avals, name: str):
    """Trace `fun(*unflattened args)`; returns (IR, out_tree, captured tracers)."""
    out_tree_box = []

    def flat(*args):
        out = fun(*tree_unflatten(in_tree, list(args)))
        leaves, tree = tree_flatten(out)
        out_tree_box.append(tree)
        return [_as_array(x) for x in leaves]

    ir, captured = trace_flat(flat, in_avals, name=name)
    return ir, out_tree_box[0], captured


def _as_array(x):
    if isinstance(x, Tracer):
        return x
    return np.asarray(x)


def _close_over(ir: IR, captured: list, all_captured: list) -> IR:
    """`ir` with inputs (all_captured..., own inputs...): captured values are leading inputs."""
    n_own = len(ir.invars) - len(captured)
    own, cap_vars = ir.invars[:n_own], ir.invars[n_own:]
    by_id = {id(t): v for t, v in zip(captured, cap_vars)}
    lead = [by_id.get(id(t)) or Var(t.aval) for t in all_captured]
    return IR(lead + own, ir.constvars, ir.constvals, ir.eqns, ir.outs, ir.name)


def _merge_captured(*lists) -> list:
    seen, out = set(), []
    for lst in lists:
        for t in lst:
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
    return out


def _check_same(what: str, first_name: str, first_tree, first_avals, other_name: str,
                other_tree, other_avals) -> None:
    if first_tree != other_tree:
        raise TypeError(f"{what}: {first_name} returns the structure {first_tree} but "
                        f"{other_name} returns {other_tree}")
    for k, (a, b, path) in enumerate(zip(first_avals, other_avals, _leaf_paths(first_tree))):
        if a.shape != b.shape or a.dtype != b.dtype:
            at = f" (at {path})" if path else ""
            raise TypeError(f"{what}: leaf {k}{at} is {a} in {first_name} but {b} in "
                            f"{other_name}")


def _leaf_paths(tree) -> list[str]:
    """Where each leaf of a PyTreeDef sits, e.g. `[1]['w']` (empty for a bare leaf)."""
    if tree.node_type is None:
        return [""]
    if tree.node_type in (dict, OrderedDict):
        keys = [f"[{k!r}]" for k in tree.aux]
    elif hasattr(tree.node_type, "_fields"):
        keys = [f".{f}" for f in tree.node_type._fields]
    else:
        keys = [f"[{i}]" for i in range(len(tree.children))]
    return [key + rest for key, c in zip(keys, tree.children) for rest in _leaf_paths(c)]


# -- cond / switch ---------------------------------------------------------------------------

def switch(index, branches: Sequence[Callable], *operands):
    """`branches[index](*operands)`, with the index clamped into range (as in JAX)."""
    branches = list(branches)
    if not branches:
        raise ValueError("switch needs at least one branch")
    if not isinstance(index, Tracer):
        # Still one primitive (every branch traced and checked, as JAX does); the optimizer
        # replaces a cond on a constant index by a call of the chosen branch.
        index = np.int32(np.clip(int(np.asarray(index)), 0, len(branches) - 1))
        return _switch_traced(index, branches, operands)
    if index.shape != ():
        raise TypeError(f"switch/cond: the index or predicate must be a scalar, got "
                        f"{index.aval}")
    if dtypes.is_inexact(index.dtype):
        raise TypeError(f"switch: the index must be an integer, got {index.dtype}; cond: the "
                        "predicate must be a bool or integer")
    idx = st.convert(index, np.int32) if index.dtype != np.int32 else index
    if len(branches) > 1:
        from .primitives import elementwise as ew
        idx = ew.max_(ew.min_(idx, np.int32(len(branches) - 1)), np.int32(0))
    return _switch_traced(idx, branches, operands)


def _switch_traced(idx, branches, operands):
    leaves, in_tree = tree_flatten(operands)
    in_avals = _leaf_avals(leaves, "cond operands")
    traced = []
    for k, b in enumerate(branches):
        traced.append(_trace_fun(b, in_tree, in_avals, f"branch{k}"))
    names = [getattr(b, "__name__", f"branch {k}") for k, b in enumerate(branches)]
    for k in range(1, len(traced)):
        _check_same("cond/switch", names[0], traced[0][1], traced[0][0].out_avals, names[k],
                    traced[k][1], traced[k][0].out_avals)
    captured = _merge_captured(*[c for _, _, c in traced])
    irs = [_close_over(ir, c, captured) for ir, _, c in traced]
    outs = cf.cond_bind(idx, list(captured) + list(leaves), irs)
    return tree_unflatten(traced[0][1], outs)


def cond(pred, true_fun: Callable, false_fun: Callable, *operands):
    """`true_fun(*operands) if pred else false_fun(*operands)` on traced predicates."""
    if isinstance(pred, Tracer):
        if pred.shape != ():
            raise TypeError(f"cond: the predicate must be a scalar, got {pred.aval}")
        if not dtypes.is_bool(pred.dtype):
            from .primitives import elementwise as ew
            pred = ew.ne(pred, np.zeros((), pred.dtype)[()])
        return switch(st.convert(pred, np.int32), [false_fun, true_fun], *operands)
    return switch(np.int32(bool(np.asarray(pred))), [false_fun, true_fun], *operands)


# -- scan / fori_loop ------------------------------------------------------------------------

def scan(f: Callable, init, xs=None, length: int | None = None, reverse: bool = False):
    """`f(carry, x) -> (carry, y)` over the leading axis of `xs`; returns
    `(final_carry, stacked_ys)`. One loop in compiled code, differentiable both ways."""
    x_leaves, x_tree = tree_flatten(xs)
    lengths = {int(_aval(x).shape[0]) for x in x_leaves if _aval(x).ndim}
    if any(_aval(x).ndim == 0 for x in x_leaves):
        raise ValueError("scan: every leaf of xs needs a leading axis to scan over")
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise ValueError(f"scan: inconsistent or missing lengths {sorted(lengths)} (pass "
                         "length= when xs is None)")
    (n,) = lengths
    c_leaves, c_tree = tree_flatten(init)
    c_avals = _leaf_avals(c_leaves, "scan carry")
    x_avals = [ShapedArray(a.shape[1:], a.dtype) for a in _leaf_avals(x_leaves, "scan xs")]
    _, in_tree = tree_flatten((init, xs))

    def body(carry, x):
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("scan: f must return a pair (carry, y)")
        return tuple(out)

    ir, out_tree, captured = _trace_fun(body, in_tree, c_avals + x_avals, _name(f))
    carry_tree, y_tree = out_tree.children
    n_carry = carry_tree.num_leaves
    _check_same("scan", "the initial carry", c_tree, c_avals, "the carry f returns",
                carry_tree, ir.out_avals[:n_carry])
    ir = _close_over(ir, captured, captured)
    outs = cf.scan_bind(list(captured), [_cast(c, a) for c, a in zip(c_leaves, c_avals)],
                        list(x_leaves), ir, n, reverse)
    return (tree_unflatten(carry_tree, outs[:n_carry]),
            tree_unflatten(y_tree, outs[n_carry:]))


def _cast(x, aval):
    if isinstance(x, Tracer):
        return x
    return np.asarray(x, dtype=aval.dtype)


def _name(f) -> str:
    name = getattr(f, "__name__", "body")
    return name if name.isidentifier() else "body"


def fori_loop(lower, upper, body_fun: Callable, init_val):
    """`for i in range(lower, upper): val = body_fun(i, val)`. With concrete bounds this is a
    scan (differentiable in reverse mode); with traced bounds a while_loop."""
    if isinstance(lower, Tracer) or isinstance(upper, Tracer):
        def cond_fun(state):
            return state[0] < upper

        def body(state):
            i, v = state
            return i + 1, body_fun(i, v)
        return while_loop(cond_fun, body, (lower, init_val))[1]
    lo, hi = int(lower), int(upper)
    n = max(hi - lo, 0)
    if n == 0:
        return init_val

    def step(carry, i):
        return body_fun(i, carry), None
    final, _ = scan(step, init_val, np.arange(lo, hi, dtype=np.int64), length=n)
    return final


# -- while_loop ------------------------------------------------------------------------------

def while_loop(cond_fun: Callable, body_fun: Callable, init_val, max_iterations=None):
    """`while cond_fun(val): val = body_fun(val)`, for at most `max_iterations` steps when
    given. Forward mode differentiates it; reverse mode needs `max_iterations` (the bound of
    the tape that records each step for the backward pass)."""
    leaves, tree = tree_flatten(init_val)
    avals = _leaf_avals(leaves, "while_loop carry")
    c_ir, c_tree, c_cap = _trace_fun(lambda v: cond_fun(v), tree_flatten((init_val,))[1],
                                     avals, _name(cond_fun))
    if c_ir.out_avals != [ShapedArray((), dtypes.bool_)]:
        if len(c_ir.outs) == 1 and c_ir.out_avals[0].shape == ():
            c_ir = _bool_output(c_ir)
        else:
            raise TypeError(f"while_loop: cond_fun must return a scalar bool, got "
                            f"{c_ir.out_avals}")
    b_ir, b_tree, b_cap = _trace_fun(lambda v: body_fun(v), tree_flatten((init_val,))[1],
                                     avals, _name(body_fun))
    _check_same("while_loop", "the initial value", tree, avals, "the value body_fun returns",
                b_tree, b_ir.out_avals)
    c_ir = _close_over(c_ir, c_cap, c_cap)
    b_ir = _close_over(b_ir, b_cap, b_cap)
    from .core import bind
    if max_iterations is not None:
        max_iterations = int(max_iterations)
        if max_iterations < 0:
            raise ValueError("while_loop: max_iterations must be >= 0")
    outs = bind(cf.while_p, *c_cap, *b_cap, *[_cast(x, a) for x, a in zip(leaves, avals)],
                cond_ir=c_ir, body_ir=b_ir, cond_nconsts=len(c_cap),
                body_nconsts=len(b_cap), max_iterations=max_iterations)
    return tree_unflatten(tree, outs)


def _bool_output(ir: IR) -> IR:
    def fn(*args):
        from .core import eval_ir
        from .primitives import elementwise as ew
        (out,) = eval_ir(ir, args)
        return [ew.ne(out, np.zeros((), ir.out_avals[0].dtype)[()])]
    return trace_flat(fn, ir.in_avals, name=ir.name, stage_all=True)[0]


# -- checkpoint ------------------------------------------------------------------------------

def checkpoint(fun: Callable) -> Callable:
    """`fun`, whose intermediate values are recomputed in the backward pass instead of being
    stored (less memory, more compute)."""
    import functools

    @functools.wraps(fun)
    def wrapper(*args):
        leaves, in_tree = tree_flatten(args)
        avals = _leaf_avals(leaves, "checkpoint arguments")
        ir, out_tree, captured = _trace_fun(lambda *a: fun(*a), in_tree, avals, _name(fun))
        ir = _close_over(ir, captured, captured)
        from .core import bind
        outs = bind(cf.checkpoint_p, *captured, *leaves, body=ir)
        return tree_unflatten(out_tree, outs)
    return wrapper


