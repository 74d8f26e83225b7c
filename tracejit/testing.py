"""`check_grads`: derivatives checked against central finite differences.

Forward mode is compared with (f(x + eps v) - f(x - eps v)) / (2 eps) along random
directions v; reverse mode through the dot-product identity <u, J v> = <J^T u, v>, against
both the finite difference and the JVP. Higher orders check the derivative functions
themselves the same way.

Complex leaves get complex directions, and the pairing is <a, b> = re(sum(a * b)) (no
conjugate): the pairing under which tracejit's transposes (and JAX's) are transposes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import api
from .tree_util import tree_flatten, tree_unflatten

_DEFAULT_TOL = {np.dtype("float64"): 1e-5, np.dtype("float32"): 2e-2}
_DEFAULT_EPS = {np.dtype("float64"): 1e-4, np.dtype("float32"): 1e-2}


def _float_leaf(x) -> bool:
    """Leaves that carry derivatives: float and complex arrays."""
    return np.issubdtype(np.asarray(x).dtype, np.inexact)


def _lowest_precision(leaves) -> np.dtype:
    dts = [np.asarray(x).dtype for x in leaves if _float_leaf(x)]
    single = any(d in (np.dtype("float32"), np.dtype("complex64")) for d in dts)
    return np.dtype("float32") if single else np.dtype("float64")


def _wide(x):
    """float64, or complex128 for complex values: the precision checks compute in."""
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def _random_like(x, rng):
    x = np.asarray(x)
    if not _float_leaf(x):
        return np.zeros(x.shape, x.dtype)
    v = rng.standard_normal(x.shape)
    if np.iscomplexobj(x):
        v = v + 1j * rng.standard_normal(x.shape)
    return v.astype(x.dtype)


def _axpy(a, v, x):
    x = np.asarray(x)
    if not _float_leaf(x):
        return x
    return (x + np.asarray(a * v, dtype=x.dtype)).astype(x.dtype)


def _flat_outputs(out):
    leaves, _ = tree_flatten(out)
    return [_wide(o) for o in leaves if _float_leaf(o)]


def _vdot(xs, ys) -> float:
    return float(sum(np.real(np.sum(_wide(x) * _wide(y))) for x, y in zip(xs, ys)))


def _close(what, actual, expected, atol, rtol):
    actual = [_wide(a) for a in actual]
    expected = [_wide(e) for e in expected]
    for k, (a, e) in enumerate(zip(actual, expected)):
        if a.shape != e.shape:
            raise AssertionError(f"{what}: output {k} has shape {a.shape}, expected {e.shape}")
        if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
            err = np.abs(a - e)
            i = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
            raise AssertionError(
                f"{what}: output {k} differs: max abs error {err.max():.3e} at index {i} "
                f"(got {a[i]!r}, expected {e[i]!r}; atol={atol}, rtol={rtol})")


def _numerical_jvp(f, args, tangents, eps):
    plus = f(*[_axpy(eps, t, x) for x, t in zip(args, tangents)])
    minus = f(*[_axpy(-eps, t, x) for x, t in zip(args, tangents)])
    return [(p - m) / (2 * eps) for p, m in zip(_flat_outputs(plus), _flat_outputs(minus))]


def check_jvp(f, args, eps, atol, rtol, rng):
    tangents = [_random_like_tree(a, rng) for a in args]
    _, ty = api.jvp(f, tuple(args), tuple(tangents))
    expected = _numerical_jvp(_tree_fn(f, args), _flat_args(args), _flat_args(tangents), eps)
    _close("JVP vs finite differences", _flat_outputs(ty), expected, atol, rtol)


def check_vjp(f, args, eps, atol, rtol, rng):
    out, f_vjp = api.vjp(f, *args)
    out_leaves, out_tree = tree_flatten(out)
    cts = [_random_like(o, rng) for o in out_leaves]
    grads = f_vjp(tree_unflatten(out_tree, cts))
    tangents = [_random_like_tree(a, rng) for a in args]
    flat_t = _flat_args(tangents)
    float_cts = [c for c, o in zip(cts, out_leaves) if _float_leaf(o)]
    lhs = _vdot(_flat_float(grads), [t for t, a in zip(flat_t, _flat_args(args))
                                     if _float_leaf(a)])
    fd = _numerical_jvp(_tree_fn(f, args), _flat_args(args), flat_t, eps)
    rhs_fd = _vdot(float_cts, fd)
    scale = max(1.0, abs(rhs_fd))
    if not abs(lhs - rhs_fd) <= atol * scale + rtol * abs(rhs_fd):
        raise AssertionError(f"VJP vs finite differences: <vjp(u), v> = {lhs!r} but "
                             f"<u, (f(x+eps v) - f(x-eps v))/2eps> = {rhs_fd!r} "
                             f"(difference {abs(lhs - rhs_fd):.3e})")
    _, ty = api.jvp(f, tuple(args), tuple(tangents))
    rhs_jvp = _vdot(float_cts, _flat_outputs(ty))
    if not abs(lhs - rhs_jvp) <= atol * max(1.0, abs(rhs_jvp)) + rtol * abs(rhs_jvp):
        raise AssertionError(f"VJP vs JVP: <vjp(u), v> = {lhs!r} but <u, jvp(v)> = "
                             f"{rhs_jvp!r} (difference {abs(lhs - rhs_jvp):.3e})")


def _random_like_tree(a, rng):
    leaves, tree = tree_flatten(a)
    return tree_unflatten(tree, [_random_like(x, rng) for x in leaves])


def _flat_args(args):
    return tree_flatten(tuple(args))[0]


def _flat_float(tree):
    return [_wide(x) for x in tree_flatten(tree)[0] if _float_leaf(x)]


def _tree_fn(f, args):
    """f as a function of the flat leaves of `args`."""
    _, tree = tree_flatten(tuple(args))

    def flat_f(*leaves):
        return f(*tree_unflatten(tree, leaves))
    return flat_f


def check_grads(f: Callable, args: Sequence, order: int = 1,
                modes: Sequence[str] = ("fwd", "rev"), eps: float | None = None,
                atol: float | None = None, rtol: float | None = None,
                seed: int = 0) -> None:
    """Raise AssertionError if `f`'s derivatives (up to `order`) disagree with finite
    differences. `args` is a tuple of arguments (arrays or pytrees of arrays)."""
    args = tuple(args)
    leaves = _flat_args(args)
    dtype = _lowest_precision(leaves)
    eps = _DEFAULT_EPS[dtype] if eps is None else eps
    atol = _DEFAULT_TOL[dtype] if atol is None else atol
    rtol = _DEFAULT_TOL[dtype] if rtol is None else rtol
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"unknown mode {m!r}: use 'fwd' and/or 'rev'")
    rng = np.random.default_rng(seed)

    def check(fun, level):
        if "fwd" in modes:
            check_jvp(fun, args, eps, atol, rtol, rng)
            if level < order:
                tangents = tuple(_random_like_tree(a, rng) for a in args)
                check(lambda *xs: api.jvp(fun, xs, tangents)[1], level + 1)
        if "rev" in modes:
            check_vjp(fun, args, eps, atol, rtol, rng)
            if level < order:
                out = fun(*args)
                out_leaves, out_tree = tree_flatten(out)
                cts = tree_unflatten(out_tree, [_random_like(o, rng) for o in out_leaves])
                check(lambda *xs: api.vjp(fun, *xs)[1](cts), level + 1)

    check(f, 1)
