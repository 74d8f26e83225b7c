"""The transform API: jvp, linearize, vjp, grad, value_and_grad, jacfwd, jacrev, hessian,
stop_gradient, their compositions, trace caching, IR printing, and check_grads itself.

Every derivative is compared with a hand derivation or with central finite differences
(`check_grads`), never only with another derivative computed by tracejit.
"""

import numpy as np
import pytest
from conftest import checked_ir
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.errors import IRCheckError
from tracejit.ir import ShapedArray
from tracejit.testing import check_grads

X3 = np.array([0.3, -0.7, 1.1])


def close(actual, expected, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol)


# -- jvp / linearize / vjp ---------------------------------------------------------------------

def test_jvp_matches_hand_derivative():
    x, v = X3, np.array([1.0, 2.0, -1.0])
    y, ty = tj.jvp(lambda x: tnp.sin(x) * x, (x,), (v,))
    close(y, np.sin(x) * x)
    close(ty, (np.cos(x) * x + np.sin(x)) * v)


def test_jvp_two_arguments_and_python_scalars():
    x, y = 1.5, -0.5
    out, t = tj.jvp(lambda a, b: a * a * b, (x, y), (1.0, 0.0))
    assert out == pytest.approx(x * x * y)
    assert t == pytest.approx(2 * x * y)
    _, t = tj.jvp(lambda a, b: a * a * b, (x, y), (0.0, 1.0))
    assert t == pytest.approx(x * x)


def test_jvp_with_integer_argument_leaves_it_undifferentiated():
    y, ty = tj.jvp(lambda x, n: x * n, (X3, 3), (np.ones(3), 0))
    close(y, 3 * X3)
    close(ty, np.full(3, 3.0))


def test_jvp_against_finite_differences():
    f = lambda x, w: tnp.tanh(x @ w) * tnp.exp(-x[0])
    x, w = np.array([0.2, -0.4]), np.array([[1.0, -0.5], [0.3, 0.8]])
    check_grads(f, (x, w), order=1, modes=("fwd",))


def test_linearize_value_and_f_jvp_match_hand_derivative():
    f = lambda x: tnp.exp(x) * tnp.cos(x)
    y, f_jvp = tj.linearize(f, X3)
    close(y, np.exp(X3) * np.cos(X3))
    deriv = np.exp(X3) * (np.cos(X3) - np.sin(X3))
    for v in (np.ones(3), np.array([0.5, -2.0, 3.0])):
        close(f_jvp(v), deriv * v)
        # ... and agrees with jvp at the same point.
        close(f_jvp(v), tj.jvp(f, (X3,), (v,))[1])


def test_linearize_f_jvp_reuses_residuals_without_rerunning_f():
    calls = []

    def f(x):
        calls.append(1)
        return tnp.tanh(x) * tnp.sin(x)

    _, f_jvp = tj.linearize(f, X3)
    n = len(calls)
    for _ in range(3):
        f_jvp(np.ones(3))
    assert len(calls) == n  # f is not traced or run again
    # The linear program only multiplies/adds stored residuals: no tanh, no sin/cos.
    ir = checked_ir(f_jvp, np.ones(3))
    prims = {e.prim.name for e in ir.eqns}
    assert prims and not prims & {"tanh", "sin", "cos", "exp"}, str(ir)
    t = np.array([1.0, -1.0, 2.0])
    expected = ((1 - np.tanh(X3) ** 2) * np.sin(X3) + np.tanh(X3) * np.cos(X3)) * t
    close(f_jvp(t), expected)


def test_linearize_pytree_primals():
    f = lambda d: d["a"] * d["b"]
    y, f_jvp = tj.linearize(f, {"a": X3, "b": 2.0})
    close(y, 2.0 * X3)
    close(f_jvp({"a": np.ones(3), "b": 0.0}), np.full(3, 2.0))
    close(f_jvp({"a": np.zeros(3), "b": 1.0}), X3)


def test_vjp_matches_hand_derivative():
    f = lambda x: tnp.sin(x) * x
    y, f_vjp = tj.vjp(f, X3)
    close(y, np.sin(X3) * X3)
    u = np.array([1.0, -2.0, 0.5])
    (g,) = f_vjp(u)
    close(g, u * (np.cos(X3) * X3 + np.sin(X3)))


