"""The transforms users call: make_ir, jvp, linearize, vjp, grad, value_and_grad, jacfwd,
jacrev, hessian, stop_gradient.

Each is a thin pytree front end over a flat IR transform. Called with concrete arrays, the
resulting IR is evaluated with NumPy; called with traced values (inside another transform),
it is recorded into the enclosing trace, which is how transforms compose.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from . import dtypes
from .core import Tracer, eval_ir, full_like_aval, trace_flat
from .ir import IR, ShapedArray, aval_of
from .optimize import dce, optimize
from .primitives.structural import stop_gradient as _stop_gradient_flat
from .transforms.jvp import has_tangent, jvp_ir, tangent_aval
from .transforms.partial_eval import partial_eval
from .transforms.transpose import transpose_ir
from .tree_util import PyTreeDef, tree_flatten, tree_map, tree_unflatten

# -- tracing user functions ------------------------------------------------------------------


def _leaf_aval(x, what: str) -> ShapedArray:
    if isinstance(x, Tracer):
        return x.aval
    try:
        return aval_of(x)
    except TypeError as e:
        hint = "" if what.startswith("output") else (
            ". Non-array arguments must be marked static (static_argnums=...).")
        raise TypeError(f"{what}: {e}{hint}") from None


class Traced:
    """A user function traced at one signature: its IR, output structure and captures."""

    __slots__ = ("ir", "out_tree", "captured")

    def __init__(self, ir: IR, out_tree: PyTreeDef, captured: list):
        self.ir = ir
        self.out_tree = out_tree
        self.captured = captured


_trace_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache_for(fun):
    try:
        return _trace_cache.setdefault(fun, {})
    except TypeError:  # not weak-referenceable: no caching
        return None


def _signature_key(in_tree, leaves, static) -> tuple:
    avals = tuple((a.shape, a.dtype, a.weak_type)
                  for a in (_leaf_aval(x, "argument") for x in leaves))
    return (in_tree, avals, static)


def _cached(fun, key, build, uncached: bool = False):
    """Memoize `build()` per (fun, key), unless building captured outer traced values.
    `uncached`: derived from a trace that captured values (its IR is not cached, so an
    `id(ir)` key could be reused by a later, different IR)."""
    cache = None if uncached else _cache_for(fun)
    try:
        if cache is not None and key in cache:
            return cache[key]
    except TypeError as e:
        raise TypeError(f"static arguments must be hashable: {e}") from None
    result = build()
    if cache is not None and not _captures(result):
        cache[key] = result
    return result


def _captures(result) -> bool:
    return bool(getattr(result, "captured", None))


def _split_static(args: Sequence, static_argnums: Sequence[int]):
    n = len(args)
    static = tuple(sorted({a % n if n else a for a in static_argnums}))
    for a in static:
        if not 0 <= a < n:
            raise ValueError(f"static_argnums {static_argnums} out of range for {n} arguments")
    dynamic = [x for i, x in enumerate(args) if i not in static]
    static_vals = tuple((i, args[i]) for i in static)
    return dynamic, static_vals


def _merge_static(dynamic: Sequence, static_vals: tuple, n: int) -> list:
    args, it = [], iter(dynamic)
    statics = dict(static_vals)
    for i in range(n):
        args.append(statics[i] if i in statics else next(it))
    return args


def _fun_name(fun) -> str:
    name = getattr(fun, "__name__", None) or type(fun).__name__
    return name if name.isidentifier() else "f"


def trace(fun: Callable, args: Sequence, kwargs: dict | None = None,
          static_argnums: Sequence[int] = (), static_kwargs: dict | None = None,
          out_fn: Callable | None = None, tag=None) -> tuple[Traced, list]:
    """Trace `fun(*args, **kwargs, **static_kwargs)` to an IR; returns it with the flat
    dynamic leaves (the IR's inputs, before its captured ones).

    `out_fn` post-processes the function's output (e.g. checks a `(loss, aux)` pair); `tag`
    names it in the cache key, so the cache stays keyed by the user's own function.
    """
    kwargs = kwargs or {}
    static_kwargs = static_kwargs or {}
    dynamic, static_vals = _split_static(args, static_argnums)
    leaves, in_tree = tree_flatten((dynamic, kwargs))
    static_key = static_vals + tuple(sorted(static_kwargs.items()))
    key = ("trace", tag) + _signature_key(in_tree, leaves, static_key)

    def build():
        avals = [_leaf_aval(x, "argument").strip_weak() if not _is_weak_leaf(x)
                 else _leaf_aval(x, "argument") for x in leaves]
        out_tree_box = []

        def flat_fun(*flat_args):
            dyn, kw = tree_unflatten(in_tree, flat_args)
            out = fun(*_merge_static(dyn, static_vals, len(args)), **kw, **static_kwargs)
            if out_fn is not None:
                out = out_fn(out)
            out_leaves, out_tree = tree_flatten(out)
            out_tree_box.append(out_tree)
            for leaf in out_leaves:
                _leaf_aval(leaf, f"output of {_fun_name(fun)}")
            return out_leaves

        ir, captured = trace_flat(flat_fun, avals, name=_fun_name(fun))
        return Traced(ir, out_tree_box[0], captured)

    return _cached(fun, key, build), leaves


def _is_weak_leaf(x) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def _as_output(x):
    """Results handed back to users: NumPy arrays, 0-d results as NumPy scalars."""
    if isinstance(x, Tracer):
        return x
    arr = np.asarray(x)
    return arr[()] if arr.ndim == 0 else arr


def _run(ir: IR, flat_args: Sequence) -> list:
    outs = eval_ir(ir, list(flat_args))
    # A program constant or argument returned as an output is copied: the caller may write
    # into it.
    owned = {id(c) for c in ir.constvals} | {id(a) for a in flat_args if isinstance(a, np.ndarray)}
    return [_as_output(o.copy() if id(o) in owned else o) for o in outs]


# -- make_ir ---------------------------------------------------------------------------------

def make_ir(fun: Callable, static_argnums: int | Sequence[int] = ()) -> Callable[..., IR]:
    """`make_ir(f)(*args)` returns the IR `f` records for arguments shaped like `args`."""
    static = _as_tuple(static_argnums)

    @functools.wraps(fun)
    def wrapper(*args, **kwargs) -> IR:
        traced, _ = trace(fun, args, kwargs, static)
        ir = traced.ir
        ir.extra["out_tree"] = traced.out_tree
        return ir
    return wrapper


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


# -- forward mode ----------------------------------------------------------------------------

def jvp(fun: Callable, primals: Sequence, tangents: Sequence):
    """(fun(*primals), the derivative of fun at primals applied to tangents)."""
    primals, tangents = tuple(primals), tuple(tangents)
    p_leaves, p_tree = tree_flatten(primals)
    t_leaves, t_tree = tree_flatten(tangents)
    if p_tree != t_tree:
        raise ValueError(f"jvp: primals {p_tree} and tangents {t_tree} differ in structure")
    for p, t in zip(p_leaves, t_leaves):
        pa, ta = _leaf_aval(p, "primal"), _leaf_aval(t, "tangent")
        if pa.shape != ta.shape:
            raise ValueError(f"jvp: tangent of shape {ta.shape} for a primal of shape "
                             f"{pa.shape}")
    traced, leaves = trace(fun, primals)
    ir = traced.ir
    nonzero = [has_tangent(a) for a in ir.in_avals[:len(leaves)]] + [False] * len(
        traced.captured)
    key = ("jvp", id(ir))
    jir = _cached(fun, key, lambda: _JvpIR(*_jvp_and_opt(ir, nonzero)),
                  uncached=bool(traced.captured))
    t_args = [_cast_tangent(t, a) for t, a, nz in zip(t_leaves, ir.in_avals, nonzero) if nz]
    outs = _run(jir.ir, list(leaves) + list(traced.captured) + t_args)
    n = len(ir.outs)
    return (tree_unflatten(traced.out_tree, outs[:n]),
            tree_unflatten(traced.out_tree, outs[n:]))


class _JvpIR:
    __slots__ = ("ir", "out_nonzero")

    def __init__(self, ir, out_nonzero):
        self.ir, self.out_nonzero = ir, out_nonzero


def _jvp_and_opt(ir: IR, nonzero):
    jir, out_nz = jvp_ir(ir, nonzero, instantiate_outs=True)
    return optimize(jir), out_nz


def _cast_tangent(t, aval: ShapedArray):
    if isinstance(t, Tracer):
        if t.aval.dtype != aval.dtype:
            from .primitives.structural import convert
            return convert(t, aval.dtype)
        return t
    return np.asarray(t, dtype=aval.dtype)


# -- reverse mode ----------------------------------------------------------------------------

class VjpIRs:
    """Reverse mode of an IR, split in two programs.

    primal: inputs -> (outputs..., residuals...)
    backward: (residuals..., output cotangents...) -> cotangents of the differentiated inputs
    """

    __slots__ = ("primal", "backward", "num_res", "num_out")

    def __init__(self, primal: IR, backward: IR, num_res: int, num_out: int):
        self.primal, self.backward = primal, backward
        self.num_res, self.num_out = num_res, num_out


def vjp_irs(ir: IR, diff: Sequence[bool]) -> VjpIRs:
    """Linearize (JVP + partial evaluation) and transpose `ir` w.r.t. the inputs in `diff`."""
    jir, _ = jvp_ir(ir, diff, instantiate_outs=True)
    jir = optimize(jir)
    n_in, n_out, n_t = len(ir.invars), len(ir.outs), sum(diff)
    primal, linear, n_res = partial_eval(jir, [True] * n_in + [False] * n_t,
                                         [False] * n_out + [True] * n_out)
    backward = transpose_ir(linear, [False] * n_res + [True] * n_t)
    return VjpIRs(dce(primal), optimize(backward), n_res, n_out)


def _check_diff_leaves(leaves, avals, argnums, fname, holomorphic=False):
    for leaf_index, aval in zip(leaves, avals):
        if holomorphic and not dtypes.is_complex(aval.dtype):
            raise TypeError(
                f"{fname} with holomorphic=True requires complex inputs, but argument "
                f"{argnums[leaf_index]} has dtype {aval.dtype}: convert it with "
                "tnp.asarray(x, dtype=complex).")
        if not dtypes.is_inexact(aval.dtype):
            raise TypeError(
                f"{fname} requires floating-point or complex inputs to differentiate, but "
                f"argument {argnums[leaf_index]} has dtype {aval.dtype}. Integer and boolean "
                "values are never differentiated: convert to float, or leave the argument out "
                "of argnums.")


def _check_loss_dtype(dtype, fname, holomorphic):
    """Real outputs, or complex ones with holomorphic=True (JAX's rule: the gradient of a
    complex output is only defined for holomorphic functions)."""
    if holomorphic:
        if not dtypes.is_complex(dtype):
            raise TypeError(f"{fname} with holomorphic=True requires a complex output, got "
                            f"{dtype}")
    elif dtypes.is_complex(dtype):
        raise TypeError(f"{fname} requires a real-valued output, got {dtype}: take a real "
                        "part or abs() of it, or pass holomorphic=True if the function is "
                        "holomorphic (complex-differentiable)")
    elif not dtypes.is_float(dtype):
        raise TypeError(f"{fname} requires a real-valued (floating-point) scalar output, got "
                        f"{dtype}")


def _grad_ir(traced: Traced, diff: list[bool], has_aux: bool, with_value: bool,
             fname: str, holomorphic: bool = False) -> IR:
    """One IR: inputs -> ([loss,] aux leaves..., gradient leaves...), optimized."""
    ir = traced.ir
    loss_aval = ir.outs[0].aval if ir.outs else None
    if loss_aval is None or loss_aval.shape != ():
        shape = None if loss_aval is None else loss_aval.shape
        raise TypeError(f"{fname} requires a scalar-output function (a 0-d array or Python "
                        f"float), but {_fun_name_of(ir)} returned shape {shape}. "
                        "Use tj.vjp or tj.jacrev for non-scalar outputs.")
    _check_loss_dtype(loss_aval.dtype, fname, holomorphic)
    loss_ir = dce(IR(ir.invars, ir.constvars, ir.constvals, ir.eqns, ir.outs[:1], ir.name))
    parts = vjp_irs(loss_ir, diff)
    in_avals = ir.in_avals

    def grad_fn(*args):
        outs_res = eval_ir(parts.primal, args)
        loss, res = outs_res[0], outs_res[1:]
        aux = eval_ir(ir, args)[1:] if has_aux else []
        seed = full_like_aval(tangent_aval(loss_aval), 1.0)
        cts = eval_ir(parts.backward, list(res) + [seed])
        return [loss, *aux, *cts] if with_value else [*aux, *cts]

    gir, _ = trace_flat(grad_fn, in_avals, name=f"grad_{ir.name}", stage_all=True)
    return optimize(gir)


def _fun_name_of(ir: IR) -> str:
    return f"`{ir.name}`"


def _normalize_argnums(argnums, n_args: int, fname: str) -> tuple[int, ...]:
    nums = _as_tuple(argnums)
    for a in nums:
        if not isinstance(a, (int, np.integer)) or not -n_args <= a < n_args:
            raise ValueError(f"{fname}: argnums {argnums} out of range for {n_args} "
                             "positional arguments")
    return tuple(int(a) % n_args for a in nums)


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False):
    """`value_and_grad(f)(*args) -> (f(*args), gradient)`; with `has_aux`,
    `((value, aux), gradient)`. The gradient mirrors `args[argnums]` (a tuple when
    `argnums` is a tuple)."""
    return _grad_transform(fun, argnums, has_aux, with_value=True, holomorphic=holomorphic)


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False):
    """The gradient of a scalar function w.r.t. `args[argnums]` (pytrees allowed), by
    linearize + transpose. With `has_aux`, `f` returns `(loss, aux)` and grad returns
    `(gradient, aux)`.

    Complex inputs follow JAX's convention: for a real-valued f of z = x + iy the result is
    df/dx - i df/dy, the conjugate of the steepest-ascent direction (so a descent step is
    `z - lr * conj(grad(f)(z))`). With `holomorphic=True`, f must map complex inputs to a
    complex output and the result is the complex derivative f'(z)."""
    return _grad_transform(fun, argnums, has_aux, with_value=False, holomorphic=holomorphic)


def _grad_transform(fun, argnums, has_aux, with_value, holomorphic=False):
    fname = "value_and_grad" if with_value else "grad"

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        nums = _normalize_argnums(argnums, len(args), fname)
        # Python ints and bools that are not differentiated (loop counts, flags) stay
        # concrete, as `jax.grad` keeps them: `range(n)` and `fori_loop(0, n, ...)` work.
        static = tuple(i for i, a in enumerate(args) if i not in nums and _is_count(a))
        traced, leaves = trace(fun, args, kwargs, static,
                               out_fn=_aux_pair(fname) if has_aux else None,
                               tag=f"aux_{fname}" if has_aux else None)
        ir = traced.ir
        # Which flat leaves belong to the differentiated arguments.
        arg_of_leaf = []
        for i, a in enumerate(args):
            if i not in static:
                arg_of_leaf += [i] * len(tree_flatten(a)[0])
        arg_of_leaf += [None] * (len(leaves) - len(arg_of_leaf))  # keyword leaves
        diff = [i in nums for i in arg_of_leaf] + [False] * len(traced.captured)
        diff_positions = [k for k, d in enumerate(diff) if d]
        _check_diff_leaves(diff_positions, [ir.in_avals[k] for k in diff_positions],
                           arg_of_leaf, fname, holomorphic)
        key = ("grad", id(ir), tuple(diff), has_aux, with_value, holomorphic)
        gir = _cached(fun, key,
                      lambda: _grad_ir(traced, diff, has_aux, with_value, fname, holomorphic),
                      uncached=bool(traced.captured))
        outs = _run(gir, list(leaves) + list(traced.captured))
        if not with_value:
            outs = [None] + outs
        n_aux = len(ir.outs) - 1 if has_aux else 0
        value, aux_leaves, grads = outs[0], outs[1:1 + n_aux], outs[1 + n_aux:]
        it = iter(grads)
        per_arg = []
        for i in nums:
            a_leaves, a_tree = tree_flatten(args[i])
            per_arg.append(tree_unflatten(a_tree, [next(it) for _ in a_leaves]))
        g = tuple(per_arg) if isinstance(argnums, (tuple, list)) else per_arg[0]
        if has_aux:
            aux = tree_unflatten(traced.out_tree.children[1], aux_leaves)
            return ((value, aux), g) if with_value else (g, aux)
        return (value, g) if with_value else g
    return wrapper


def _is_count(x) -> bool:
    return isinstance(x, (bool, int)) and not isinstance(x, np.generic)


def _aux_pair(fname: str) -> Callable:
    """Output check of `has_aux` functions: a `(loss, aux)` pair."""
    def check(out):
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"{fname}(has_aux=True) expects the function to return a "
                            "pair (loss, aux)")
        return out[0], out[1]
    return check


