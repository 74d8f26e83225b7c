"""The benchmark losses of /work/shared/BENCHMARKS.md (at test-sized shapes), written as a
NumPy user would write them, differentiated by tracejit and compared with gradients derived
by hand in plain NumPy (and their loss values with a NumPy evaluation)."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp

RTOL64 = 1e-10
RTOL32 = 1e-4


def assert_rel(actual, expected, rtol):
    """Elementwise relative error `rtol`, with an absolute floor of rtol * max|expected| for
    entries that cancel to (near) zero; and the same dtype and shape."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    assert scale > 0.0, "a vacuous comparison: the reference is all zeros"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def grad_ir_checked(f, *args, argnums=0):
    """The gradient (and value-and-gradient) IRs pass the checker."""
    tj.check_ir(tj.make_ir(tj.grad(f, argnums=argnums))(*args))
    tj.check_ir(tj.make_ir(tj.value_and_grad(f, argnums=argnums))(*args))


# -- W1 elementwise --------------------------------------------------------------------------

def w1_tnp(x):
    return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))


def w1_np(x):
    return np.sum(np.tanh(x) * np.sin(x) + np.exp(-0.5 * x * x))


def w1_hand(x):
    t = np.tanh(x)
    value = np.sum(t * np.sin(x) + np.exp(-0.5 * x * x))
    grad = (1.0 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)
    return value, grad


@pytest.mark.parametrize("f", [w1_tnp, w1_np], ids=["tnp", "np"])
def test_w1_elementwise(f):
    x = np.random.default_rng(1).standard_normal(1000) * 2.0
    value, grad = w1_hand(x)
    v, g = tj.value_and_grad(f)(x)
    assert g.dtype == np.float64 and np.ndim(v) == 0
    assert v == pytest.approx(value, rel=1e-13)
    assert_rel(g, grad, RTOL64)
    assert_rel(tj.grad(f)(x), grad, RTOL64)
    grad_ir_checked(f, x)


def test_w6_small_w1_and_repeated_calls():
    """W6: W1 at n = 16, called repeatedly on new data with one traced signature."""
    rng = np.random.default_rng(6)
    g_fn = tj.grad(w1_tnp)
    for _ in range(3):
        x = rng.standard_normal(16)
        assert_rel(g_fn(x), w1_hand(x)[1], RTOL64)


# -- W2 logistic regression ------------------------------------------------------------------

def logreg_np(w, b, X, y):
    return np.mean(np.logaddexp(0, -y * (X @ w + b)))


def logreg_tnp(w, b, X, y):
    return tnp.mean(tnp.logaddexp(0.0, -y * (tnp.matmul(X, w) + b)))


def logreg_hand(w, b, X, y):
    z = -y * (X @ w + b)
    value = np.mean(np.logaddexp(0.0, z))
    s = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid(z), stable
    dz = s / len(y)
    dm = -y * dz  # d loss / d (X @ w + b)
    return value, X.T @ dm, np.sum(dm)


@pytest.fixture(scope="module")
def logreg_data():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((2000, 100))
    y = np.where(rng.random(2000) < 0.5, -1.0, 1.0)
    w = rng.standard_normal(100) * 0.2
    return w, np.float64(0.3), X, y


@pytest.mark.parametrize("f", [logreg_np, logreg_tnp], ids=["np", "tnp"])
def test_w2_logreg(f, logreg_data):
    w, b, X, y = logreg_data
    value, gw_ref, gb_ref = logreg_hand(w, b, X, y)
    v, (gw, gb) = tj.value_and_grad(f, argnums=(0, 1))(w, b, X, y)
    assert v == pytest.approx(value, rel=1e-13)
    assert gw.shape == (100,) and np.shape(gb) == ()
    assert_rel(gw, gw_ref, RTOL64)
    assert_rel(gb, gb_ref, RTOL64)
    gw2, gb2 = tj.grad(f, argnums=(0, 1))(w, b, X, y)
    assert_rel(gw2, gw_ref, RTOL64)
    assert_rel(gb2, gb_ref, RTOL64)
    grad_ir_checked(f, w, b, X, y, argnums=(0, 1))


def test_w2_logreg_with_python_float_bias_and_large_margins(logreg_data):
    w, _, X, y = logreg_data
    w = w * 40.0  # margins in the hundreds: logaddexp must not overflow
    value, gw_ref, gb_ref = logreg_hand(w, 0.25, X, y)
    assert np.isfinite(value)
    v, (gw, gb) = tj.value_and_grad(logreg_np, argnums=(0, 1))(w, 0.25, X, y)
    assert v == pytest.approx(value, rel=1e-13)
    assert np.all(np.isfinite(gw)) and np.isfinite(gb)
    assert_rel(gw, gw_ref, RTOL64)
    assert_rel(gb, gb_ref, RTOL64)


def test_w9_per_example_logreg_gradients(logreg_data):
    """W9's per-example gradients, one example at a time (no vmap needed to check them)."""
    w, b, X, y = logreg_data
    per_example = lambda w, x, y: np.logaddexp(0.0, -y * (x @ w + b))
    g_fn = tj.grad(per_example)
    for i in (0, 7, 1999):
        _, gw_ref, _ = logreg_hand(w, b, X[i:i + 1], y[i:i + 1])
        assert_rel(g_fn(w, X[i], y[i]), gw_ref, RTOL64)


# -- W3 mlp ----------------------------------------------------------------------------------

def mlp_loss(params, x, labels):
    h = tnp.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    logp = nn.log_softmax(logits, axis=1)
    return -tnp.mean(logp[tnp.arange(x.shape[0]), labels])


