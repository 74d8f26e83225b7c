"""Complex erf, erfc and digamma/psi in tracejit.scipy.special: values against SciPy
(interpreted and compiled, complex128 and complex64, the four quadrants, near 0, near the
axes, large |z|, nan and inf parts), derivatives (finite differences to second order, the
hand derivations, compiled against interpreted), the complex polygamma the derivatives of
digamma use (against mpmath), gammaln at -inf, and the errors.

The compiled programs are few and shared (module-level, built on first use), so the file
stays fast on a cold cache."""

import functools

import numpy as np
import pytest
import scipy.special as ss

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.special as ts
from tracejit.compiler import special as special_helpers
from tracejit.primitives import special as sp
from tracejit.testing import check_grads

RNG = np.random.default_rng(11)
NAMES = ("erf", "erfc", "digamma", "psi")
SCIPY = {"erf": ss.erf, "erfc": ss.erfc, "digamma": ss.psi, "psi": ss.psi}
ORDERS = (1, 2, 3, 5)


def _grid() -> np.ndarray:
    """The four quadrants over many scales, near 0, near both axes, large |z|, the
    negative real axis between the poles of digamma."""
    r = np.exp(RNG.uniform(np.log(1e-3), np.log(60.0), 160))
    quadrants = r * np.exp(1j * RNG.uniform(-np.pi, np.pi, 160))
    near_zero = np.array([1e-300 + 1e-300j, 1e-12 - 3e-13j, -2e-9 + 1e-9j, -1e-6 - 1e-6j])
    near_real = np.array([complex(x, s * 10.0 ** -e) for x in (-7.5, -2.25, -0.5, 0.3, 2.0, 15.0)
                          for e in (3, 12) for s in (1, -1)])
    near_imag = np.array([complex(s * 10.0 ** -e, y) for y in (-20.0, -1.0, 0.5, 4.0)
                          for e in (3, 12) for s in (1, -1)])
    large = np.array([1e4 + 1e4j, -3e3 + 2e2j, 2e5 - 1e3j, -1e6 - 1e6j, 1e8j, 5.5 + 26j,
                      -26 + 5.5j, 26 - 26j, 1e300 + 1j])
    return np.concatenate([quadrants, near_zero, near_real, near_imag, large])


Z = _grid()
X = np.concatenate([np.linspace(-9.75, 30, 60), [-np.inf, np.inf, np.nan, 0.0, -0.0, -3.0,
                                                  1e-300, 1e5, -12345.6, -1e15 + 0.5]])
_INF, _NAN = np.inf, np.nan
SPECIAL = np.array([complex(a, b) for a in (0.0, -0.0, 1.5, -1.5, _INF, -_INF, _NAN)
                    for b in (0.0, -0.0, 2.5, -2.5, _INF, -_INF, _NAN)]
                   + [-1 + 0j, -4 + 0j, -1e6 + 0j])


def _poly(n, z):
    return sp.polygamma(np.asarray(float(n), z.dtype)[()], z)


def _values(z, x):
    out = {name: getattr(ts, name)(z) for name in NAMES}
    out.update({f"polygamma{n}": _poly(n, z) for n in ORDERS})
    out["gammaln"] = ts.gammaln(x)
    out["real polygamma1"] = ts.polygamma(1, x)
    return out


VALUES = tj.jit(_values)


def _derivatives(z, t):
    """First and second derivatives of each function: jvp, jvp of jvp, and grad (rev)."""
    out = {}
    for name in ("erf", "erfc", "digamma"):
        f = getattr(ts, name)
        out[name + "'"] = tj.jvp(f, (z,), (t,))[1]
        out[name + "''"] = tj.jvp(lambda u, f=f: tj.jvp(f, (u,), (t,))[1], (z,), (t,))[1]
        out[name + " grad"] = tj.grad(lambda u, f=f: tnp.sum(tnp.real(f(u))))(z)
    return out


DERIVATIVES = tj.jit(_derivatives)


# polygamma's grid: the digamma grid without what over/underflows at order 5, and the
# crossings of the helper's branches on the left half plane
_PG = np.concatenate([Z[(np.abs(Z) > 1e-2) & (np.abs(Z) < 1e6)],
                      [complex(-x, y) for x in (0.3, 4.5, 24.5, 60.01)
                       for y in (0.01, -0.24, 0.26, -0.51, 3.0)]])


def _z(dtype):
    """The grid in `dtype` (without what overflows complex64)."""
    return Z.astype(dtype) if dtype == np.complex128 else Z[np.abs(Z) < 1e30].astype(dtype)