def linearize(fun: Callable, *primals):
    """(fun(*primals), f_jvp) where f_jvp(*tangents) applies the derivative at primals
    without re-running the primal computation (it reads stored residuals)."""
    traced, leaves = trace(fun, primals)
    ir = traced.ir
    n_in = len(ir.invars)
    diff = [has_tangent(a) for a in ir.in_avals[:len(leaves)]] + [False] * len(
        traced.captured)
    jir, _ = jvp_ir(ir, diff, instantiate_outs=True)
    jir = optimize(jir)
    n_out = len(ir.outs)
    primal, linear, n_res = partial_eval(jir, [True] * n_in + [False] * sum(diff),
                                         [False] * n_out + [True] * n_out)
    primal, linear = dce(primal), optimize(linear)
    outs = eval_ir(primal, list(leaves) + list(traced.captured))
    out_vals, residuals = outs[:n_out], outs[n_out:]
    in_leaf_avals = ir.in_avals[:len(leaves)]

    def f_jvp(*tangents):
        t_leaves, _ = tree_flatten(tuple(tangents))
        if len(t_leaves) != len(leaves):
            raise ValueError(f"f_jvp expects {len(leaves)} tangent leaves, got "
                             f"{len(t_leaves)}")
        t_args = [_cast_tangent(t, a) for t, a, d in zip(t_leaves, in_leaf_avals, diff) if d]
        touts = _run(linear, list(residuals) + t_args)
        return tree_unflatten(traced.out_tree, touts)

    return tree_unflatten(traced.out_tree, [_as_output(o) for o in out_vals]), f_jvp


