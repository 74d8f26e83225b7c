"""tracejit.nn: values against NumPy/SciPy references, numerical stability at extreme
inputs, gradients against hand derivations and finite differences, dtype preservation."""

import numpy as np
import pytest
from scipy import special

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.testing import check_grads


def traced(f, *args):
    """Evaluate `f` by tracing it to an IR (checked) and running the IR, so the traced path
    is exercised and not only the eager NumPy one."""
    ir = tj.check_ir(tj.make_ir(f)(*args))
    outs = eval_ir(ir, list(args))
    return np.asarray(outs[0]) if len(outs) == 1 else [np.asarray(o) for o in outs]


def checked_grad(f, *args, **kwargs):
    """tj.grad(f)(*args), after checking the gradient IR."""
    tj.check_ir(tj.make_ir(tj.grad(f, **kwargs))(*args))
    return tj.grad(f, **kwargs)(*args)


def np_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_sigmoid(x):
    return special.expit(x)


@pytest.fixture
def x3():
    return np.random.default_rng(3).standard_normal((3, 4, 5)) * 3.0


# -- values ----------------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
def test_logsumexp_values_match_scipy(x3, axis, keepdims):
    expected = special.logsumexp(x3, axis=axis, keepdims=keepdims)
    eager = nn.logsumexp(x3, axis=axis, keepdims=keepdims)
    through_ir = traced(lambda x: nn.logsumexp(x, axis=axis, keepdims=keepdims), x3)
    for got in (eager, through_ir):
        assert np.shape(got) == np.shape(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-13)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_and_log_softmax_values(x3, axis):
    expected = np_softmax(x3, axis)
    for got in (nn.softmax(x3, axis=axis), traced(lambda x: nn.softmax(x, axis=axis), x3)):
        np.testing.assert_allclose(got, expected, rtol=1e-13)
        np.testing.assert_allclose(np.sum(got, axis=axis), 1.0, rtol=1e-13)
    expected_log = special.log_softmax(x3, axis=axis)
    for got in (nn.log_softmax(x3, axis=axis),
                traced(lambda x: nn.log_softmax(x, axis=axis), x3)):
        np.testing.assert_allclose(got, expected_log, rtol=1e-12, atol=1e-13)


def test_softmax_default_axis_is_last(x3):
    np.testing.assert_allclose(nn.softmax(x3), np_softmax(x3, -1), rtol=1e-13)
    np.testing.assert_allclose(nn.log_softmax(x3), special.log_softmax(x3, axis=-1),
                               rtol=1e-12, atol=1e-13)


def test_elementwise_activations_values(x3):
    cases = [
        (nn.sigmoid, np_sigmoid(x3)),
        (nn.relu, np.maximum(x3, 0.0)),
        (nn.softplus, np.logaddexp(x3, 0.0)),
    ]
    for f, expected in cases:
        np.testing.assert_allclose(f(x3), expected, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(traced(f, x3), expected, rtol=1e-14, atol=1e-300)


def test_relu_of_zero_and_of_integers():
    assert nn.relu(np.array([0.0]))[0] == 0.0
    r = nn.relu(np.array([-2, 0, 3]))
    np.testing.assert_array_equal(r, [0, 0, 3])


# -- numerical stability ---------------------------------------------------------------------

BIG = np.array([1000.0, -1000.0, 0.0, 999.0, -999.5])


def test_logsumexp_of_huge_and_tiny_values():
    assert nn.logsumexp(np.array([1000.0, 1000.0])) == pytest.approx(1000.0 + np.log(2.0),
                                                                      rel=1e-15)
    assert nn.logsumexp(np.array([-1000.0, -1000.0])) == pytest.approx(-1000.0 + np.log(2.0),
                                                                        rel=1e-15)
    assert nn.logsumexp(np.array([1000.0, -1000.0])) == 1000.0
    x = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1001.0, -1002.0]])
    for axis in (None, 0, 1):
        expected = special.logsumexp(x, axis=axis)
        got = traced(lambda x, axis=axis: nn.logsumexp(x, axis=axis), x)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_logsumexp_of_infinities_matches_scipy():
    for row in ([-np.inf, -np.inf], [-np.inf, 0.0], [np.inf, 1.0], [-np.inf, 2.0, 3.0]):
        x = np.array(row)
        got = traced(lambda x: nn.logsumexp(x), x)
        expected = special.logsumexp(x)
        if np.isinf(expected):
            assert got == expected
        else:
            assert got == pytest.approx(expected, rel=1e-15)
    # -inf entries contribute no gradient; the rest gets the softmax weights.
    g = checked_grad(lambda x: nn.logsumexp(x), np.array([-np.inf, 0.0, np.log(3.0)]))
    np.testing.assert_allclose(g, [0.0, 0.25, 0.75], rtol=1e-15)


