"""Complex elementwise functions on special values (0, -0, ±1, ±inf, nan in each part, tiny
and huge parts), compiled and eager, against NumPy, in complex128 and complex64.

The compiled loops call the helpers of `compiler/complex_math.py`; the functions are
compiled in a few grouped programs (a compile costs about a second). Equality is per part:
both NaN, or equal with the same sign of zero; finite values may also differ by a few ulps
of the larger modulus (a part far below the modulus is rounding noise, its sign too).

Left out, since NumPy's own results depend on the platform or the precision it computes in
(`scripts/complex_sweep.py` prints them):
- multiply and square where NumPy's SIMD loops contract a*c - b*d into a fused multiply-add
  (so (max + max j)**2 is -inf+infj there, nan+infj in its scalar path and ours, and the
  sign of an underflowed zero differs): compared with the plain formula instead;
- power with exponents of huge parts (the phase b log a is beyond 1e300, so its cosine is
  noise) and, in complex64, powers whose b log a overflows float32 (NumPy's cpowf has
  nan/inf there, ours is computed in float64), or whose error NumPy's float32 arithmetic
  amplifies (compared at 1e-3).
"""

import functools
import itertools

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

UNARY = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
         "arcsinh", "arccosh", "arctanh", "exp", "expm1", "exp2", "log", "log1p", "log2",
         "log10", "sqrt", "negative", "absolute", "sign", "rint", "square", "reciprocal",
         "conjugate", "isnan", "isfinite", "isinf", "real", "imag", "angle"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "fmax", "fmin",
          "equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]
POWERS = [-3, -2, -1, 0, 1, 2, 3, 5, 0.5]
DTYPES = [np.complex128, np.complex64]
# complex64 compiles a subset (a compile costs seconds): the helpers that compute in the
# operand's precision, and representatives of those computing in float64 (the others run
# the very code complex128 does, on widened operands) and of the compositions
UNARY_C64 = ["sin", "arccosh", "exp2", "log1p", "log10", "sign", "square", "reciprocal",
             "isinf", "rint"]
BINARY_C64 = ["multiply", "divide", "fmin", "less"]


def _parts(dtype, huge=True):
    fi = np.finfo(np.dtype(dtype).char.lower())
    p = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, fi.tiny, -fi.tiny,
         fi.smallest_subnormal, 0.5, 2.0, 3.0]
    return np.array(p + ([fi.max, -fi.max] if huge else []), fi.dtype)


def _grid(dtype, huge=True):
    p = _parts(dtype, huge)
    re, im = np.meshgrid(p, p, indexing="ij")
    return _pack(re.ravel(), im.ravel(), dtype)


def _pack(re, im, dtype):
    z = np.empty(re.shape, dtype)
    z.real, z.imag = re, im
    return z


def _pairs(a, b):
    x, y = np.array(list(itertools.product(a, b))).T
    return x.copy(), y.copy()


def _mismatches(got, ref, rtol):
    """Indices where `got` is not NumPy's `ref` (NaN-aware, zeros signed)."""
    got, ref = np.atleast_1d(np.asarray(got)), np.atleast_1d(np.asarray(ref))
    assert got.shape == ref.shape and got.dtype == ref.dtype, (got.dtype, ref.dtype)
    if got.dtype.kind in "biu":
        return np.flatnonzero(got != ref)
    g, r = got.astype(np.complex128), ref.astype(np.complex128)
    tiny = 2 * np.finfo(ref.real.dtype).smallest_subnormal  # subnormal rounding
    ok = np.ones(g.shape, bool)
    with np.errstate(all="ignore"):
        for part in (np.real, np.imag):
            a, b = part(g), part(r)
            exact = (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))
            near = (np.isfinite(a) & np.isfinite(b) & (np.signbit(a) == np.signbit(b))
                    & (np.abs(a - b) <= np.maximum(rtol * np.maximum(abs(a), abs(b)), tiny)))
            ok &= exact | near
        # or within rtol of the larger modulus (a part far below it is rounding noise)
        scale = np.maximum(np.abs(g), np.abs(r))
        ok |= (np.isfinite(g) & np.isfinite(r) & (scale > 0)
               & (np.abs(g - r) <= rtol * scale))
    return np.flatnonzero(~ok)


def _check(name, got, ref, inputs, rtol):
    bad = _mismatches(got, ref, rtol)
    shown = [f"{inputs[i] if inputs is not None else ''} -> {np.atleast_1d(got)[i]} "
             f"(NumPy {np.atleast_1d(ref)[i]})" for i in bad[:5]]
    assert not bad.size, f"{name}: {bad.size} differ: " + "; ".join(shown)


def _rtol(dtype):
    return 8 * np.finfo(np.dtype(dtype).char.lower()).eps