@functools.cache
def _compiled(dtype):
    """VALUES on the grid, the special values and polygamma's grid in one call (one
    compile per dtype): a dict of name -> (grid, special, polygamma grid) values."""
    parts = [_z(dtype), SPECIAL.astype(dtype), _PG.astype(dtype)]
    x = X.astype(np.float32 if dtype == np.complex64 else np.float64)
    with np.errstate(all="ignore"):
        out = VALUES(np.concatenate(parts), x)
    cuts = np.cumsum([len(p) for p in parts])[:-1]
    return {k: (v if v.shape == x.shape else tuple(np.split(v, cuts))) for k, v in out.items()}


def _assert_same(actual, expected):
    """Equal parts, nan where the reference has nan (signed zeros not told apart)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual.real, expected.real)
    np.testing.assert_array_equal(actual.imag, expected.imag)


def _rel(actual, expected):
    return np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-300)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_values_match_scipy(dtype):
    z = _z(dtype)
    compiled = _compiled(dtype)
    for name in NAMES:
        ref = SCIPY[name](z)
        assert ref.dtype == dtype
        _assert_same(getattr(ts, name)(z), ref)  # interpreted: SciPy itself
        # compiled: SciPy's own C functions, called through the complex ABI
        _assert_same(compiled[name][0], ref)


def test_values_on_scalars_and_python_numbers():
    assert ts.erf(1 + 1j).dtype == np.complex128
    assert complex(ts.erf(1 + 1j)) == ss.erf(1 + 1j)
    assert complex(ts.psi(np.complex64(0.5 - 2j))) == ss.psi(np.complex64(0.5 - 2j))
    assert ts.psi(np.complex64(0.5 - 2j)).dtype == np.complex64
    f = tj.jit(lambda z: ts.erfc(z))
    assert complex(f(np.complex128(-1 + 3j))) == ss.erfc(-1 + 3j)
    # real operands keep SciPy's real loops
    assert ts.erf(np.float32(0.5)).dtype == np.float32
    assert ts.digamma(3).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_special_values_match_scipy(dtype):
    compiled = _compiled(dtype)
    z = SPECIAL.astype(dtype)
    with np.errstate(all="ignore"):
        for name in NAMES:
            ref = SCIPY[name](z)
            _assert_same(getattr(ts, name)(z), ref)
            _assert_same(compiled[name][1], ref)
    # digamma's poles are nan + nan j, as SciPy's complex psi gives them; so is polygamma's
    for n in ORDERS:
        poles = compiled[f"polygamma{n}"][1][-3:]
        assert np.isnan(poles.real).all() and np.isnan(poles.imag).all()


def test_gammaln_at_minus_infinity():
    """SciPy's gammaln(-inf) is -inf; compiled math.lgamma gave +inf (float32 and float64)."""
    for dtype, compiled in ((np.float64, _compiled(np.complex128)),
                            (np.float32, _compiled(np.complex64))):
        x = X.astype(dtype)
        ref = ss.gammaln(x)
        assert ref[np.isneginf(x)] == -np.inf
        _assert_same(ts.gammaln(x), ref)
        _assert_same(compiled["gammaln"], ref)  # float32 rounded from SciPy's double
    grad = tj.jit(tj.grad(lambda v: tnp.sum(ts.gammaln(v))))(np.array([-np.inf, 2.5]))
    np.testing.assert_allclose(grad, [np.nan, ss.digamma(2.5)], rtol=1e-15)


def _mpmath_polygamma(n, z):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        return np.array([complex(mpmath.polygamma(n, mpmath.mpc(w.real, w.imag))) for w in z])


def test_real_polygamma_far_left_takes_the_reflection():
    """Below -1e4 the real helper's recurrence would take |x| steps (at -1e15 + 0.5 it did
    not finish): it calls the complex twin's reflection instead."""
    compiled = _compiled(np.complex128)["real polygamma1"]
    np.testing.assert_allclose(compiled[:-1], ss.polygamma(1, X[:-1]), rtol=1e-14)
    # psi_1(x) = pi^2 / sin(pi x)^2 - psi_1(1 - x), and psi_1(1 - x) ~ 1 / (1 - x)
    np.testing.assert_allclose(compiled[-1], np.pi ** 2 - 1e-15, rtol=1e-15)


def test_complex_polygamma_against_mpmath():
    compiled = _compiled(np.complex128)
    worst = 0.0
    for n in ORDERS:
        ref = _mpmath_polygamma(n, _PG)
        eager = np.asarray(_poly(n, _PG))
        rel = _rel(eager, ref)
        worst = max(worst, rel.max())
        assert rel.max() < 1e-14, (n, _PG[np.argmax(rel)], rel.max())
        np.testing.assert_allclose(compiled[f"polygamma{n}"][2], eager, rtol=4e-15, atol=0)
    assert worst < 1e-14
    # on the real axis it agrees with the real polygamma
    x = np.array([0.25, 3.0, 17.5, -2.5, -0.75])
    for n in ORDERS:
        np.testing.assert_allclose(np.asarray(_poly(n, x + 0j)).real, ss.polygamma(n, x),
                                   rtol=1e-14)