def vjp(fun: Callable, *primals, has_aux: bool = False):
    """(fun(*primals), f_vjp) where f_vjp(cotangent) returns one cotangent per primal;
    with `has_aux`, (out, f_vjp, aux)."""
    traced, leaves = trace(fun, primals, out_fn=_aux_pair("vjp") if has_aux else None,
                           tag="aux_vjp" if has_aux else None)
    ir = traced.ir
    main_tree = traced.out_tree.children[0] if has_aux else traced.out_tree
    n_main = main_tree.num_leaves
    main_ir = dce(IR(ir.invars, ir.constvars, ir.constvals, ir.eqns, ir.outs[:n_main],
                     ir.name))
    diff = [has_tangent(a) for a in ir.in_avals[:len(leaves)]] + [False] * len(
        traced.captured)
    parts = _cached(fun, ("vjp", id(ir), has_aux), lambda: vjp_irs(main_ir, diff),
                    uncached=bool(traced.captured))
    all_args = list(leaves) + list(traced.captured)
    outs = eval_ir(parts.primal, all_args)
    out_vals, residuals = outs[:n_main], outs[n_main:]
    out_avals = main_ir.out_avals

    def f_vjp(cotangent):
        ct_leaves, ct_tree = tree_flatten(cotangent)
        if ct_tree != main_tree:
            raise ValueError(f"f_vjp: cotangent structure {ct_tree} differs from the output "
                             f"structure {main_tree}")
        cts = [_cast_tangent(c, tangent_aval(a)) for c, a in zip(ct_leaves, out_avals)]
        grads = iter(_run(parts.backward, list(residuals) + cts))
        flat = [next(grads) if d else _zeros_for(x) for x, d in zip(leaves, diff)]
        _, p_tree = tree_flatten(tuple(primals))
        return tree_unflatten(p_tree, flat)

    out = tree_unflatten(main_tree, [_as_output(o) for o in out_vals])
    if has_aux:
        aux_vals = _run(ir, all_args)[n_main:]
        return out, f_vjp, tree_unflatten(traced.out_tree.children[1], aux_vals)
    return out, f_vjp