def test_logsumexp_gradient_at_huge_values_is_softmax():
    x = np.array([1000.0, 1000.0, -1000.0, 999.0])
    g = checked_grad(lambda x: nn.logsumexp(x), x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np_softmax(x), rtol=1e-14, atol=1e-300)
    assert g.sum() == pytest.approx(1.0, rel=1e-15)


def test_softmax_and_log_softmax_at_huge_values():
    x = np.stack([BIG, -BIG, BIG - 2000.0])
    s = traced(lambda x: nn.softmax(x, axis=1), x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, np_softmax(x, 1), rtol=1e-14, atol=1e-300)
    ls = traced(lambda x: nn.log_softmax(x, axis=1), x)
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls, special.log_softmax(x, axis=1), rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(ls[0, :3], [-np.log1p(np.exp(-1.0)), -2000.0 - np.log1p(
        np.exp(-1.0)), -1000.0 - np.log1p(np.exp(-1.0))], rtol=1e-14)
    # Gradients of a weighted sum of log_softmax: w - softmax * sum(w), finite.
    w = np.arange(15.0).reshape(3, 5) - 7.0
    g = checked_grad(lambda x: tnp.sum(nn.log_softmax(x, axis=1) * w), x)
    expected = w - np_softmax(x, 1) * w.sum(axis=1, keepdims=True)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, expected, rtol=1e-13, atol=1e-12)
    # and of softmax: s * (w - sum(w * s)).
    g = checked_grad(lambda x: tnp.sum(nn.softmax(x, axis=1) * w), x)
    sm = np_softmax(x, 1)
    expected = sm * (w - np.sum(w * sm, axis=1, keepdims=True))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, expected, rtol=1e-13, atol=1e-12)


def test_sigmoid_and_softplus_at_huge_values():
    s = traced(nn.sigmoid, BIG)
    np.testing.assert_allclose(s, np_sigmoid(BIG), rtol=1e-15, atol=0)
    assert s[0] == 1.0 and s[1] == pytest.approx(np.exp(-1000.0), abs=1e-300)
    sp = traced(nn.softplus, BIG)
    assert np.all(np.isfinite(sp))
    np.testing.assert_allclose(sp, np.logaddexp(BIG, 0.0), rtol=1e-15)
    assert sp[0] == 1000.0
    g_sig = checked_grad(lambda x: tnp.sum(nn.sigmoid(x)), BIG)
    s_ref = np_sigmoid(BIG)
    assert np.all(np.isfinite(g_sig))
    np.testing.assert_allclose(g_sig, s_ref * (1.0 - s_ref), rtol=1e-13, atol=1e-300)
    assert g_sig[0] == 0.0 and g_sig[2] == 0.25
    g_sp = checked_grad(lambda x: tnp.sum(nn.softplus(x)), BIG)
    assert np.all(np.isfinite(g_sp))
    np.testing.assert_allclose(g_sp, s_ref, rtol=1e-14, atol=1e-300)
    assert g_sp[0] == 1.0 and g_sp[2] == 0.5


def test_sigmoid_of_a_python_float_differentiates():
    """Transforms evaluate their IRs on the arguments as given: the logistic primitive's
    NumPy implementation gets a Python float."""
    s = 1.0 / (1.0 + np.exp(-0.3))
    assert tj.grad(nn.sigmoid)(0.3) == pytest.approx(s * (1 - s), rel=1e-15)
    out, t = tj.jvp(nn.sigmoid, (0.3,), (2.0,))
    assert out == pytest.approx(s, rel=1e-15) and t == pytest.approx(2 * s * (1 - s), rel=1e-15)
    assert tj.vjp(nn.sigmoid, 0.3)[0] == pytest.approx(s, rel=1e-15)
    g32 = tj.grad(lambda x: nn.sigmoid(x) * 2.0)(np.float32(0.3))
    assert g32.dtype == np.float32


def test_relu_at_huge_values_and_its_gradient():
    r = traced(nn.relu, BIG)
    np.testing.assert_array_equal(r, np.maximum(BIG, 0.0))
    g = checked_grad(lambda x: tnp.sum(nn.relu(x) * 3.0), BIG)
    np.testing.assert_array_equal(g, np.where(BIG > 0, 3.0, 0.0))


# -- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 1, -1, (0, 2)])
def test_logsumexp_gradient_is_softmax_over_axis(x3, axis, keepdims):
    w = np.random.default_rng(5).standard_normal(
        special.logsumexp(x3, axis=axis, keepdims=keepdims).shape)
    g = checked_grad(lambda x: tnp.sum(nn.logsumexp(x, axis=axis, keepdims=keepdims) * w), x3)
    axes = tuple(range(3)) if axis is None else axis
    weights = np.exp(x3 - special.logsumexp(x3, axis=axes, keepdims=True))
    w_full = w if keepdims or axis is None else np.expand_dims(w, axes)
    np.testing.assert_allclose(g, weights * w_full, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("axis", [None, 0, (0, 2), -1])
def test_logsumexp_check_grads_second_order(axis):
    x = np.random.default_rng(7).standard_normal((2, 3, 2))
    check_grads(lambda x: nn.logsumexp(x, axis=axis), (x,), order=2)
    check_grads(lambda x: nn.logsumexp(x, axis=axis, keepdims=True), (x,), order=2)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
def test_softmaxes_check_grads_second_order(name, axis):
    f = getattr(nn, name)
    x = np.random.default_rng(8).standard_normal((3, 4))
    check_grads(lambda x: f(x, axis=axis), (x,), order=2)


def test_activations_check_grads_second_order():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4)) * 2.0
    check_grads(nn.sigmoid, (x,), order=2)
    check_grads(nn.softplus, (x,), order=2)
    # relu away from its kink at 0
    x_away = np.where(np.abs(x) < 0.2, 0.5, x)
    check_grads(nn.relu, (x_away,), order=2)