# points away from the poles of digamma and from erf's huge values, for finite differences
ZG = np.array([0.7 + 0.4j, -1.3 + 0.8j, -0.6 - 1.1j, 1.9 - 0.3j, 0.3 + 0.2j, -2.5 + 0.4j])


@pytest.mark.parametrize("name", ["erf", "erfc", "digamma"])
def test_check_grads_second_order(name):
    check_grads(getattr(ts, name), (ZG,), order=2)


def test_derivatives_by_hand():
    t = RNG.standard_normal(ZG.shape) + 1j * RNG.standard_normal(ZG.shape)
    d = _derivatives(ZG, t)
    erf1 = 2 / np.sqrt(np.pi) * np.exp(-ZG ** 2)
    np.testing.assert_allclose(d["erf'"], erf1 * t, rtol=1e-14)
    np.testing.assert_allclose(d["erfc'"], -erf1 * t, rtol=1e-14)
    np.testing.assert_allclose(d["erf''"], -2 * ZG * erf1 * t * t, rtol=1e-13)
    # JAX's convention: the gradient of a real f(z) is conj(df/dx + i df/dy), which for
    # f = re(g), g holomorphic, is g'(z), and for f = |g|^2 is 2 conj(g) g'
    np.testing.assert_allclose(d["erf grad"], erf1, rtol=1e-14)
    np.testing.assert_allclose(d["erfc grad"], -erf1, rtol=1e-14)
    g = tj.grad(lambda u: tnp.sum(tnp.abs(ts.erf(u)) ** 2))(ZG)
    np.testing.assert_allclose(g, 2 * np.conj(ss.erf(ZG)) * erf1, rtol=1e-13)
    # digamma' = polygamma(1, .): against finite differences of SciPy's complex psi, which
    # shares nothing with the helper
    h = 1e-5
    fd = (ss.psi(ZG + h) - ss.psi(ZG - h)) / (2 * h)
    np.testing.assert_allclose(d["digamma'"], fd * t, rtol=1e-8)
    np.testing.assert_allclose(d["digamma grad"], fd, rtol=1e-8)
    # and against the series sum_k 1/(z + k)^2 with its integral tail
    k = np.arange(200000.0)[:, None]
    series = np.sum(1.0 / (ZG + k) ** 2, axis=0) + 1.0 / (ZG + 200000.0) \
        + 0.5 / (ZG + 200000.0) ** 2
    np.testing.assert_allclose(np.asarray(_poly(1, ZG)), series, rtol=1e-11)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_compiled_derivatives_match_interpreted(dtype):
    z = ZG.astype(dtype)
    t = (RNG.standard_normal(ZG.shape) + 1j * RNG.standard_normal(ZG.shape)).astype(dtype)
    compiled, eager = DERIVATIVES(z, t), _derivatives(z, t)
    rtol = 1e-13 if dtype == np.complex128 else 2e-6
    for key in eager:
        assert compiled[key].dtype == dtype, key
        np.testing.assert_allclose(compiled[key], eager[key], rtol=rtol, err_msg=key)


def test_vjp_and_vmap():
    z = ZG[:3]
    out, pullback = tj.vjp(ts.psi, z)
    ct = np.array([1.0 + 0.5j, -2.0j, 0.25])
    (g,) = pullback(ct)
    # the pullback of a holomorphic f is ct * f'(z) in JAX's convention
    np.testing.assert_allclose(g, ct * np.asarray(_poly(1, z)), rtol=1e-14)
    np.testing.assert_array_equal(tj.vmap(ts.erf)(z.reshape(3, 1)), ss.erf(z).reshape(3, 1))


def test_errors_name_the_problem(monkeypatch):
    for fn in (ts.erfinv, ts.gammaln, lambda z: ts.polygamma(2, z), ts.logit):
        with pytest.raises(TypeError, match="complex"):
            fn(np.ones(2, np.complex128))
        with pytest.raises(TypeError, match="real operands, not complex"):
            fn(0.5j)  # a Python complex too
    with pytest.raises(TypeError, match="does not accept int64"):
        tj.jit(sp.erf)(np.arange(3))
    monkeypatch.setattr(special_helpers, "complex_abi_supported", lambda: False)
    with pytest.raises(NotImplementedError, match="complex erf call SciPy.*disable_jit"):
        special_helpers.preamble(["_sf_cerf"])
    with pytest.raises(NotImplementedError, match="complex psi, erfc call"):
        tj.jit(lambda z: ts.erfc(z) * ts.psi(z))(ZG)
    assert special_helpers.preamble(["_sf_erfinv"])  # the real helpers do not need it