def _zeros_for(x):
    aval = _leaf_aval(x, "primal")
    return _as_output(np.zeros(aval.shape, aval.dtype))


# -- Jacobians -------------------------------------------------------------------------------

def _of_selected(fun: Callable, args: Sequence, nums: Sequence[int]) -> Callable:
    """`fun` as a function of the arguments at positions `nums` (the others fixed)."""
    def f_of(*xs):
        full = list(args)
        for i, x in zip(nums, xs):
            full[i] = x
        return fun(*full)
    return f_of


def _over_basis(f_one: Callable, n: int, shape: tuple, dtype) -> list:
    """`f_one` applied to each of the n unit arrays of `shape`, its output leaves stacked on a
    new leading axis. One batched call (vmap) when every primitive has a batching rule, so a
    Jacobian costs one compiled program rather than n; else one call per unit array."""
    from . import numpy as tnp
    from .transforms.batching import vmap
    basis = np.eye(n, dtype=dtype).reshape((n, *shape))
    try:
        return tree_flatten(vmap(f_one)(basis))[0]
    except NotImplementedError:
        per_unit = [tree_flatten(f_one(basis[j]))[0] for j in range(n)]
        return [tnp.stack(list(col)) for col in zip(*per_unit)]


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, holomorphic: bool = False):
    """Jacobian by forward mode: the JVPs of all input unit vectors. Result shape: out + in.
    Inputs are real unless `holomorphic=True`, where inputs and outputs are complex and the
    result holds complex derivatives."""
    from . import numpy as tnp

    def jac(*args):
        nums = _normalize_argnums(argnums, len(args), "jacfwd")
        x_args = [args[i] for i in nums]
        f_of = _of_selected(fun, args, nums)

        x_leaves, x_tree = tree_flatten(tuple(x_args))
        y, _ = jvp(f_of, tuple(x_args), tree_map(_zero_tangent, tuple(x_args)))
        y_leaves, y_tree = tree_flatten(y)
        y_shapes = [_leaf_aval(yl, "output").shape for yl in y_leaves]
        cols_per_x = []
        for k, xl in enumerate(x_leaves):
            xa = _leaf_aval(xl, "argument")
            _require_inexact(xa, "jacfwd", holomorphic, real_only=True)
            if xa.size == 0:
                cols_per_x.append([np.zeros(ys + xa.shape, _leaf_aval(yl, "output").dtype)
                                   for ys, yl in zip(y_shapes, y_leaves)])
                continue

            def tangent_out(t, k=k):
                t_leaves = [_zero_tangent(z) for z in x_leaves]
                t_leaves[k] = t
                return jvp(f_of, tuple(x_args), tree_unflatten(x_tree, t_leaves))[1]
            stacked = _over_basis(tangent_out, xa.size, xa.shape, xa.dtype)  # (n_in, *ys)
            cols_per_x.append([tnp.reshape(tnp.moveaxis(t, 0, -1), ys + xa.shape)
                               for t, ys in zip(stacked, y_shapes)])
        return _assemble_jac(cols_per_x, x_tree, y_tree, argnums)
    return jac


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, holomorphic: bool = False):
    """Jacobian by reverse mode: the VJPs of all output unit vectors. Result shape: out + in.
    Outputs are real unless `holomorphic=True` (complex inputs and outputs); complex inputs
    of a real function get `grad`'s convention."""
    from . import numpy as tnp

    def jac(*args):
        nums = _normalize_argnums(argnums, len(args), "jacrev")
        x_args = [args[i] for i in nums]
        f_of = _of_selected(fun, args, nums)

        x_leaves, x_tree = tree_flatten(tuple(x_args))
        x_avals = [_leaf_aval(xl, "argument") for xl in x_leaves]
        for xa in x_avals:
            _require_inexact(xa, "jacrev", holomorphic)
        y, f_vjp = vjp(f_of, *x_args)
        y_leaves, y_tree = tree_flatten(y)
        y_avals = [_leaf_aval(yl, "output") for yl in y_leaves]
        for ya in y_avals:
            _require_output(ya, "jacrev", holomorphic)
        rows = [[None] * len(y_leaves) for _ in x_leaves]
        for m, ya in enumerate(y_avals):
            if ya.size == 0:
                continue

            def cotangent_in(c, m=m):
                ct_leaves = [np.zeros(z.shape, z.dtype) for z in y_avals]
                ct_leaves[m] = c
                return f_vjp(tree_unflatten(y_tree, ct_leaves))
            for k, g in enumerate(_over_basis(cotangent_in, ya.size, ya.shape, ya.dtype)):
                rows[k][m] = tnp.reshape(g, ya.shape + x_avals[k].shape)
        blocks_per_x = [[np.zeros(ya.shape + xa.shape, xa.dtype) if r is None else r
                         for r, ya in zip(row, y_avals)] for row, xa in zip(rows, x_avals)]
        return _assemble_jac(blocks_per_x, x_tree, y_tree, argnums)
    return jac


