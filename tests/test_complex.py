"""Complex numbers: values against NumPy, derivatives against finite differences and hand
derivations, JAX's gradient convention, holomorphic Jacobians, jit, control flow, vmap."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

RNG = np.random.default_rng(7)


def _z(shape, dtype=np.complex128, scale=1.0):
    return (scale * (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape))).astype(dtype)


Z = _z(6)
W = _z(6)

# Elementwise functions NumPy defines on complex values, each with an argument domain away
# from its branch cuts so that finite differences are meaningful.
UNARY = {
    "exp": (tnp.exp, np.exp), "expm1": (tnp.expm1, np.expm1), "exp2": (tnp.exp2, np.exp2),
    "log": (tnp.log, np.log), "log1p": (tnp.log1p, np.log1p), "log2": (tnp.log2, np.log2),
    "log10": (tnp.log10, np.log10), "sqrt": (tnp.sqrt, np.sqrt),
    "sin": (tnp.sin, np.sin), "cos": (tnp.cos, np.cos), "tan": (tnp.tan, np.tan),
    "arcsin": (tnp.arcsin, np.arcsin), "arccos": (tnp.arccos, np.arccos),
    "arctan": (tnp.arctan, np.arctan), "sinh": (tnp.sinh, np.sinh),
    "cosh": (tnp.cosh, np.cosh), "tanh": (tnp.tanh, np.tanh),
    "arcsinh": (tnp.arcsinh, np.arcsinh), "arccosh": (tnp.arccosh, np.arccosh),
    "arctanh": (tnp.arctanh, np.arctanh), "square": (tnp.square, np.square),
    "reciprocal": (tnp.reciprocal, np.reciprocal), "conj": (tnp.conj, np.conj),
    "negative": (tnp.negative, np.negative),
}
REAL_OF = {
    "abs": (tnp.abs, np.abs), "real": (tnp.real, np.real), "imag": (tnp.imag, np.imag),
    "angle": (tnp.angle, np.angle),
}


def _all_values(z, w):
    outs = [f(z) for f, _ in UNARY.values()] + [f(z) for f, _ in REAL_OF.values()]
    outs += [z * w, z / w, z + w, z - w, z ** w, z ** 3, 2.5 * z, z * 1j, tnp.sign(z),
             tnp.sum(z), tnp.mean(z), tnp.prod(z), tnp.var(z), tnp.std(z),
             tnp.cumsum(z), tnp.dot(z, w), tnp.isfinite(z), z == w, z != z,
             tnp.round(z * 10.0)]
    return tuple(outs)


def _numpy_values(z, w):
    outs = [f(z) for _, f in UNARY.values()] + [f(z) for _, f in REAL_OF.values()]
    outs += [z * w, z / w, z + w, z - w, z ** w, z ** 3, 2.5 * z, z * 1j,
             z / np.abs(z), np.sum(z), np.mean(z), np.prod(z), np.var(z), np.std(z),
             np.cumsum(z), np.dot(z, w), np.isfinite(z), z == w, z != z,
             np.round(z * 10.0)]
    return outs


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_values_match_numpy_eager_and_compiled(dtype):
    z, w = Z.astype(dtype), W.astype(dtype)
    expected = _numpy_values(z, w)
    rtol = 1e-12 if dtype == np.complex128 else 2e-5
    for label, got in (("eager", _all_values(z, w)), ("jit", tj.jit(_all_values)(z, w))):
        for k, (g, e) in enumerate(zip(got, expected)):
            g = np.asarray(g)
            e = np.asarray(e)
            # dtypes follow NumPy: complex stays complex64/128, abs/real/imag/angle are real
            assert g.dtype == e.dtype or (g.dtype.kind == e.dtype.kind == "b"), \
                (label, k, g.dtype, e.dtype)
            np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol, err_msg=f"{label} {k}")


def test_python_complex_scalars_are_weak():
    z32 = Z.astype(np.complex64)
    assert (z32 * (1 + 2j)).dtype == np.complex64
    assert tj.make_ir(lambda z: z * (1 + 2j))(z32).outs[0].aval.dtype == np.complex64
    x32 = np.ones(3, np.float32)
    assert np.asarray(tnp.multiply(x32, 1j)).dtype == np.complex64  # NEP 50, as NumPy
    assert np.asarray(tj.jit(lambda x: x * 1j)(x32)).dtype == np.complex64
    np.testing.assert_allclose(tj.jit(lambda x: x + (2 - 1j))(x32), x32 + (2 - 1j))


def test_grad_convention_matches_hand_derivation():
    # f(z) = sum |z|^2 = sum x^2 + y^2: df/dx - i df/dy = 2x - 2iy = 2 conj(z), as JAX gives.
    f = lambda z: tnp.sum(tnp.abs(z) ** 2)
    np.testing.assert_allclose(tj.grad(f)(Z), 2 * np.conj(Z), rtol=1e-13)
    # f(z) = sum re(c z) = sum (a x - b y) for c = a + ib: gradient a + ib = c.
    c = W
    g = lambda z: tnp.sum(tnp.real(c * z))
    np.testing.assert_allclose(tj.grad(g)(Z), c, rtol=1e-13)
    # f(z) = sum im(z)^2: df/dy = 2y, so the gradient is -2iy.
    h = lambda z: tnp.sum(tnp.imag(z) ** 2)
    np.testing.assert_allclose(tj.grad(h)(Z), -2j * Z.imag, atol=1e-13)


def _finite_difference_grad(f, z, eps=1e-6):
    """df/dx - i df/dy by central differences, one element at a time."""
    out = np.zeros_like(z)
    for k in range(z.size):
        e = np.zeros_like(z)
        e.flat[k] = eps
        dx = (f(z + e) - f(z - e)) / (2 * eps)
        dy = (f(z + 1j * e) - f(z - 1j * e)) / (2 * eps)
        out.flat[k] = dx - 1j * dy
    return out


def _mixed_loss(z, w):
    """A real loss through every complex function above (complex intermediates)."""
    total = 0.0
    for name, (f, _) in UNARY.items():
        arg = z * 0.3 if name in ("arcsin", "arccos", "arctanh", "tan") else z
        total = total + tnp.sum(tnp.real(f(arg) * w))
    for f, _ in REAL_OF.values():
        total = total + tnp.sum(f(z) * tnp.abs(w))
    return total + tnp.sum(tnp.abs(z ** w)) + tnp.real(tnp.dot(z, w))


def test_grad_of_every_function_against_finite_differences():
    np_loss = lambda z: float(np.asarray(_mixed_loss(z, W)))
    expected = _finite_difference_grad(np_loss, Z)
    got = tj.grad(_mixed_loss)(Z, W)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    compiled = tj.jit(tj.grad(_mixed_loss, argnums=(0, 1)))(Z, W)
    np.testing.assert_allclose(compiled[0], got, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(compiled[1], tj.grad(_mixed_loss, 1)(Z, W), rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("fun", [
    lambda z, w: tnp.sum(tnp.abs(tnp.exp(z) * w - tnp.sin(z)) ** 2),
    lambda z, w: tnp.sum(tnp.angle(z * w) * tnp.real(z)),
    lambda z, w: tnp.real(tnp.sum(tnp.log(z) * tnp.conj(w))) + tnp.sum(tnp.imag(z / w)),
    lambda z, w: tnp.abs(tnp.prod(z[:3])) + tnp.real(tnp.cumsum(z * w)[-1]),
], ids=["abs-exp-sin", "angle", "log-conj-div", "prod-cumsum"])
def test_check_grads_second_order(fun):
    check_grads(fun, (Z, W), order=2)


def test_check_grads_complex_outputs_and_real_inputs():
    # real -> complex -> real, and complex outputs of a vjp (pairing re(sum(a b))).
    x = RNG.standard_normal(5)
    check_grads(lambda x: tnp.exp(1j * x) * x, (x,), order=2)
    check_grads(lambda x, y: tnp.abs(x + 1j * y), (x, RNG.standard_normal(5)), order=2)
    check_grads(lambda z: tnp.sqrt(z) * tnp.conj(z), (Z,), order=1)


def test_holomorphic_grad_and_jacobians():
    f = lambda z: tnp.exp(z) * z ** 2
    df = lambda z: np.exp(z) * (z ** 2 + 2 * z)
    np.testing.assert_allclose(tj.grad(lambda z: tnp.sum(f(z)), holomorphic=True)(Z), df(Z),
                               rtol=1e-12)
    for jac in (tj.jacfwd, tj.jacrev):
        J = jac(f, holomorphic=True)(Z)
        np.testing.assert_allclose(J, np.diag(df(Z)), rtol=1e-12, atol=1e-12)
    compiled = tj.jit(tj.grad(lambda z: tnp.sum(f(z)), holomorphic=True))(Z)
    np.testing.assert_allclose(compiled, df(Z), rtol=1e-12)
    # A 2x2 holomorphic map and its complex Jacobian, by hand.
    g = lambda z: tnp.stack([z[0] * z[1], tnp.sin(z[0])])
    z = Z[:2]
    want = np.array([[z[1], z[0]], [np.cos(z[0]), 0]])
    np.testing.assert_allclose(tj.jacrev(g, holomorphic=True)(z), want, rtol=1e-12)
    np.testing.assert_allclose(tj.jacfwd(g, holomorphic=True)(z), want, rtol=1e-12)


def test_jacrev_of_real_function_of_complex_input_is_the_gradient():
    f = lambda z: tnp.sum(tnp.abs(z) ** 2)
    np.testing.assert_allclose(tj.jacrev(f)(Z), 2 * np.conj(Z), rtol=1e-13)


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="holomorphic=True"):
        tj.grad(lambda z: tnp.sum(z * z))(Z)
    with pytest.raises(TypeError, match="requires complex inputs"):
        tj.grad(lambda x: tnp.sum(x * 1j), holomorphic=True)(np.ones(3))
    with pytest.raises(TypeError, match="complex output"):
        tj.grad(lambda z: tnp.sum(tnp.abs(z)), holomorphic=True)(Z)
    with pytest.raises(TypeError, match="real inputs"):
        tj.jacfwd(lambda z: tnp.abs(z))(Z)
    with pytest.raises(TypeError, match="real outputs"):
        tj.jacrev(lambda z: z * 2)(Z)
    # the order primitives take real operands (tnp orders complex values from the parts)
    from tracejit.primitives import elementwise as ew
    with pytest.raises(TypeError, match="ordered"):
        tj.make_ir(lambda z: ew.max_(z, W))(Z)
    with pytest.raises(TypeError, match="ordered"):
        tj.make_ir(lambda z: ew.lt(z, W))(Z)
    with pytest.raises(TypeError, match="not supported for dtypes|real floating"):
        tnp.floor(Z)


def test_control_flow_with_complex_carries():
    def power_sum(z, n):
        def body(i, carry):
            acc, p = carry
            return acc + p, p * z
        acc, _ = tj.fori_loop(0, n, body, (tnp.zeros_like(z), tnp.ones_like(z)))
        return acc

    def loss(z):
        s = power_sum(z, 6)
        return tnp.sum(tj.cond(tnp.real(s[0]) > 0, lambda v: tnp.abs(v) ** 2,
                               lambda v: tnp.real(v * v), s))

    z = Z[:3] * 0.5
    np_loss = lambda z: float(np.asarray(loss(z)))
    expected = _finite_difference_grad(np_loss, z)
    np.testing.assert_allclose(tj.grad(loss)(z), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(z), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tj.jit(lambda z: power_sum(z, 6))(z),
                               sum(z ** k for k in range(6)), rtol=1e-12)


def test_matrix_products_call_complex_blas():
    A = _z((60, 40))
    B = _z((40, 30))
    for dtype, tol in ((np.complex128, 1e-12), (np.complex64, 1e-4)):
        a, b = A.astype(dtype), B.astype(dtype)
        lowered = tj.jit(lambda a, b: a @ b).lower(a, b)
        assert "_xxgemm(" + str(ord("z" if dtype == np.complex128 else "c")) in lowered.source
        out = tj.jit(lambda a, b: a @ b)(a, b)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, a @ b, rtol=tol, atol=tol)
    f = lambda A, x: tnp.sum(tnp.abs(A @ x) ** 2)
    x = _z(40)
    gA, gx = tj.jit(tj.grad(f, argnums=(0, 1)))(A, x)
    y = A @ x
    # f = y^H y with y = A x: by hand, grad_x = 2 A^T conj(y), grad_A = 2 conj(y) x^T.
    np.testing.assert_allclose(gx, 2 * A.T @ np.conj(y), rtol=1e-11)
    np.testing.assert_allclose(gA, 2 * np.outer(np.conj(y), x), rtol=1e-11)


def test_vmap_and_complex_from_parts():
    rows = _z((4, 5))
    np.testing.assert_allclose(tj.vmap(lambda z: tnp.sum(z * tnp.conj(z)))(rows),
                               (rows * rows.conj()).sum(1), rtol=1e-13)
    x, y = RNG.standard_normal(5), RNG.standard_normal(5)
    # building z from its parts and taking them apart again round-trips derivatives
    f = lambda x, y: tnp.sum(tnp.abs(x + 1j * y) ** 3)
    r = np.hypot(x, y)
    gx, gy = tj.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, 3 * r * x, rtol=1e-12)
    np.testing.assert_allclose(gy, 3 * r * y, rtol=1e-12)
    assert tnp.iscomplexobj(Z) and not tnp.iscomplexobj(x)
    np.testing.assert_array_equal(tnp.isreal(np.array([1 + 0j, 1j])), [True, False])


def test_float32_parts_stay_float32():
    z = Z.astype(np.complex64)
    for f in (tnp.abs, tnp.real, tnp.imag, tnp.angle):
        assert np.asarray(f(z)).dtype == np.float32
        assert np.asarray(tj.jit(f)(z)).dtype == np.float32
    g = tj.grad(lambda z: tnp.sum(tnp.abs(z) ** 2))(z)
    assert g.dtype == np.complex64
    np.testing.assert_allclose(g, 2 * np.conj(z), rtol=1e-6)


def test_complex_solve_and_inv():
    n = 4
    a = _z((n, n)) + 3 * np.eye(n)
    b = _z(n)
    np.testing.assert_allclose(tnp.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-12)
    np.testing.assert_allclose(tj.jit(tnp.linalg.inv)(a), np.linalg.inv(a), rtol=1e-12,
                               atol=1e-14)
    check_grads(lambda a, b: tnp.linalg.solve(a, b), (a, b), order=2)
    check_grads(lambda a: tnp.linalg.inv(a), (a,), order=1)
    # f = |x|^2 with a x = b, x = a^-1 b: by the convention, grad_b = 2 a^-T conj(x)
    f = lambda a, b: tnp.sum(tnp.abs(tnp.linalg.solve(a, b)) ** 2)
    x = np.linalg.solve(a, b)
    gb = tj.jit(tj.grad(f, argnums=1))(a, b)
    np.testing.assert_allclose(gb, 2 * np.linalg.solve(a.T, np.conj(x)), rtol=1e-11)


A3 = np.array([1 + 2j, 3 - 1j, -0.5 + 0.25j])
B3 = np.array([0.5 - 1j, 2 + 2j, 1j])


@pytest.mark.parametrize("name, got, want", [
    ("vdot", lambda: tnp.vdot(A3, B3), lambda: np.vdot(A3, B3)),
    ("vecdot", lambda: tnp.vecdot(A3, B3), lambda: np.vecdot(A3, B3)),
    ("correlate", lambda: tnp.correlate(A3, B3), lambda: np.correlate(A3, B3)),
    ("cov", lambda: tnp.cov(np.stack([A3, B3])), lambda: np.cov(np.stack([A3, B3]))),
    ("corrcoef", lambda: tnp.corrcoef(np.stack([A3, B3])),
     lambda: np.corrcoef(np.stack([A3, B3]))),
    ("norm", lambda: tnp.linalg.norm(A3), lambda: np.linalg.norm(A3)),
    ("norm fro", lambda: tnp.linalg.norm(np.outer(A3, B3)),
     lambda: np.linalg.norm(np.outer(A3, B3))),
    ("norm 1", lambda: tnp.linalg.norm(np.outer(A3, B3), 1),
     lambda: np.linalg.norm(np.outer(A3, B3), 1)),
    ("norm 0", lambda: tnp.linalg.norm(np.array([0j, 1j]), 0),
     lambda: np.linalg.norm(np.array([0j, 1j]), 0)),
    ("gradient", lambda: tnp.gradient(A3), lambda: np.gradient(A3)),
    ("interp", lambda: tnp.interp(0.5, [0, 1], [1j, 2 + 1j]),
     lambda: np.interp(0.5, [0, 1], [1j, 2 + 1j])),
    ("float_power", lambda: tnp.float_power(A3, 2), lambda: np.float_power(A3, 2)),
    ("rint", lambda: tnp.rint(A3 * 1.6), lambda: np.rint(A3 * 1.6)),
    ("nansum", lambda: tnp.nansum(np.array([1 + 1j, np.nan, 2j])),
     lambda: np.nansum(np.array([1 + 1j, np.nan, 2j]))),
    ("nan_to_num", lambda: tnp.nan_to_num(np.array([np.nan + 1j, np.inf])),
     lambda: np.nan_to_num(np.array([np.nan + 1j, np.inf]))),
    ("astype bool", lambda: tj.jit(lambda z: z.astype(bool))(np.array([1j, 0j, 1 + 0j])),
     lambda: np.array([1j, 0j, 1 + 0j]).astype(bool)),
])
def test_functions_that_conjugate_or_keep_complex_values(name, got, want):
    g, w = np.asarray(got()), np.asarray(want())
    assert g.dtype == w.dtype, (name, g.dtype, w.dtype)
    np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=name)


def test_derivatives_at_zero_and_of_sign():
    z0 = np.array([0j, 1 + 1j, -2 + 0.5j])
    # |z| has no derivative at 0: it is taken as 0 there, in both modes
    g = tj.grad(lambda z: tnp.sum(tnp.abs(z)))(z0)
    np.testing.assert_allclose(g, [0, *(np.conj(z0[1:]) / np.abs(z0[1:]))], atol=1e-15)
    np.testing.assert_allclose(tj.grad(tnp.var)(np.full(3, 1 + 1j)), 0, atol=1e-15)
    # sign(z) = z / |z| is smooth away from 0
    check_grads(lambda z: tnp.real(tnp.sum(tnp.sign(z) * B3[1:])), (z0[1:],), order=2)
    assert np.isfinite(tj.grad(lambda z: tnp.real(tnp.sum(tnp.sign(z) * B3)))(z0)).all()


def test_orderings_of_complex_values_are_numpys():
    for f, g in ((tnp.max, np.max), (tnp.argmax, np.argmax), (tnp.median, np.median)):
        assert tj.jit(f)(A3) == g(A3)


def test_complex_slogdet_and_det():
    a = _z((4, 4))
    sign, logabs = tnp.linalg.slogdet(a)
    sign_ref, logabs_ref = np.linalg.slogdet(a)
    assert np.asarray(logabs).dtype == np.float64 and np.asarray(sign).dtype == np.complex128
    np.testing.assert_allclose(sign, sign_ref, rtol=1e-12)
    np.testing.assert_allclose(logabs, logabs_ref, rtol=1e-12)
    np.testing.assert_allclose(tj.jit(tnp.linalg.det)(a), np.linalg.det(a), rtol=1e-12)
    check_grads(lambda a: tnp.linalg.slogdet(a)[0], (a,), order=2)
    check_grads(lambda a: tnp.linalg.slogdet(a)[1], (a,), order=2)
    # log|det a| = re(log det a), and log det is holomorphic with derivative a^-T: by the
    # convention the gradient of the real part is that derivative itself
    g = tj.jit(tj.grad(lambda a: tnp.linalg.slogdet(a)[1]))(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T, rtol=1e-11)
    dd = tj.grad(tnp.linalg.det, holomorphic=True)(a)
    np.testing.assert_allclose(dd, np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-11)


def test_complex_cholesky_and_triangular_solves():
    import scipy.linalg as sl

    import tracejit.scipy.linalg as tsl
    m = _z((4, 4))
    h = m @ m.conj().T + 4 * np.eye(4)  # Hermitian positive definite
    b = _z((4, 2))
    # only the lower triangle and the real part of the diagonal are read, as LAPACK does
    noisy = h + np.triu(np.full((4, 4), 5.0 + 3j), 1) + np.diag(np.full(4, 2j))
    np.testing.assert_allclose(tnp.linalg.cholesky(noisy), np.linalg.cholesky(h), rtol=1e-12)
    for lower in (True, False):
        np.testing.assert_allclose(tsl.cholesky(h, lower=lower), sl.cholesky(h, lower=lower),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(tsl.cho_solve(tsl.cho_factor(h, lower=lower), b),
                                   np.linalg.solve(h, b), rtol=1e-11)
    lo = np.linalg.cholesky(h)
    for lower, trans in ((True, 0), (True, 1), (False, 0), (False, 1)):
        a = lo if lower else lo.T
        f = tj.jit(lambda a, b, lower=lower, trans=trans: tsl.solve_triangular(
            a, b, lower=lower, trans=trans))
        assert "_tri_solve(" in f.lower(a, b).source
        np.testing.assert_allclose(f(a, b), sl.solve_triangular(a, b, lower=lower,
                                                                trans=trans), rtol=1e-11)
    check_grads(lambda h: tnp.linalg.cholesky(h), (h,), order=2)
    loss = lambda h, b: tnp.sum(tnp.abs(tsl.cho_solve((tnp.linalg.cholesky(h), True), b)) ** 2)
    check_grads(loss, (h, b), order=1)
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(h, b), tj.grad(loss)(h, b), rtol=1e-10)
    c = h.astype(np.complex64)
    np.testing.assert_allclose(tj.jit(tnp.linalg.cholesky)(c), np.linalg.cholesky(c),
                               rtol=1e-5, atol=1e-5)


def test_complex_hermitian_eigh():
    m = _z((4, 4))
    h = m + m.conj().T
    w_ref, v_ref = np.linalg.eigh(h)
    for uplo, noisy in (("L", h + np.triu(np.full((4, 4), 3 + 1j), 1)),
                        ("U", h + np.tril(np.full((4, 4), 3 + 1j), -1))):
        w, v = tnp.linalg.eigh(noisy, uplo)
        assert np.asarray(w).dtype == np.float64
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.abs(v), np.abs(v_ref), rtol=1e-10, atol=1e-12)
    wj, vj = tj.jit(tnp.linalg.eigh)(h)
    np.testing.assert_allclose(wj, w_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.abs(vj), np.abs(v_ref), rtol=1e-10, atol=1e-12)
    # dw_i = re(v_i^H dh v_i), by hand
    dh = _z((4, 4))
    dh = dh + dh.conj().T
    _, dw = tj.jvp(tnp.linalg.eigvalsh, (h,), (dh,))
    np.testing.assert_allclose(dw, np.real(np.einsum("ji,jk,ki->i", v_ref.conj(), dh, v_ref)),
                               rtol=1e-10, atol=1e-12)
    check_grads(lambda h: tnp.linalg.eigvalsh(h), (h,), order=2)
    # |v|^2 does not depend on each eigenvector's phase, so it has a derivative
    check_grads(lambda h: tnp.abs(tnp.linalg.eigh(h)[1]) ** 2, (h,), order=1)


def test_complex_switch_index_and_angle_conversions_refuse():
    with pytest.raises(TypeError, match="index must be an integer, got complex128"):
        tj.make_ir(lambda i, x: tj.switch(i, [lambda x: x, lambda x: -x], x))(1j, 1.0)
    for f in (tnp.deg2rad, tnp.rad2deg):
        with pytest.raises(TypeError, match="complex"):
            f(Z)


def test_compiled_complex_expm1_is_accurate_near_zero():
    z = np.array([1e-10 + 1e-10j, 1e-10 + 0j, 1e-8j, 0.5 + 3j, -2 - 0j, 0j, -np.inf + 1j])
    f = tj.jit(tnp.expm1)
    np.testing.assert_allclose(f(z), np.expm1(z), rtol=1e-14)
    z32 = z[:-1].astype(np.complex64)
    np.testing.assert_allclose(f(z32), np.expm1(z32.astype(complex)), rtol=1e-6)