def test_vjp_two_arguments_returns_one_cotangent_per_primal():
    a, b = np.array([1.0, 2.0]), np.array([[0.5, -1.0], [2.0, 3.0], [1.0, 0.0]])
    y, f_vjp = tj.vjp(lambda a, b: b @ a, a, b)
    close(y, b @ a)
    u = np.array([1.0, 0.5, -1.0])
    ga, gb = f_vjp(u)
    close(ga, b.T @ u)
    close(gb, np.outer(u, a))


def test_vjp_has_aux():
    def f(x):
        return tnp.sum(x ** 2), {"mean": tnp.mean(x), "raw": x}

    y, f_vjp, aux = tj.vjp(f, X3, has_aux=True)
    assert y == pytest.approx(np.sum(X3 ** 2))
    assert aux["mean"] == pytest.approx(np.mean(X3))
    close(aux["raw"], X3)
    (g,) = f_vjp(1.0)
    close(g, 2 * X3)


def test_vjp_against_finite_differences():
    f = lambda x, y: (tnp.sin(x) * y[:3], tnp.sum(tnp.exp(y) * 0.1))
    check_grads(f, (X3, np.array([0.1, 0.2, -0.3, 0.4])), order=1, modes=("rev",))


# -- grad / value_and_grad ---------------------------------------------------------------------

def poly(x, y):
    return tnp.sum(x ** 2 * y) + tnp.sum(y ** 3)


def test_grad_argnums_int():
    x, y = X3, np.array([2.0, -1.0, 0.5])
    close(tj.grad(poly)(x, y), 2 * x * y)
    close(tj.grad(poly, argnums=1)(x, y), x ** 2 + 3 * y ** 2)
    close(tj.grad(poly, argnums=-1)(x, y), x ** 2 + 3 * y ** 2)


def test_grad_argnums_tuple_returns_tuple():
    x, y = X3, np.array([2.0, -1.0, 0.5])
    g = tj.grad(poly, argnums=(0, 1))(x, y)
    assert isinstance(g, tuple) and len(g) == 2
    close(g[0], 2 * x * y)
    close(g[1], x ** 2 + 3 * y ** 2)
    g1 = tj.grad(poly, argnums=(1,))(x, y)
    assert isinstance(g1, tuple) and len(g1) == 1
    close(g1[0], x ** 2 + 3 * y ** 2)


def test_value_and_grad_int_and_tuple_argnums():
    x, y = X3, np.array([2.0, -1.0, 0.5])
    expected_v = np.sum(x ** 2 * y) + np.sum(y ** 3)
    v, g = tj.value_and_grad(poly)(x, y)
    assert v == pytest.approx(expected_v)
    close(g, 2 * x * y)
    v, (gx, gy) = tj.value_and_grad(poly, argnums=(0, 1))(x, y)
    assert v == pytest.approx(expected_v)
    close(gx, 2 * x * y)
    close(gy, x ** 2 + 3 * y ** 2)


def test_grad_python_scalar():
    g = tj.grad(lambda x: x * x * x)(2.0)
    assert float(g) == pytest.approx(12.0)
    assert np.ndim(g) == 0


def test_grad_has_aux():
    def f(x, y):
        loss = tnp.sum(tnp.sin(x) * y)
        return loss, {"loss": loss, "x2": x * 2}

    y = np.array([1.0, 2.0, 3.0])
    g, aux = tj.grad(f, has_aux=True)(X3, y)
    close(g, np.cos(X3) * y)
    assert aux["loss"] == pytest.approx(np.sum(np.sin(X3) * y))
    close(aux["x2"], 2 * X3)


def test_value_and_grad_has_aux():
    def f(x):
        return tnp.sum(x ** 3), tnp.max(x)

    (v, aux), g = tj.value_and_grad(f, has_aux=True)(X3)
    assert v == pytest.approx(np.sum(X3 ** 3))
    assert aux == pytest.approx(np.max(X3))
    close(g, 3 * X3 ** 2)
    (v, aux), (g0,) = tj.value_and_grad(f, argnums=(0,), has_aux=True)(X3)
    close(g0, 3 * X3 ** 2)