def _zero_tangent(x):
    aval = _leaf_aval(x, "argument")
    return np.zeros(aval.shape, aval.dtype)


def _require_inexact(aval, fname, holomorphic=False, real_only=False):
    if holomorphic:
        if not dtypes.is_complex(aval.dtype):
            raise TypeError(f"{fname} with holomorphic=True requires complex inputs, got "
                            f"{aval.dtype}")
    elif real_only and dtypes.is_complex(aval.dtype):
        raise TypeError(f"{fname} requires real inputs, got {aval.dtype}: pass "
                        "holomorphic=True for a holomorphic function, or split z into real "
                        "and imaginary parts")
    elif not dtypes.is_inexact(aval.dtype):
        raise TypeError(f"{fname} requires floating-point inputs, got {aval.dtype}")


def _require_output(aval, fname, holomorphic):
    if holomorphic and not dtypes.is_complex(aval.dtype):
        raise TypeError(f"{fname} with holomorphic=True requires complex outputs, got "
                        f"{aval.dtype}")
    if not holomorphic and dtypes.is_complex(aval.dtype):
        raise TypeError(f"{fname} requires real outputs, got {aval.dtype}: pass "
                        "holomorphic=True for a holomorphic function")


def _assemble_jac(blocks_per_x, x_tree, y_tree, argnums):
    """blocks_per_x[k][m]: d y_leaf[m] / d x_leaf[k]. Output: y structure of x structure."""
    per_y = []
    for m in range(y_tree.num_leaves):
        per_y.append(tree_unflatten(x_tree, [blocks_per_x[k][m]
                                             for k in range(len(blocks_per_x))]))
    if not isinstance(argnums, (tuple, list)):
        per_y = [p[0] for p in per_y]
    return tree_unflatten(y_tree, [_as_output(p) if not isinstance(p, (tuple, list, dict))
                                   else p for p in per_y])


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, holomorphic: bool = False):
    """Matrix of second derivatives: jacfwd of jacrev."""
    return jacfwd(jacrev(fun, argnums, holomorphic), argnums, holomorphic)


def stop_gradient(x):
    """The value of `x`, treated as a constant by differentiation (leafwise on pytrees)."""
    return tree_map(_stop_gradient_leaf, x)


def _stop_gradient_leaf(x):
    if isinstance(x, Tracer):
        return _stop_gradient_flat(x)
    return x
