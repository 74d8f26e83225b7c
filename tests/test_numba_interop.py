"""Users' @numba.njit code inside traced programs: numba_call and elementwise."""

import math

import numba
import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads


@numba.njit
def row_sq_sums(x):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        s = 0.0
        for j in range(x.shape[1]):
            s += x[i, j] * x[i, j]
        out[i] = s
    return out


@numba.njit
def min_and_max(x):
    return np.array([x.min()]), np.array([x.max()])


@numba.njit
def total(x):
    return x.sum()


@tj.custom_vjp
def rss(x):
    return tj.numba_call(row_sq_sums, x, out=tj.ShapeDtype((x.shape[0],), np.float64))


rss.defvjp(lambda x: (rss(x), x), lambda x, g: (2.0 * x * g[:, None],))


@tj.custom_jvp
def rss_jvp(x):
    return tj.numba_call(row_sq_sums, x, out=tj.ShapeDtype((x.shape[0],), np.float64))


@rss_jvp.defjvp
def _(primals, tangents):
    (x,), (t,) = primals, tangents
    return rss_jvp(x), tnp.sum(2.0 * x * t, axis=1)


X = np.arange(12.0).reshape(4, 3) / 7.0 - 0.5
XS = np.stack([X, 2.0 * X, -X])


def loss(x):
    return tnp.sum(tnp.sin(rss(x)))


def loss_hand_grad(x):
    return np.cos((x ** 2).sum(1))[:, None] * 2 * x


def test_numba_call_runs_interpreted_and_compiled():
    np.testing.assert_allclose(rss(X), (X ** 2).sum(1))
    np.testing.assert_allclose(tj.jit(rss)(X), (X ** 2).sum(1))
    lo, hi = tj.numba_call(min_and_max, X, out=(tj.ShapeDtype((1,), np.float64),) * 2)
    assert (lo[0], hi[0]) == (X.min(), X.max())
    f = tj.jit(lambda x: tj.numba_call(min_and_max, x * 2.0,
                                       out=(tj.ShapeDtype((1,), np.float64),) * 2))
    lo, hi = f(X)
    assert (lo[0], hi[0]) == (2 * X.min(), 2 * X.max())
    assert tj.jit(lambda x: tj.numba_call(total, x, out=tj.ShapeDtype((), np.float64)) + 1.0)(
        X) == pytest.approx(X.sum() + 1.0)
    source = tj.jit(rss).lower(X).source
    assert "_tjx_" in source and "_tj_lookup" in source  # called from the generated code


def test_numba_call_differentiates_through_the_users_rules():
    np.testing.assert_allclose(tj.grad(loss)(X), loss_hand_grad(X))
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(X), loss_hand_grad(X))
    g = tj.grad(lambda x: tnp.sum(tnp.sin(rss_jvp(x))))(X)
    np.testing.assert_allclose(g, loss_hand_grad(X))
    check_grads(lambda x: tnp.sin(rss_jvp(x)), (X,), order=1)


def test_numba_call_under_vmap_runs_once_per_lane():
    np.testing.assert_allclose(tj.vmap(rss)(XS), (XS ** 2).sum(2))
    per = tj.jit(tj.vmap(tj.grad(loss)))(XS)
    for k in range(3):
        np.testing.assert_allclose(per[k], loss_hand_grad(XS[k]))
    # in_axes None: the kernel sees the unbatched operand whole in every lane
    both = tj.vmap(lambda s, x: rss(x * s), in_axes=(0, None))(np.array([1.0, 2.0]), X)
    np.testing.assert_allclose(both, np.stack([(X ** 2).sum(1), (4 * X ** 2).sum(1)]))


def test_numba_call_errors():
    with pytest.raises(TypeError, match=r"numba_call\(row_sq_sums\) has no derivative.*"
                                        "custom_jvp or tj.custom_vjp"):
        tj.grad(lambda x: tnp.sum(tj.numba_call(row_sq_sums, x,
                                                out=tj.ShapeDtype((4,), np.float64))))(X)
    with pytest.raises(TypeError, match=r"output 0 is f64\[4\], but `out` declares f64\[5\]"):
        tj.numba_call(row_sq_sums, X, out=tj.ShapeDtype((5,), np.float64))
    bad = tj.jit(lambda x: tj.numba_call(row_sq_sums, x, out=tj.ShapeDtype((5,), np.float64)))
    with pytest.raises(ValueError, match=r"does not have the declared shape \(5,\)"):
        bad(X)
    with pytest.raises(TypeError, match="expected a function decorated with @numba.njit"):
        tj.numba_call(lambda x: x, X, out=tj.ShapeDtype((4,), np.float64))


@numba.njit
def softclip(x, c):
    return c * math.tanh(x / c)


@numba.njit
def relu_branch(x):
    if x > 0:
        return x
    return 0.0


SOFTCLIP = tj.elementwise(softclip)
XV = np.linspace(-3.0, 3.0, 13)


def test_elementwise_fuses_and_differentiates_its_python_body():
    np.testing.assert_allclose(SOFTCLIP(XV, 2.0), 2 * np.tanh(XV / 2))
    dsc = 1 - np.tanh(XV / 2) ** 2
    np.testing.assert_allclose(tj.grad(lambda x: tnp.sum(SOFTCLIP(x, 2.0)))(XV), dsc)
    check_grads(lambda x, c: SOFTCLIP(x, c), (XV, np.full(13, 1.5)), order=2)
    f = lambda x: tnp.sum(SOFTCLIP(x, 2.0) * x)  # noqa: E731
    np.testing.assert_allclose(tj.jit(tj.grad(f))(XV), dsc * XV + 2 * np.tanh(XV / 2))
    low = tj.jit(f).lower(XV)
    assert len(low.plan.kernels) == 1  # the kernel call is inside the one fused loop
    assert "_tjx_" in low.source
    np.testing.assert_allclose(tj.vmap(tj.grad(lambda x: SOFTCLIP(x, 2.0)))(XV), dsc)
    x32 = XV.astype(np.float32)
    out32 = tj.jit(lambda x: SOFTCLIP(x, 2.0))(x32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, 2 * np.tanh(x32 / 2), rtol=1e-6)


def test_elementwise_that_cannot_be_traced_asks_for_a_rule():
    relu = tj.elementwise(relu_branch)
    np.testing.assert_allclose(relu(XV), np.maximum(XV, 0))
    np.testing.assert_allclose(tj.jit(relu)(XV), np.maximum(XV, 0))
    with pytest.raises(TypeError, match=r"elementwise\(relu_branch\).*custom_jvp"):
        tj.grad(lambda x: tnp.sum(relu(x)))(XV)

    @tj.custom_jvp
    def relu_with_rule(x):
        return relu(x)

    @relu_with_rule.defjvp
    def _(p, t):
        return relu_with_rule(p[0]), tnp.where(p[0] > 0, t[0], 0.0)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda x: tnp.sum(relu_with_rule(x))))(XV),
                               (XV > 0).astype(float))