def test_has_aux_function_shared_by_vjp_grad_and_value_and_grad():
    def f(x, scale=1.0):
        return tnp.sum(x ** 2) * scale, x * 3.0

    y, f_vjp, aux = tj.vjp(f, X3, has_aux=True)
    close(f_vjp(1.0)[0], 2 * X3)
    g, aux = tj.grad(f, has_aux=True)(X3, scale=2.0)  # keyword after vjp(has_aux) of f
    close(g, 4 * X3)
    close(aux, 3 * X3)
    (v, aux), g = tj.value_and_grad(f, has_aux=True)(X3, scale=0.5)
    assert v == pytest.approx(0.5 * np.sum(X3 ** 2))
    close(g, X3)


def bad_aux(x):
    return tnp.sum(x)


@pytest.mark.parametrize("transform", [tj.grad, tj.value_and_grad])
def test_has_aux_error_names_the_transform_used(transform):
    name = transform.__name__
    other = tj.value_and_grad if transform is tj.grad else tj.grad
    with pytest.raises(TypeError):
        other(bad_aux, has_aux=True)(X3)
    with pytest.raises(TypeError, match=rf"^{name}\(has_aux=True\)"):
        transform(bad_aux, has_aux=True)(X3)


def test_keyword_arguments_pass_through_undifferentiated():
    def f(x, *, scale, offset=0.0):
        return tnp.sum((x + offset) ** 2) * scale

    g = tj.grad(f)(X3, scale=3.0)
    close(g, 6 * X3)
    off = np.array([1.0, 0.0, -1.0])
    g = tj.grad(f)(X3, scale=2.0, offset=off)  # array keyword: still not differentiated
    close(g, 4 * (X3 + off))
    v, g = tj.value_and_grad(f)(X3, scale=0.5, offset=off)
    assert v == pytest.approx(0.5 * np.sum((X3 + off) ** 2))
    close(g, X3 + off)


def test_grad_of_function_ignoring_its_argument_is_zero():
    close(tj.grad(lambda x, y: tnp.sum(y * 2.0))(X3, X3), np.zeros(3))
    assert float(tj.grad(lambda x: 1.0)(2.0)) == 0.0


def test_grad_float32_keeps_dtype():
    x = X3.astype(np.float32)
    g = tj.grad(lambda x: tnp.sum(x * 2.0 + x ** 2))(x)
    assert g.dtype == np.float32
    close(g, 2.0 + 2 * x.astype(np.float64), rtol=1e-6)


def test_grad_against_finite_differences_second_order():
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal(3), rng.standard_normal((4, 3))
    loss = lambda w, x: tnp.mean(tnp.log1p(tnp.exp(x @ w)))
    check_grads(lambda w: tj.grad(loss)(w, x), (w,), order=1)
    check_grads(loss, (w, x), order=2)


# -- stop_gradient -----------------------------------------------------------------------------

def test_stop_gradient():
    assert float(tj.grad(lambda x: x * tj.stop_gradient(x))(3.0)) == pytest.approx(3.0)
    assert float(tj.grad(lambda x: tj.stop_gradient(x) ** 2 + x)(3.0)) == pytest.approx(1.0)
    y, t = tj.jvp(lambda x: tj.stop_gradient(tnp.sin(x)), (X3,), (np.ones(3),))
    close(y, np.sin(X3))
    close(t, np.zeros(3))
    # Concrete values pass through unchanged; pytrees leafwise.
    close(tj.stop_gradient(X3), X3)
    g = tj.grad(lambda d: tnp.sum(tj.stop_gradient(d)["a"]) * d["b"])({"a": X3, "b": 2.0})
    close(g["a"], np.zeros(3))
    assert float(g["b"]) == pytest.approx(np.sum(X3))


# -- higher order and composition --------------------------------------------------------------