def _unary_outputs(z):
    names = UNARY if z.dtype == np.complex128 else UNARY_C64
    out = {name: getattr(tnp, name)(z) for name in names}
    for e in POWERS:
        out[f"power_{e}"] = tnp.power(z, e)
    if isinstance(z, np.ndarray):  # eager: NumPy's own operator
        return out
    # the operator: ndarray ** (Python) -1, 2, 0.5 is reciprocal, square, sqrt in NumPy
    out.update({"op_-1": z ** -1, "op_2": z ** 2, "op_0.5": z ** 0.5, "op_2.0": z ** 2.0})
    return out


def _unary_reference(z):
    with np.errstate(all="ignore"):
        out = {name: getattr(np, name)(z) for name in UNARY}
        for e in POWERS:
            out[f"power_{e}"] = np.power(z, e)
        out.update({"op_-1": z ** -1, "op_0.5": z ** 0.5, "op_2.0": z ** 2.0})
    # NumPy's SIMD square may fuse x*x - y*y (platform-dependent): the plain formula
    out["square"] = out["op_2"] = _plain_mul(z, z)
    return out


def _plain_mul(a, b):
    with np.errstate(all="ignore"):
        return _pack(a.real * b.real - a.imag * b.imag, a.real * b.imag + a.imag * b.real,
                     a.dtype)


@functools.cache
def unary_results(dtype):
    """One compiled program per dtype, shared by the tests."""
    z = _grid(dtype)
    return z, tj.jit(_unary_outputs)(z), _unary_outputs(z), _unary_reference(z)


_EXTRA = [f"power_{e}" for e in POWERS] + ["op_-1", "op_2", "op_0.5", "op_2.0"]
UNARY_CASES = [pytest.param(d, name, id=f"{np.dtype(d).name}-{name}") for d in DTYPES
               for name in (UNARY if d == np.complex128 else UNARY_C64) + _EXTRA]


@pytest.mark.parametrize("dtype, name", UNARY_CASES)
def test_unary_special_values(dtype, name):
    z, compiled, eager, ref = unary_results(dtype)
    # exp(0.5 log z): log's rounding, times |log z| ~ 745 for subnormal z (in NumPy's too;
    # complex64: NumPy's float32 cpowf, ours from float64)
    rtol = _rtol(z.dtype)
    if name == "power_0.5":
        rtol = 1e-12 if z.dtype == np.complex128 else 1e-5
    _check(f"jit {name}", compiled[name], ref[name], z, rtol)
    if name != "square" and name in eager:
        _check(f"eager {name}", eager[name], ref[name], z, rtol)


def test_named_cases():
    """The cases that were wrong, spelled out (compiled, complex128)."""
    z, got, _, _ = unary_results(np.complex128)
    inf, nan = np.inf, np.nan

    def at(name, value):
        (i,) = np.flatnonzero((z.real == value.real) & (z.imag == value.imag)
                              & (np.signbit(z.real) == np.signbit(value.real))
                              & (np.signbit(z.imag) == np.signbit(value.imag))
                              | (np.isnan(z.imag) & np.isnan(value.imag)
                                 & (z.real == value.real)))
        return got[name][i]

    assert at("log2", 0j) == complex(-inf, 0.0)                 # was -inf+nanj
    assert not np.signbit(at("log2", 0j).imag)
    assert at("exp2", complex(inf, 0.0)) == complex(inf, 0.0)   # was inf+nanj
    assert at("sign", complex(0.0, inf)) == 1j                  # was nan+nanj
    assert at("cos", complex(inf, inf)).real == inf             # was -inf+infj
    assert np.isnan(at("cos", complex(inf, inf)).imag)
    assert at("log1p", complex(-np.finfo(float).max, -0.0)).imag == -np.pi
    r = at("reciprocal", 0j)
    assert np.isnan(r.real) and np.isnan(r.imag)                # was inf+nanj
    assert at("isinf", complex(inf, nan))                       # was False
    root = np.sqrt(np.complex128(5e-324j))                      # raised ZeroDivisionError
    assert abs(at("sqrt", complex(0.0, 5e-324)) - root) < 1e-15 * abs(root)


def _binary_outputs(a, b, base, exponent):
    names = BINARY if a.dtype == np.complex128 else BINARY_C64
    out = {name: getattr(tnp, name)(a, b) for name in names}
    out["power"] = tnp.power(base, exponent)
    if a.dtype == np.complex128:  # complex64's float_power is this complex128 power
        out["float_power"] = tnp.float_power(base, exponent)
    return out


@functools.cache
def binary_results(d):
    """One compiled program per dtype. power's exponents have no huge parts (the phase
    b log a beyond 1e300 is noise)."""
    args = [*_pairs(_grid(d), _grid(d)), *_pairs(_grid(d), _grid(d, huge=False))]
    return args, tj.jit(_binary_outputs)(*args), _binary_outputs(*args)


