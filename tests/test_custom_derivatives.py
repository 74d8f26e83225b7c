"""custom_jvp and custom_vjp: the user's rule is what every transform uses.

Rules that differ from the true derivative (a doubled derivative, a clipped gradient) show
that the rule, not the body, was differentiated; the results are checked against hand
derivations of what the rule implies, and the true-derivative rule against finite
differences.
"""

from functools import partial

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.check import check_ir
from tracejit.testing import check_grads


@tj.custom_jvp
def log1pexp(x):
    return tnp.log1p(tnp.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + tnp.exp(x)))


@tj.custom_jvp
def square_twice(x):
    """x**2 whose rule claims the derivative 4x (twice the truth)."""
    return x * x


@square_twice.defjvp
def _square_twice_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return square_twice(x), 4.0 * x * t


@tj.custom_vjp
def clip_gradient(x, lo, hi):
    return x


def _clip_fwd(x, lo, hi):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return tnp.clip(g, lo, hi), None, None


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@tj.custom_vjp
def scale(x, s):
    """x * s whose VJP multiplies x's cotangent by 100 and gives s its true one."""
    return x * s


def _scale_fwd(x, s):
    return x * s, (x, s)


def _scale_bwd(res, g):
    x, s = res
    return g * s * 100.0, tnp.sum(g * x)


scale.defvjp(_scale_fwd, _scale_bwd)

X = np.array([-3.0, -0.5, 0.0, 2.0, 5.0])


def test_custom_jvp_is_used_where_the_body_would_overflow():
    x = np.array([-3.0, 0.0, 2.0, 800.0])
    sigmoid = 1.0 / (1.0 + np.exp(-np.minimum(x, 50.0)))
    np.testing.assert_allclose(tj.grad(lambda v: tnp.sum(log1pexp(v)))(x), sigmoid)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda v: tnp.sum(log1pexp(v))))(x), sigmoid)
    # the body differentiated as written gives inf/inf there
    plain = tj.grad(lambda v: tnp.sum(tnp.log1p(tnp.exp(v))))(x)
    assert np.isnan(plain[-1])
    check_grads(log1pexp, (X,), order=2)
    np.testing.assert_allclose(log1pexp(X), np.log1p(np.exp(X)))


def test_a_rule_that_differs_from_the_derivative_is_what_every_transform_uses():
    f = lambda v: tnp.sum(square_twice(v))  # noqa: E731
    np.testing.assert_allclose(tj.grad(f)(X), 4 * X)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(X), 4 * X)
    np.testing.assert_allclose(tj.jvp(square_twice, (X,), (np.ones(5),))[1], 4 * X)
    np.testing.assert_allclose(tj.vmap(tj.grad(square_twice))(X), 4 * X)
    np.testing.assert_allclose(tj.jit(tj.vmap(tj.grad(square_twice)))(X), 4 * X)
    np.testing.assert_allclose(tj.grad(lambda v: tnp.sum(tj.vmap(square_twice)(v)))(X), 4 * X)
    np.testing.assert_allclose(tj.hessian(f)(X), 4 * np.eye(5))  # the rule, differentiated
    np.testing.assert_allclose(tj.jit(square_twice)(X), X * X)
    check_ir(tj.make_ir(tj.grad(f))(X))
    check_ir(tj.make_ir(f)(X))


def test_custom_rules_inside_control_flow():
    def in_scan(x):
        def step(c, _):
            return c + 0.1 * square_twice(c), None
        c, _ = tj.scan(step, x, None, length=3)
        return tnp.sum(c)

    def hand(x):  # each step multiplies the tangent by 1 + 0.1 * 4c (the rule's derivative)
        g, c = np.ones_like(x), x.copy()
        for _ in range(3):
            g, c = g * (1 + 0.4 * c), c + 0.1 * c * c
        return g
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(tj.grad(in_scan)(x), hand(x))
    np.testing.assert_allclose(tj.jit(tj.grad(in_scan))(x), hand(x))

    def in_cond(x):
        return tj.cond(x > 0, lambda v: square_twice(v), lambda v: -v, x)
    assert tj.grad(in_cond)(2.0) == 8.0
    assert tj.grad(in_cond)(-2.0) == -1.0

    def vjp_in_scan(x):
        def step(c, _):
            return clip_gradient(c, -0.5, 0.5) * 2.0, None
        c, _ = tj.scan(step, x, None, length=2)
        return tnp.sum(c)
    # cotangent 1 -> clip(2) = 0.5 -> clip(1.0) = 0.5 at the input
    np.testing.assert_allclose(tj.grad(vjp_in_scan)(np.ones(3)), 0.5 * np.ones(3))


def test_custom_vjp_clips_under_every_reverse_transform():
    f = lambda v: tnp.sum(clip_gradient(v, -0.5, 0.5) * 3.0)  # noqa: E731
    np.testing.assert_allclose(tj.grad(f)(X), 0.5)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(X), 0.5)
    np.testing.assert_allclose(tj.vmap(tj.grad(lambda v: clip_gradient(v, -1.0, 1.0) * -3.0))(X),
                               -1.0)
    np.testing.assert_allclose(
        tj.grad(lambda v: tnp.sum(tj.vmap(lambda e: clip_gradient(e, -0.5, 0.5) * 3.0)(v)))(X),
        0.5)
    np.testing.assert_allclose(tj.jacrev(lambda v: clip_gradient(v, -0.5, 0.5) * 3.0)(X),
                               0.5 * np.eye(5))
    np.testing.assert_allclose(tj.jit(lambda v: clip_gradient(v, -1.0, 1.0))(X), X)