def mlp_loss_np(params, x, labels):
    """The same loss with plain NumPy calls and a hand-written stable log-softmax."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), labels])


def mlp_hand(params, x, labels):
    """Loss and gradient in float64, derived by hand."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    x = x.astype(np.float64)
    n = x.shape[0]
    h = np.tanh(x @ p["W1"] + p["b1"])
    z = h @ p["W2"] + p["b2"]
    zs = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(zs).sum(axis=1, keepdims=True))
    logp = zs - lse
    value = -np.mean(logp[np.arange(n), labels])
    dz = np.exp(logp)
    dz[np.arange(n), labels] -= 1.0
    dz /= n
    dh = dz @ p["W2"].T
    da = dh * (1.0 - h * h)
    grads = {"W1": x.T @ da, "b1": da.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}
    return value, grads


@pytest.fixture(scope="module")
def mlp_data():
    rng = np.random.default_rng(3)
    params = {
        "W1": rng.standard_normal((784, 256)) / np.sqrt(784),
        "b1": rng.standard_normal(256) * 0.1,
        "W2": rng.standard_normal((256, 10)) / np.sqrt(256),
        "b2": rng.standard_normal(10) * 0.1,
    }
    x = rng.random((64, 784))
    labels = rng.integers(0, 10, size=64)
    return params, x, labels


@pytest.mark.parametrize("f", [mlp_loss, mlp_loss_np], ids=["tnp", "np"])
def test_w3_mlp_float32(f, mlp_data):
    params, x, labels = mlp_data
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    x32 = x.astype(np.float32)
    value, grads = mlp_hand(p32, x32, labels)
    v, g = tj.value_and_grad(f)(p32, x32, labels)
    assert isinstance(g, dict) and set(g) == {"W1", "b1", "W2", "b2"}
    assert np.asarray(v).dtype == np.float32
    assert v == pytest.approx(value, rel=RTOL32)
    for k in g:
        assert g[k].dtype == np.float32 and g[k].shape == p32[k].shape
        assert_rel(g[k], grads[k], RTOL32)
    ir = tj.check_ir(tj.make_ir(tj.grad(f))(p32, x32, labels))
    assert "f64" not in str(ir)


@pytest.mark.parametrize("f", [mlp_loss, mlp_loss_np], ids=["tnp", "np"])
def test_w3_mlp_float64(f, mlp_data):
    params, x, labels = mlp_data
    value, grads = mlp_hand(params, x, labels)
    v, g = tj.value_and_grad(f)(params, x, labels)
    assert v == pytest.approx(value, rel=1e-13)
    for k in g:
        assert g[k].dtype == np.float64
        assert_rel(g[k], grads[k], RTOL64)
    g2 = tj.grad(f)(params, x, labels)
    for k in g2:
        assert_rel(g2[k], grads[k], RTOL64)
    grad_ir_checked(f, params, x, labels)


# -- W4 rosenbrock ---------------------------------------------------------------------------

def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosenbrock_tnp(x):
    return tnp.sum(100.0 * tnp.square(x[1:] - tnp.square(x[:-1])) + tnp.square(1.0 - x[:-1]))


def rosenbrock_hand(x):
    a, b = x[:-1], x[1:]
    r = b - a * a
    value = np.sum(100.0 * r * r + (1.0 - a) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * r - 2.0 * (1.0 - a)
    g[1:] += 200.0 * r
    return value, g


@pytest.mark.parametrize("f", [rosenbrock, rosenbrock_tnp], ids=["np", "tnp"])
def test_w4_rosenbrock(f):
    x = np.random.default_rng(4).uniform(-2.0, 2.0, 1000)
    value, grad = rosenbrock_hand(x)
    v, g = tj.value_and_grad(f)(x)
    assert v == pytest.approx(value, rel=1e-13)
    assert_rel(g, grad, RTOL64)
    assert_rel(tj.grad(f)(x), grad, RTOL64)
    grad_ir_checked(f, x)


def test_w4_rosenbrock_minimum_has_zero_gradient():
    x = np.ones(1000)
    v, g = tj.value_and_grad(rosenbrock)(x)
    assert v == 0.0
    np.testing.assert_array_equal(g, np.zeros(1000))


# -- W8 softmax cross-entropy ----------------------------------------------------------------

def xent(logits, labels):
    return tnp.mean(nn.logsumexp(logits, 1) - logits[tnp.arange(logits.shape[0]), labels])


def xent_np(logits, labels):
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1)) + m[:, 0]
    return np.mean(lse - logits[np.arange(logits.shape[0]), labels])


def xent_hand(logits, labels):
    n = logits.shape[0]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    lse = np.log(e.sum(axis=1)) + m[:, 0]
    value = np.mean(lse - logits[np.arange(n), labels])
    g = e / e.sum(axis=1, keepdims=True)
    g[np.arange(n), labels] -= 1.0
    return value, g / n


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("f", [xent, xent_np], ids=["nn", "np"])
def test_w8_softmax_xent(f, scale):
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((64, 100)) * scale
    labels = rng.integers(0, 100, size=64)
    labels[:3] = [0, 99, 0]  # repeated and edge labels
    value, grad = xent_hand(logits, labels)
    v, g = tj.value_and_grad(f)(logits, labels)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    assert v == pytest.approx(value, rel=1e-13)
    assert_rel(g, grad, RTOL64)
    assert_rel(tj.grad(f)(logits, labels), grad, RTOL64)
    grad_ir_checked(f, logits, labels)


def test_w8_integer_labels_are_not_differentiated():
    logits = np.zeros((2, 3))
    labels = np.array([0, 2])
    with pytest.raises(TypeError, match="floating-point"):
        tj.grad(xent, argnums=1)(logits, labels)
    g = tj.grad(xent)(logits, labels)
    assert_rel(g, np.array([[-1 / 3, 1 / 6, 1 / 6], [1 / 6, 1 / 6, -1 / 3]]), 1e-14)