SECOND_DERIVATIVES = [
    (lambda x: x ** 3, lambda x: 6 * x),
    (tnp.sin, lambda x: -np.sin(x)),
    (lambda x: tnp.exp(2.0 * x), lambda x: 4 * np.exp(2 * x)),
    (tnp.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    (tnp.log, lambda x: -1 / x ** 2),
    (lambda x: 1.0 / x, lambda x: 2 / x ** 3),
    (tnp.sqrt, lambda x: -0.25 * x ** -1.5),
    (lambda x: x * tnp.sin(x), lambda x: 2 * np.cos(x) - x * np.sin(x)),
]


@pytest.mark.parametrize("f, d2f", SECOND_DERIVATIVES)
def test_grad_of_grad_vs_hand_derivative(f, d2f):
    for x in (0.4, 1.3):
        assert float(tj.grad(tj.grad(f))(x)) == pytest.approx(d2f(x), rel=1e-12)


def test_third_derivative():
    assert float(tj.grad(tj.grad(tj.grad(lambda x: x ** 4)))(2.0)) == pytest.approx(48.0)


@settings(max_examples=25, deadline=None)
@given(st.floats(-3.0, 3.0))
def test_grad_and_second_derivative_property(x):
    f = lambda x: tnp.sin(x) * x * x
    assert float(tj.grad(f)(x)) == pytest.approx(
        np.cos(x) * x * x + 2 * x * np.sin(x), rel=1e-10, abs=1e-12)
    assert float(tj.grad(tj.grad(f))(x)) == pytest.approx(
        -np.sin(x) * x * x + 4 * x * np.cos(x) + 2 * np.sin(x), rel=1e-10, abs=1e-12)


def vec_fun(x):
    return tnp.stack([x[0] * x[1], tnp.sin(x[2]), x[0] ** 2 + x[2]])


def vec_fun_jac(x):
    return np.array([[x[1], x[0], 0.0],
                     [0.0, 0.0, np.cos(x[2])],
                     [2 * x[0], 0.0, 1.0]])


@pytest.mark.parametrize("jac", [tj.jacfwd, tj.jacrev])
def test_jacobian_vector_to_vector(jac):
    x = np.array([1.5, -2.0, 0.3])
    J = jac(vec_fun)(x)
    assert J.shape == (3, 3)
    close(J, vec_fun_jac(x))


@pytest.mark.parametrize("jac", [tj.jacfwd, tj.jacrev])
def test_jacobian_shape_is_out_plus_in(jac):
    x = np.array([[0.5, 1.0, -1.0], [2.0, 0.1, 0.3]])
    J = jac(lambda x: tnp.sum(x ** 2, axis=0))(x)
    assert J.shape == (3, 2, 3)
    expected = np.zeros((3, 2, 3))
    for j in range(3):
        expected[j, :, j] = 2 * x[:, j]
    close(J, expected)
    Js = jac(lambda x: tnp.sum(x ** 2))(x)  # scalar output: the gradient's shape
    assert Js.shape == (2, 3)
    close(Js, 2 * x)


@pytest.mark.parametrize("jac", [tj.jacfwd, tj.jacrev])
def test_jacobian_argnums_tuple(jac):
    x, y = X3, np.array([2.0, -1.0])
    Jx, Jy = jac(lambda x, y: x * y[0] ** 2, argnums=(0, 1))(x, y)
    assert Jx.shape == (3, 3) and Jy.shape == (3, 2)
    close(Jx, y[0] ** 2 * np.eye(3))
    close(Jy, np.stack([2 * y[0] * x, np.zeros(3)], axis=1))


@pytest.mark.parametrize("jac", [tj.jacfwd, tj.jacrev])
def test_jacobian_of_scalar_function_of_scalar(jac):
    assert float(jac(tnp.sin)(0.5)) == pytest.approx(np.cos(0.5))


def test_hessian_scalar_function():
    x = X3
    H = tj.hessian(lambda x: tnp.sum(x ** 3) + x[0] * x[1])(x)
    assert H.shape == (3, 3)
    expected = np.diag(6 * x)
    expected[0, 1] = expected[1, 0] = 1.0
    close(H, expected)


def test_hessian_vector_to_vector():
    x = np.array([1.5, -2.0, 0.3])
    H = tj.hessian(vec_fun)(x)
    assert H.shape == (3, 3, 3)
    expected = np.zeros((3, 3, 3))
    expected[0, 0, 1] = expected[0, 1, 0] = 1.0
    expected[1, 2, 2] = -np.sin(x[2])
    expected[2, 0, 0] = 2.0
    close(H, expected)


def test_hessian_argnums_tuple():
    x, y = X3, np.array([2.0, -1.0])
    f = lambda x, y: tnp.sum(x ** 2) * tnp.sum(y ** 3)
    H = tj.hessian(f, argnums=(0, 1))(x, y)
    assert isinstance(H, tuple) and all(isinstance(r, tuple) for r in H)
    (Hxx, Hxy), (Hyx, Hyy) = H
    assert (Hxx.shape, Hxy.shape, Hyx.shape, Hyy.shape) == ((3, 3), (3, 2), (2, 3), (2, 2))
    close(Hxx, 2 * np.sum(y ** 3) * np.eye(3))
    close(Hxy, np.outer(2 * x, 3 * y ** 2))
    close(Hyx, np.outer(3 * y ** 2, 2 * x))
    close(Hyy, np.sum(x ** 2) * np.diag(6 * y))


def test_nested_grad_closing_over_outer_traced_value():
    # d/dy (x*y*y) = 2xy; at y = x it is 2x^2, whose derivative is 4x: 8 at x = 2.
    g = tj.grad(lambda x: tj.grad(lambda y: x * y * y)(x))(2.0)
    assert float(g) == pytest.approx(8.0)
    assert float(tj.grad(lambda x: tj.grad(lambda y: x * y * y)(x))(-1.5)) == pytest.approx(-6.0)


def test_nested_grad_closing_over_outer_array():
    # inner gradient: 2 w v at v = w -> sum(2 w^2), whose gradient is 4 w.
    f = lambda w: tnp.sum(tj.grad(lambda v: tnp.sum(w * v ** 2))(w))
    close(tj.grad(f)(X3), 4 * X3)


def test_jvp_of_grad():
    y, t = tj.jvp(tj.grad(lambda x: x ** 3), (2.0,), (1.0,))
    assert float(y) == pytest.approx(12.0)  # 3x^2
    assert float(t) == pytest.approx(12.0)  # 6x
    # Array version with a closed-over outer value: d/dy sum(sin(y) x) = cos(y) x at y=x.
    y, t = tj.jvp(lambda x: tj.grad(lambda y: tnp.sum(tnp.sin(y) * x))(x), (X3,),
                  (np.ones(3),))
    close(y, np.cos(X3) * X3)
    close(t, np.cos(X3) - X3 * np.sin(X3))


def test_grad_of_jvp():
    # jvp(sin, x, x)[1] = x cos x; derivative cos x - x sin x.
    g = tj.grad(lambda x: tj.jvp(tnp.sin, (x,), (x,))[1])(0.5)
    assert float(g) == pytest.approx(np.cos(0.5) - 0.5 * np.sin(0.5))


def test_linearize_of_grad_and_jacrev_of_grad():
    _, f_jvp = tj.linearize(lambda x: tj.grad(lambda y: x * y * y)(x), 2.0)
    assert float(f_jvp(1.0)) == pytest.approx(8.0)
    J = tj.jacrev(lambda x: tj.grad(lambda y: tnp.sum(x * y * y))(x))(X3)
    close(J, np.diag(4 * X3))


def test_no_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 (a confused implementation gives 2).
    assert float(tj.grad(lambda x: x * tj.grad(lambda y: x + y)(1.0))(1.0)) == 1.0
    D = lambda f, x: tj.jvp(f, (x,), (1.0,))[1]
    assert float(D(lambda x: x * D(lambda y: x + y, 1.0), 1.0)) == 1.0
    # d/dx [x * d/dy (x*y)] = d/dx x^2 = 2x: 6 at x = 3.
    assert float(D(lambda x: x * D(lambda y: x * y, 2.0), 3.0)) == pytest.approx(6.0)
    assert float(tj.grad(lambda x: x * tj.grad(lambda y: x * y)(2.0))(3.0)) == \
        pytest.approx(6.0)


def test_check_grads_higher_order_of_composed_transform():
    check_grads(lambda x: tnp.sin(x) * x, (X3,), order=3)
    check_grads(lambda x: tj.grad(lambda y: tnp.sum(tnp.exp(x * y)))(x), (X3,), order=2)


# -- check_grads itself ------------------------------------------------------------------------

def wrong_first_derivative(x):
    # Value x^2 everywhere (finite differences see 2x); tracejit differentiates only the
    # first factor, giving x.
    return x * tj.stop_gradient(x)


def wrong_second_derivative(x):
    # Value x^3 and first derivative 3x^2 (the correction term has value 0 and derivative 0),
    # but its second derivative is 6x + 2.
    d = x - tj.stop_gradient(x)
    return x ** 3 + d * d


@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev")])
def test_check_grads_rejects_a_wrong_derivative(modes):
    with pytest.raises(AssertionError, match="finite differences"):
        check_grads(wrong_first_derivative, (np.array([0.5, 1.5]),), modes=modes)


def test_check_grads_rejects_a_wrong_second_derivative_only_at_order_two():
    x = (np.array([0.5, -1.2]),)
    check_grads(wrong_second_derivative, x, order=1)  # first order is right
    for modes in (("fwd",), ("rev",)):
        with pytest.raises(AssertionError):
            check_grads(wrong_second_derivative, x, order=2, modes=modes)


def test_check_grads_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        check_grads(tnp.sin, (X3,), modes=("sideways",))


# -- caching -----------------------------------------------------------------------------------

def counting(fn):
    calls = []

    def f(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)
    return f, calls


def test_grad_traces_once_per_signature():
    f, calls = counting(lambda x: tnp.sum(tnp.sin(x) * x))
    g = tj.grad(f)
    close(g(X3), np.sin(X3) + X3 * np.cos(X3))
    x2 = X3 + 1.0
    close(g(x2), np.sin(x2) + x2 * np.cos(x2))  # new values, same shape: cached, and right
    close(tj.grad(f)(X3 * 2), np.sin(2 * X3) + 2 * X3 * np.cos(2 * X3))
    assert len(calls) == 1
    g(np.ones(4))  # new shape
    assert len(calls) == 2
    g32 = g(X3.astype(np.float32))  # new dtype
    assert len(calls) == 3 and g32.dtype == np.float32
    g(np.ones(4))
    g(X3)
    assert len(calls) == 3


def test_value_and_grad_jvp_vjp_cache_traces():
    f, calls = counting(lambda x: tnp.sum(x ** 2))
    for _ in range(3):
        v, g = tj.value_and_grad(f)(X3)
    assert len(calls) == 1
    close(g, 2 * X3)
    f, calls = counting(lambda x: tnp.sin(x))
    for _ in range(3):
        _, t = tj.jvp(f, (X3,), (np.ones(3),))
    assert len(calls) == 1
    close(t, np.cos(X3))
    f, calls = counting(lambda x: tnp.sin(x))
    for _ in range(3):
        (g,) = tj.vjp(f, X3)[1](np.ones(3))
    assert len(calls) == 1
    close(g, np.cos(X3))
    f, calls = counting(lambda x: (tnp.sum(x ** 2), x))
    for _ in range(3):
        g, aux = tj.grad(f, has_aux=True)(X3)
    assert len(calls) == 1
    close(g, 2 * X3)


def test_python_scalar_keyword_does_not_freeze_its_value():
    f, calls = counting(lambda x, *, s: tnp.sum(x) * s)
    close(tj.grad(f)(X3, s=2.0), np.full(3, 2.0))
    close(tj.grad(f)(X3, s=3.0), np.full(3, 3.0))
    assert len(calls) == 1


def test_derivative_of_a_capturing_function_is_not_reused_across_signatures():
    # `inner` always captures the outer traced value, so it is retraced on every call; the
    # derived gradient IR must not be served from a cache entry of an earlier trace (whose
    # IR may have had other dtypes, or `mean`'s 1/n for another n).
    state = {}

    def inner(y):
        return tnp.mean(state["x"] * y * y)

    def outer(x):
        state["x"] = x
        return tj.grad(inner)(x)

    for i in range(60):
        n = 2 + i % 3
        dtype = np.float32 if i % 2 else np.float64
        tj.check_ir(tj.make_ir(outer)(np.ones(n, dtype)))
        x = np.full(n, 1.5)
        # outer(x) = 2 x^2 / n elementwise; its derivative is 4 x / n.
        y, t = tj.jvp(lambda x: outer(x), (x,), (np.ones(n),))
        close(y, 2 * x * x / n)
        close(t, 4 * x / n)


def test_make_ir_static_argnums_retraces_per_static_value():
    f, calls = counting(lambda x, k: x * k if k > 1 else x - k)
    make = tj.make_ir(f, static_argnums=1)
    ir2 = make(X3, 2)
    tj.check_ir(ir2)
    make(X3, 2)
    assert len(calls) == 1
    ir3 = make(X3, 3)
    ir0 = make(X3, 0)
    tj.check_ir(ir3)
    tj.check_ir(ir0)
    assert len(calls) == 3
    assert "mul a 2" in str(ir2) and "mul a 3" in str(ir3) and "sub" in str(ir0)


def test_make_ir_unhashable_static_argument_is_a_clear_error():
    with pytest.raises(TypeError, match="static arguments must be hashable"):
        tj.make_ir(lambda x, k: x * len(k), static_argnums=1)(X3, [1, 2])
    with pytest.raises(TypeError, match="hashable"):
        tj.make_ir(lambda x, k: x * k, static_argnums=1)(X3, np.ones(3))


def test_static_argument_allows_python_control_flow():
    def f(x, flag):
        if flag:
            return tnp.sum(tnp.sin(x))
        return tnp.sum(x ** 2)

    ir = checked_ir(f, X3, True, static_argnums=1)
    assert "sin" in str(ir)
    ir = checked_ir(f, X3, False, static_argnums=1)
    assert "sin" not in str(ir) and "integer_pow" in str(ir)


# -- make_ir printing and the checker ----------------------------------------------------------

def test_make_ir_prints_a_stable_readable_listing():
    def f(x, y):
        return tnp.sum(tnp.sin(x) * y)

    ir = checked_ir(f, X3, X3)
    expected = (
        "ir f(a: f64[3], b: f64[3]) -> f64[]\n"
        "  c: f64[3] = sin a\n"
        "  d: f64[3] = mul c b\n"
        "  e: f64[]  = reduce_sum[axes=(0,)] d\n"
        "  return e"
    )
    assert str(ir) == expected
    assert str(ir) == str(ir)
    assert str(tj.make_ir(f)(np.ones(3), np.ones(3))) == expected

    # A separate trace (fresh variables, created after many others) prints the same text.
    def f2(x, y):
        return tnp.sum(tnp.sin(x) * y)

    assert str(checked_ir(f2, X3, X3)).replace("ir f2", "ir f") == expected


def test_make_ir_prints_dtypes_and_multiple_outputs():
    def g(x, n):
        return x * 2.0, n + 1

    ir = checked_ir(g, X3.astype(np.float32), np.arange(2))
    text = str(ir)
    assert text.splitlines()[0] == "ir g(a: f32[3], b: i64[2]) -> (f32[3], i64[2])"
    assert text.splitlines()[-1] == "  return c, d"


def test_make_ir_of_transforms_passes_the_checker():
    def loss(w, x):
        return tnp.mean(tnp.tanh(x @ w) ** 2)

    w, x = np.array([0.5, -1.0]), np.array([[1.0, 2.0], [0.5, -0.3], [0.0, 1.0]])
    irs = [
        checked_ir(loss, w, x),
        checked_ir(tj.grad(loss), w, x),
        checked_ir(tj.grad(loss, argnums=(0, 1)), w, x),
        checked_ir(tj.value_and_grad(loss), w, x),
        checked_ir(lambda w: tj.jvp(lambda w: loss(w, x), (w,), (w,)), w),
        checked_ir(lambda w: tj.linearize(lambda w: loss(w, x), w)[1](w), w),
        checked_ir(lambda w: tj.vjp(lambda w: tnp.tanh(x @ w), w)[1](np.ones(3)), w),
        checked_ir(tj.jacfwd(lambda w: tnp.tanh(x @ w)), w),
        checked_ir(tj.jacrev(lambda w: tnp.tanh(x @ w)), w),
        checked_ir(tj.hessian(lambda w: loss(w, x)), w),
        checked_ir(tj.grad(tj.grad(lambda a: tnp.sin(a) * a)), 0.5),
        checked_ir(tj.grad(lambda x: tj.grad(lambda y: x * y * y)(x)), 2.0),
    ]
    for ir in irs:
        assert str(ir).startswith("ir ")
    # The grad IR computes the gradient when evaluated (checked by hand-derived formula).
    t = np.tanh(x @ w)
    close(tj.grad(loss)(w, x), x.T @ (2 * t * (1 - t ** 2)) / 3)


def test_check_ir_rejects_a_broken_ir():
    ir = tj.make_ir(lambda x: tnp.sin(x) * 2.0)(X3)
    tj.check_ir(ir)
    ir.eqns[0].outs[0].aval = ShapedArray((4,), np.float64)
    with pytest.raises(IRCheckError):
        tj.check_ir(ir)