def test_custom_vjp_with_several_arguments_and_vmap_in_axes_none():
    x = np.arange(6.0).reshape(3, 2) + 1.0
    gx, gs = tj.grad(lambda x, s: tnp.sum(scale(x, s)), argnums=(0, 1))(x, 2.0)
    np.testing.assert_allclose(gx, 200.0)
    np.testing.assert_allclose(gs, x.sum())
    # per-example gradients w.r.t. the shared s, and the gradient of the batched sum
    per = tj.vmap(lambda xi, s: tj.grad(lambda s: tnp.sum(scale(xi, s)))(s),
                  in_axes=(0, None))(x, 2.0)
    np.testing.assert_allclose(per, x.sum(axis=1))
    total = tj.grad(lambda s: tnp.sum(tj.vmap(lambda xi: scale(xi, s))(x)))(2.0)
    np.testing.assert_allclose(total, x.sum())
    jitted = tj.jit(tj.vmap(tj.grad(lambda xi, s: tnp.sum(scale(xi, s))), in_axes=(0, None)))
    np.testing.assert_allclose(jitted(x, 2.0), 200.0)


def test_forward_mode_through_custom_vjp_is_a_clear_error():
    with pytest.raises(TypeError, match="forward-mode.*custom_vjp.*clip_gradient"):
        tj.jvp(lambda v: clip_gradient(v, -1.0, 1.0), (X,), (np.ones(5),))


def test_closed_over_traced_values():
    """The rule covers the arguments; what the function closes over is differentiated as
    written, and the rule may read it too."""
    def f(x, a):
        @tj.custom_jvp
        def times_a(y):
            return y * a

        @times_a.defjvp
        def _(p, t):
            return times_a(p[0]), t[0] * a * 10.0  # ten times the true derivative in y
        return tnp.sum(times_a(x))
    x = np.array([1.0, 2.0, 4.0])
    gx, ga = tj.grad(f, argnums=(0, 1))(x, 3.0)
    np.testing.assert_allclose(gx, 30.0)
    np.testing.assert_allclose(ga, x.sum())
    gx2, ga2 = tj.jit(tj.grad(f, argnums=(0, 1)))(x, 3.0)
    np.testing.assert_allclose(gx2, 30.0)
    np.testing.assert_allclose(ga2, x.sum())


def test_nondiff_argnums_pytrees_and_defjvps():
    @partial(tj.custom_jvp, nondiff_argnums=(1,))
    def power(x, k):
        return x ** k

    @power.defjvp
    def _(k, p, t):
        return power(p[0], k), 2 * k * p[0] ** (k - 1) * t[0]  # twice the derivative
    assert tj.grad(lambda x: power(x, 3))(2.0) == 24.0

    @tj.custom_vjp
    def dot(params, x):
        return tnp.sum(params["w"] * x) + params["b"]

    def dot_fwd(params, x):
        return dot(params, x), (params, x)

    def dot_bwd(res, g):
        params, x = res
        return {"w": g * x, "b": -g}, None  # b's cotangent negated: the rule is used
    dot.defvjp(dot_fwd, dot_bwd)
    params = {"w": np.array([1.0, 2.0]), "b": np.float64(0.5)}
    g = tj.grad(dot)(params, np.array([3.0, 4.0]))
    np.testing.assert_allclose(g["w"], [3.0, 4.0])
    assert g["b"] == -1.0

    @tj.custom_jvp
    def mul(x, y):
        return x * y
    mul.defjvps(lambda tx, ans, x, y: tx * y * 2.0, None)  # y gets no derivative
    gx, gy = tj.grad(mul, argnums=(0, 1))(3.0, 4.0)
    assert (gx, gy) == (8.0, 0.0)


def test_rule_errors_name_the_problem():
    @tj.custom_jvp
    def no_rule(x):
        return x
    with pytest.raises(TypeError, match="no JVP rule"):
        no_rule(1.0)

    @tj.custom_jvp
    def bad_shape(x):
        return x * 2.0

    @bad_shape.defjvp
    def _(p, t):
        return bad_shape(p[0]), tnp.sum(t[0])
    with pytest.raises(TypeError, match=r"tangent output of bad_shape's JVP rule.*shape \(\)"
                                        r".*expected \(3,\)"):
        tj.grad(lambda v: tnp.sum(bad_shape(v)))(np.ones(3))

    @tj.custom_vjp
    def bad_count(x, y):
        return x * y
    bad_count.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g,))
    with pytest.raises(TypeError, match="bwd rule of bad_count must return a tuple of 2"):
        tj.grad(bad_count)(1.0, 2.0)

    @tj.custom_vjp
    def undefined(x):
        return x
    with pytest.raises(TypeError, match="has no rules"):
        undefined(1.0)


def test_nn_logsumexp_gradient_where_every_entry_is_minus_infinity():
    import tracejit.nn as nn
    g = tj.grad(lambda v: nn.logsumexp(v))
    np.testing.assert_allclose(g(np.array([-np.inf, 0.0, 1000.0])), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(g(np.array([-np.inf, -np.inf])), [0.0, 0.0])  # no mass
    x = np.array([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
    check_grads(lambda v: nn.logsumexp(v, axis=1), (x,), order=2)
    check_grads(lambda v: nn.logsumexp(v, axis=0, keepdims=True), (x,), order=2)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda v: nn.logsumexp(v)))(x),
                               np.exp(x) / np.exp(x).sum())