@pytest.mark.parametrize("dtype, name", [
    pytest.param(d, name, id=f"{np.dtype(d).name}-{name}") for d in DTYPES
    for name in (BINARY if d == np.complex128 else BINARY_C64)])
def test_binary_special_values(dtype, name):
    (a, b, _, _), compiled, eager = binary_results(dtype)
    with np.errstate(all="ignore"):
        ref = getattr(np, name)(a, b)
    if name == "multiply":  # NumPy's SIMD multiply may fuse (platform-dependent)
        ref = _plain_mul(a, b)
    inputs = np.stack([a, b], axis=-1)
    _check(f"jit {name}", compiled[name], ref, inputs, _rtol(a.dtype))
    if name != "multiply":
        _check(f"eager {name}", eager[name], ref, inputs, _rtol(a.dtype))


@pytest.mark.parametrize("dtype, name", [
    pytest.param(np.complex128, "power", id="complex128-power"),
    pytest.param(np.complex128, "float_power", id="complex128-float_power"),
    # complex64's float_power is complex128's power
    pytest.param(np.complex64, "power", id="complex64-power")])
def test_power_special_values(dtype, name):
    """Every base, exponents without huge parts. complex64 power is compared with NumPy's
    complex128 power rounded: NumPy's complex64 one (cpowf) computes b log a in float32,
    which overflows (nan/inf parts) for huge bases, and amplifies float32 rounding by
    |b log a| (a part next to an infinite one has no correct digit)."""
    (_, _, base, exponent), compiled, _ = binary_results(dtype)
    dtype = base.dtype
    with np.errstate(all="ignore"):
        ref = getattr(np, name)(base, exponent)
        if name == "power" and dtype == np.complex64:  # but whole exponents: float32 too
            wide = np.power(base.astype(np.complex128),
                            exponent.astype(np.complex128)).astype(np.complex64)
            whole = (exponent.imag == 0) & (np.abs(exponent.real) < 100) & \
                (exponent.real == np.round(exponent.real))
            ref = np.where(whole | (base == 0), ref, wide)
    _check(f"jit {name}", compiled[name], ref, np.stack([base, exponent], axis=-1),
           1e-10 if ref.dtype == np.complex128 else _rtol(dtype))


def _order_outputs(z):
    n = z.shape[0]
    m = z.reshape(n // 15, 15)
    return {"sort": tnp.sort(z), "argsort": tnp.argsort(z), "argmax": tnp.argmax(z),
            "argmin": tnp.argmin(z), "max": tnp.max(z), "min": tnp.min(z),
            "max_rows": tnp.max(m, axis=1), "argmin_cols": tnp.argmin(m, axis=0),
            "min_2d": tnp.min(m[::-1], axis=(0, 1)), "median": tnp.median(z)}


def _order_reference(z):
    n = z.shape[0]
    m = z.reshape(n // 15, 15)
    with np.errstate(all="ignore"):
        return {"sort": np.sort(z, kind="stable"), "argsort": np.argsort(z, kind="stable"),
                "argmax": np.argmax(z), "argmin": np.argmin(z), "max": np.max(z),
                "min": np.min(z), "max_rows": np.max(m, axis=1),
                "argmin_cols": np.argmin(m, axis=0), "min_2d": np.min(m[::-1], axis=(0, 1)),
                "median": np.median(z)}


@pytest.mark.parametrize("shuffle", [False, True])
def test_order_with_nans(shuffle):
    """NumPy's order: NaN parts last (x+yj, x+nanj, nan+yj, nan+nanj), extrema the first
    element with a NaN part; without NaNs, the plain lexicographic order (eager only for
    those and complex64: the same code)."""
    z = _grid(np.complex128)
    if shuffle:
        z = z[np.random.default_rng(1).permutation(z.size)]
    cases = [("jit", z, tj.jit(_order_outputs)(z))]
    for w in (z, z[~np.isnan(z)][:195], _grid(np.complex64)):
        cases.append(("eager", w, _order_outputs(w)))
    for label, w, got in cases:
        ref = _order_reference(w)
        for name in ref:
            _check(f"{label} {name} {w.dtype}", got[name], ref[name], None, 0.0)


def test_derivatives_unaffected():
    """The rewritten front-end functions (reciprocal and square from parts, isinf) and
    the compiled helpers keep their derivatives."""
    z = np.array([0.3 + 0.7j, -1.2 + 0.4j, 2.0 - 3.0j])

    def f(z):
        return tnp.sum(tnp.abs(tnp.reciprocal(z) + tnp.square(z) * tnp.sin(z)
                               + tnp.sqrt(z) * tnp.log1p(z) + tnp.arcsinh(z) / z) ** 2)

    check_grads(f, (z,), order=2)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(z), tj.grad(f)(z), rtol=1e-12)