def test_activation_gradients_match_hand_derivations():
    x = np.linspace(-6.0, 6.0, 13) + 0.1
    s = np_sigmoid(x)
    np.testing.assert_allclose(checked_grad(lambda x: tnp.sum(nn.sigmoid(x)), x),
                               s * (1 - s), rtol=1e-13)
    np.testing.assert_allclose(checked_grad(lambda x: tnp.sum(nn.softplus(x)), x),
                               s, rtol=1e-14)
    np.testing.assert_array_equal(checked_grad(lambda x: tnp.sum(nn.relu(x)), x),
                                  (x > 0).astype(float))
    # second derivatives: sigmoid'' = s(1-s)(1-2s), softplus'' = s(1-s)
    d2 = tj.grad(lambda x: tnp.sum(tj.grad(lambda y: tnp.sum(nn.sigmoid(y)))(x)))(x)
    np.testing.assert_allclose(d2, s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-15)
    d2 = tj.grad(lambda x: tnp.sum(tj.grad(lambda y: tnp.sum(nn.softplus(y)))(x)))(x)
    np.testing.assert_allclose(d2, s * (1 - s), rtol=1e-12)


def test_relu_derivative_at_zero_is_zero():
    g = checked_grad(lambda x: tnp.sum(nn.relu(x)), np.array([0.0, -0.0, 1.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_hessian_of_logsumexp_is_diag_p_minus_ppT():
    x = np.array([0.3, -1.2, 2.0, 0.0])
    h = tj.hessian(lambda x: nn.logsumexp(x))(x)
    p = np_softmax(x)
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


# -- dtypes ----------------------------------------------------------------------------------

FUNCS = {
    "logsumexp": lambda x: nn.logsumexp(x, axis=1),
    "logsumexp_all": lambda x: nn.logsumexp(x),
    "logsumexp_keep": lambda x: nn.logsumexp(x, axis=(0, 1), keepdims=True),
    "softmax": nn.softmax,
    "log_softmax": lambda x: nn.log_softmax(x, axis=0),
    "sigmoid": nn.sigmoid,
    "relu": nn.relu,
    "softplus": nn.softplus,
}


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_float32_stays_float32(name):
    f = FUNCS[name]
    x = (np.random.default_rng(11).standard_normal((3, 4)) * 3.0).astype(np.float32)
    assert np.asarray(f(x)).dtype == np.float32
    assert traced(f, x).dtype == np.float32
    ir = tj.check_ir(tj.make_ir(f)(x))
    assert all(a.dtype == np.float32 for a in ir.out_avals)
    loss = lambda x: tnp.sum(f(x))
    gir = tj.check_ir(tj.make_ir(tj.grad(loss))(x))
    assert "f64" not in str(gir), str(gir)
    g = tj.grad(loss)(x)
    assert g.dtype == np.float32
    # and the float32 gradient agrees with the float64 one to float32 precision
    g64 = tj.grad(loss)(x.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_float32_huge_inputs_are_finite(name):
    f = FUNCS[name]
    x = np.array([[80.0, -80.0, 0.0, 50.0], [-100.0, 100.0, 1.0, -1.0]], np.float32)
    out = traced(f, x)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    g = tj.grad(lambda x: tnp.sum(f(x)))(x)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))


def test_float32_check_grads_first_order():
    x = np.random.default_rng(12).standard_normal((3, 4)).astype(np.float32)
    check_grads(lambda x: nn.logsumexp(x, axis=1), (x,), order=1)
    check_grads(lambda x: nn.log_softmax(x), (x,), order=1)
    check_grads(nn.sigmoid, (x,), order=1)
    check_grads(nn.softplus, (x,), order=1)


def test_log_softmax_with_minus_infinity_entries():
    x = np.array([[-np.inf, 0.0, np.log(3.0)], [1000.0, -np.inf, 1000.0]])
    got = traced(lambda x: nn.log_softmax(x, axis=1), x)
    np.testing.assert_allclose(got, special.log_softmax(x, axis=1), rtol=1e-15)
    assert got[0, 0] == -np.inf and got[1, 1] == -np.inf
    np.testing.assert_allclose(got[1, [0, 2]], -np.log(2.0), rtol=1e-15)
