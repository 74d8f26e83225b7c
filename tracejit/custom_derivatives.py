"""User-defined derivative rules: `custom_jvp` and `custom_vjp`, with JAX's decorator API.

A call of a decorated function traces the function into a closed IR (values it closes over
become leading inputs) and binds one primitive holding that IR and the user's rules, which
are called when a transform needs them (a rule usually calls its own function, so tracing it
at the call would recurse):

- `custom_jvp_call` (body, jvp): evaluated, batched and compiled as its body; its JVP rule
  calls the user's rule instead of differentiating the body. Reverse mode needs nothing
  more: the rule's tangent is linear in the input tangents, so linearize and transpose
  handle it as any other linear code.
- `custom_vjp_call` (body, fwd/bwd rules): its JVP rule runs `fwd` for the output and the
  residuals and expresses the output tangent as `custom_lin` of the residuals and the input
  tangents, a linear primitive whose transpose rule is the user's `bwd`. `custom_lin` cannot
  run forwards, so forward mode through a custom_vjp function is an error, as in JAX.

Closed-over values being differentiated (an outer traced value the function reads) get the
body's own derivative added to the rule's: the rule covers the arguments, the closure is
differentiated as written. A rule may read closed-over traced values too: when it runs,
they stand for their values in the trace being built (`core.rebinding`). Arguments listed in
`nondiff_argnums` are Python values fixed for the call; they are passed to the rules first,
as in JAX.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from . import control as _ctl
from .core import Primitive, abstract_eval_rules, bind, eval_ir, impl_rules, rebinding
from .ir import IR, Eqn
from .transforms.batching import batch_ir, batching_rules, materialize
from .transforms.jvp import Zero, has_tangent, instantiate, is_zero, jvp_ir, jvp_rules, tangent_aval
from .transforms.transpose import is_undefined, transpose_rules
from .tree_util import tree_flatten, tree_unflatten

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_lin_p = Primitive("custom_lin", multiple_results=True)

CUSTOM_CALLS = (custom_jvp_call_p, custom_vjp_call_p)


# -- the user API ------------------------------------------------------------------------------

def _split_nondiff(args: tuple, nondiff_argnums: tuple, name: str):
    n = len(args)
    nums = sorted({k % n if -n <= k < n else _bad_argnum(k, n, name) for k in nondiff_argnums})
    nondiff = [args[k] for k in nums]
    diff = [a for k, a in enumerate(args) if k not in nums]
    return nums, nondiff, diff


def _bad_argnum(k, n, name):
    raise ValueError(f"{name}: nondiff_argnums entry {k} is out of range for {n} arguments")


def _rebuild(nums: list, nondiff: list, diff: Sequence) -> list:
    """The full argument list from the fixed and the differentiable arguments."""
    out, it_d, it_n = [], iter(diff), iter(nondiff)
    for k in range(len(nums) + len(diff)):
        out.append(next(it_n) if k in nums else next(it_d))
    return out


def _leaves_and_avals(diff: list, name: str):
    leaves, in_tree = tree_flatten(tuple(diff))
    avals = _ctl._leaf_avals(leaves, f"{name} argument")
    return leaves, in_tree, avals


def _check_like(what: str, got_tree, got_leaves, want_tree, want_avals):
    """`got_leaves` shaped like `want_avals` and of their dtypes (a clear error otherwise)."""
    if got_tree != want_tree:
        raise TypeError(f"{what} has the structure {got_tree}, expected {want_tree}")
    out = []
    for k, (x, want) in enumerate(zip(got_leaves, want_avals)):
        aval = _ctl._aval(x)
        if aval.shape != want.shape:
            raise TypeError(f"{what}: leaf {k} has shape {aval.shape}, expected {want.shape}")
        if aval.dtype != want.dtype:
            from .primitives.structural import convert
            x = convert(x, want.dtype)
        out.append(x)
    return out


class JvpRule:
    """The user's JVP rule of one call, over flat values: `(*consts, *primals, *tangents)
    -> outs + tangent outs`. Called when a transform asks for it, not before: a rule
    usually calls the function it belongs to, so tracing it at the call would recurse."""

    def __init__(self, flat: Callable, name: str):
        self.flat, self.name = flat, name

    def __call__(self, *xs):
        return self.flat(*xs)

    def batched(self) -> JvpRule:
        return JvpRule(_vmapped(self.flat), f"vmap({self.name})")

    def __repr__(self) -> str:
        return self.name


class VjpRules:
    """The user's fwd and bwd rules of one call, over flat values: `fwd(*consts, *args) ->
    outs + residuals`, `bwd(*consts, *residuals, *cotangents) -> one cotangent per argument
    leaf`."""

    def __init__(self, fwd: Callable, bwd: Callable, name: str):
        self.fwd, self.bwd, self.name = fwd, bwd, name

    def batched(self) -> VjpRules:
        return VjpRules(_vmapped(self.fwd), _vmapped(self.bwd), f"vmap({self.name})")

    def __repr__(self) -> str:
        return self.name


def _vmapped(flat: Callable) -> Callable:
    """`flat` over lanes: every input and output with its batch axis first."""
    from .transforms.batching import vmap
    return lambda *xs: list(vmap(lambda *a: tuple(flat(*a)))(*xs))


class custom_jvp:
    """A function with a user-defined JVP rule: `f = custom_jvp(fun)` then `f.defjvp(rule)`,
    `rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)`.

    The tangent out must be linear in the tangents (reverse mode transposes it)."""

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp: Callable | None = None

    def defjvp(self, jvp: Callable) -> Callable:
        self.jvp = jvp
        return jvp

    def defjvps(self, *rules: Callable | None) -> None:
        """One rule per differentiable argument, `rule(tangent, primal_out, *primals)`, each
        giving that argument's contribution to the output tangent (None: no contribution)."""
        def jvp(*args):
            nondiff, primals, tangents = args[:-2], args[-2], args[-1]
            n = len(primals) + len(nondiff)
            nums = sorted(k % n for k in self.nondiff_argnums)
            out = self.fun(*_rebuild(nums, list(nondiff), list(primals)))
            total = None
            for rule, t in zip(rules, tangents):
                if rule is not None:
                    c = rule(t, out, *primals)
                    total = c if total is None else _tree_add(total, c)
            return out, _tree_zeros_like(out) if total is None else total
        self.jvp = jvp

    def __call__(self, *args):
        name = getattr(self.fun, "__name__", "custom_jvp function")
        if self.jvp is None:
            raise TypeError(f"custom_jvp function {name} has no JVP rule: define one with "
                            f"@{name}.defjvp")
        nums, nondiff, diff = _split_nondiff(args, self.nondiff_argnums, name)
        body_ir, cap, leaves, in_tree, out_tree = _trace_body(self.fun, nums, nondiff, diff,
                                                              name)
        out_avals = body_ir.out_avals
        nc, n = len(cap), len(leaves)
        user_jvp = self.jvp

        def flat(*xs):
            primals = tree_unflatten(in_tree, list(xs[nc:nc + n]))
            tangents = tree_unflatten(in_tree, list(xs[nc + n:]))
            with rebinding(cap, xs[:nc]):
                res = user_jvp(*nondiff, tuple(primals), tuple(tangents))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"the JVP rule of {name} must return (primal_out, "
                                f"tangent_out), got {_describe(res)}")
            p_leaves, p_tree = tree_flatten(res[0])
            t_leaves, t_tree = tree_flatten(res[1])
            p = _check_like(f"the primal output of {name}'s JVP rule", p_tree, p_leaves,
                            out_tree, out_avals)
            t = _check_like(f"the tangent output of {name}'s JVP rule", t_tree, t_leaves,
                            out_tree, [tangent_aval(a) for a in out_avals])
            return [_ctl._as_array(x) for x in p + t]
        outs = bind(custom_jvp_call_p, *cap, *leaves, body=body_ir,
                    jvp=JvpRule(flat, f"{name}_jvp"), num_consts=nc)
        return tree_unflatten(out_tree, list(outs))


class custom_vjp:
    """A function with a user-defined VJP: `f = custom_vjp(fun)` then `f.defvjp(fwd, bwd)`,
    `fwd(*args) -> (out, residuals)` and `bwd(*nondiff_args, residuals, cotangent) -> one
    cotangent per differentiable argument` (None for a zero one)."""

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        name = getattr(self.fun, "__name__", "custom_vjp function")
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {name} has no rules: define them with "
                            f"{name}.defvjp(fwd, bwd)")
        nums, nondiff, diff = _split_nondiff(args, self.nondiff_argnums, name)
        body_ir, cap, leaves, in_tree, out_tree = _trace_body(self.fun, nums, nondiff, diff,
                                                              name)
        out_avals = body_ir.out_avals
        nc, n_out = len(cap), len(out_avals)
        user_fwd, user_bwd = self.fwd, self.bwd
        res_trees: list = []  # the residuals' structure, from the fwd that ran last
        arg_trees, arg_avals = [], []
        for arg in diff:
            a_leaves, a_tree = tree_flatten(arg)
            arg_trees.append(a_tree)
            arg_avals.append([tangent_aval(a) for a in _ctl._leaf_avals(a_leaves, name)])

        def fwd(*xs):
            with rebinding(cap, xs[:nc]):
                res = user_fwd(*_rebuild(nums, nondiff,
                                         tree_unflatten(in_tree, list(xs[nc:]))))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"the fwd rule of {name} must return (output, residuals), "
                                f"got {_describe(res)}")
            o_leaves, o_tree = tree_flatten(res[0])
            o = _check_like(f"the output of {name}'s fwd rule", o_tree, o_leaves, out_tree,
                            out_avals)
            r_leaves, r_tree = tree_flatten(res[1])
            res_trees[:] = [r_tree]
            return [_ctl._as_array(x) for x in o + r_leaves]

        def bwd(*xs):
            n_res = len(xs) - nc - n_out
            res = tree_unflatten(res_trees[0], list(xs[nc:nc + n_res]))
            ct = tree_unflatten(out_tree, list(xs[nc + n_res:]))
            with rebinding(cap, xs[:nc]):
                got = user_bwd(*nondiff, res, ct)
            if not isinstance(got, (tuple, list)) or len(got) != len(diff):
                raise TypeError(f"the bwd rule of {name} must return a tuple of "
                                f"{len(diff)} cotangent(s), one per differentiable "
                                f"argument, got {_describe(got)}")
            flat = []
            for k, (g, a_avals, a_tree) in enumerate(zip(got, arg_avals, arg_trees)):
                if g is None:
                    flat += [np.zeros(a.shape, a.dtype) for a in a_avals]
                    continue
                g_leaves, g_tree = tree_flatten(g)
                flat += _check_like(f"the cotangent {name}'s bwd rule returns for argument "
                                    f"{k}", g_tree, g_leaves, a_tree, a_avals)
            return [_ctl._as_array(x) for x in flat]
        outs = bind(custom_vjp_call_p, *cap, *leaves, body=body_ir,
                    rules=VjpRules(fwd, bwd, name), num_consts=nc)
        return tree_unflatten(out_tree, list(outs))


def _trace_body(fun, nums, nondiff, diff, name):
    """The function's IR over its differentiable leaves, closed over what it captured
    (leading inputs), with those captured values, the leaves and both trees."""
    leaves, in_tree = tree_flatten(tuple(diff))
    avals = _ctl._leaf_avals(leaves, f"{name} argument")

    def body(*d):
        return fun(*_rebuild(nums, nondiff, d))
    ir, out_tree, cap = _ctl._trace_fun(body, in_tree, avals, name)
    return _ctl._close_over(ir, cap, cap), cap, leaves, in_tree, out_tree


def _describe(x) -> str:
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    return type(x).__name__


def _tree_add(a, b):
    from .tree_util import tree_map
    return tree_map(lambda x, y: x + y, a, b)


def _tree_zeros_like(t):
    from . import numpy as tnp
    from .tree_util import tree_map
    return tree_map(tnp.zeros_like, t)


# -- the primitives ----------------------------------------------------------------------------

def _body_abstract(*avals, body, **_):
    return body.out_avals


def _body_impl(*args, body, **_):
    return eval_ir(body, list(args))


for _p in CUSTOM_CALLS:
    abstract_eval_rules[_p] = _body_abstract
    impl_rules[_p] = _body_impl


def _closure_tangents(body: IR, primals, tangents, num_consts: int, touts: list) -> list:
    """`touts` plus the derivative of `body` along the tangents of the values it closes
    over (its leading `num_consts` inputs), when any is nonzero."""
    nz = [not is_zero(t) for t in tangents[:num_consts]]
    if not any(nz):
        return touts
    mask = nz + [False] * (len(primals) - num_consts)
    jbody, out_nz = jvp_ir(body, mask, instantiate_outs=False)
    outs = eval_ir(jbody, list(primals) + [t for t in tangents[:num_consts] if not is_zero(t)])
    extra = iter(outs[len(body.outs):])
    total = []
    for t, k in zip(touts, out_nz):
        if not k:
            total.append(t)
            continue
        e = next(extra)
        total.append(e if is_zero(t) else _add(t, e))
    return total


def _add(a, b):
    from .primitives.elementwise import add
    return add(a, b)


def _custom_jvp_jvp(primals, tangents, *, body, jvp, num_consts):
    nc, n_out = num_consts, len(body.outs)
    if all(is_zero(t) for t in tangents[nc:]):
        outs = eval_ir(body, list(primals))
        touts = [Zero(tangent_aval(a)) for a in body.out_avals]
    else:
        res = jvp(*primals, *[instantiate(t) for t in tangents[nc:]])
        outs = res[:n_out]
        touts = [t if has_tangent(a) else Zero(tangent_aval(a))
                 for t, a in zip(res[n_out:], body.out_avals)]
    return outs, _closure_tangents(body, primals, tangents, nc, touts)


def _custom_vjp_jvp(primals, tangents, *, body, rules, num_consts):
    nc, n_out = num_consts, len(body.outs)
    if all(is_zero(t) for t in tangents[nc:]):
        outs = eval_ir(body, list(primals))
        touts = [Zero(tangent_aval(a)) for a in body.out_avals]
    else:
        res = rules.fwd(*primals)
        outs, residuals = res[:n_out], res[n_out:]
        lin = bind(custom_lin_p, *primals[:nc], *residuals,
                   *[instantiate(t) for t in tangents[nc:]], rules=rules,
                   num_res=nc + len(residuals),
                   out_avals=tuple(tangent_aval(a) for a in body.out_avals))
        touts = [t if has_tangent(a) else Zero(tangent_aval(a))
                 for t, a in zip(lin, body.out_avals)]
    return outs, _closure_tangents(body, primals, tangents, nc, touts)


jvp_rules[custom_jvp_call_p] = _custom_jvp_jvp
jvp_rules[custom_vjp_call_p] = _custom_vjp_jvp


def _lin_abstract(*avals, rules, num_res, out_avals):
    return list(out_avals)


def _lin_impl(*args, rules, num_res, out_avals):
    raise TypeError(f"forward-mode differentiation (jvp, jacfwd, linearize) of a custom_vjp "
                    f"function ({rules.name}) is not possible: it has a reverse-mode rule "
                    "only. Use grad, vjp or jacrev, or give it a custom_jvp rule instead")


def _lin_transpose(cts, *args, rules, num_res, out_avals):
    in_cts = rules.bwd(*args[:num_res], *[instantiate(c) for c in cts])
    lin = args[num_res:]
    return [None] * num_res + [c if is_undefined(a) else None for c, a in zip(in_cts, lin)]


abstract_eval_rules[custom_lin_p] = _lin_abstract
impl_rules[custom_lin_p] = _lin_impl
transpose_rules[custom_lin_p] = _lin_transpose


def _no_forward_of_lin(primals, tangents, **params):
    _lin_impl(**params)


jvp_rules[custom_lin_p] = _no_forward_of_lin


def _has_custom(ir: IR) -> bool:
    for e in ir.eqns:
        if e.prim in CUSTOM_CALLS:
            return True
        for v in e.params.values():
            if isinstance(v, IR) and _has_custom(v):
                return True
            if isinstance(v, (tuple, list)) and any(isinstance(b, IR) and _has_custom(b)
                                                    for b in v):
                return True
    return False


def _inline_param(v):
    if isinstance(v, IR):
        return inline_custom(v)
    if isinstance(v, (tuple, list)) and v and all(isinstance(b, IR) for b in v):
        return type(v)(inline_custom(b) for b in v)
    return v


# -- batching: every input batched, every IR batched alike ---------------------------------

def _batch_custom(prim, rule_param: str):
    """Every input batched (an unbatched one broadcast, so its cotangent sums over the
    lanes by the broadcast's own transpose), the body batched, the rules vmapped."""
    def rule(args, batched, size, *, body, num_consts, **params):
        args = [a if b else materialize(a, size) for a, b in zip(args, batched)]
        new_body, _ = batch_ir(body, [True] * len(args), size, True)
        params[rule_param] = params[rule_param].batched()
        outs = bind(prim, *args, body=new_body, num_consts=num_consts, **params)
        return outs, [True] * len(outs)
    return rule


batching_rules[custom_jvp_call_p] = _batch_custom(custom_jvp_call_p, "jvp")
batching_rules[custom_vjp_call_p] = _batch_custom(custom_vjp_call_p, "rules")


def inline_custom(ir: IR) -> IR:
    """`ir` with its custom-rule calls replaced by calls of their bodies, in nested bodies
    too (for the compiler, once no transform will ask for the rules)."""
    from .primitives.control import call_p
    if not _has_custom(ir):
        return ir
    eqns = []
    for e in ir.eqns:
        if e.prim in CUSTOM_CALLS:
            eqns.append(Eqn(call_p, e.inputs, e.outs, {"body": inline_custom(e.params["body"])},
                            e.source))
        else:
            params = {k: _inline_param(v) for k, v in e.params.items()}
            eqns.append(Eqn(e.prim, e.inputs, e.outs, params, e.source))
    return IR(list(ir.invars), list(ir.constvars), list(ir.constvals), eqns, list(ir.outs),
              ir.name, dict(ir.extra))


__all__ = ["custom_jvp", "custom_vjp"]
