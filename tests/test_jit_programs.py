"""Compiled programs compute what the interpreter computes.

Every program here is jitted once at module level and compared, output by output, with the
same function evaluated by NumPy (the un-jitted function on NumPy arrays, or the interpreter
under `tj.disable_jit()`): 1e-12 relative in float64, float32 tolerance in float32, exact for
integers and booleans, same dtypes, same shapes, NaN and inf in the same places. Gradients are
also checked against hand derivations or central finite differences.

Compile time is the budget: each distinct program costs Numba 0.2-1.5 s, so programs gather
many operations (outputs are dicts, so a failure names the operation) and tests that can share
a program use inputs of the same shapes and dtypes.
"""

import numpy as np
import pytest
from test_jit import assert_close, fd_grad

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
import tracejit.scipy.special as tss
from tracejit.primitives import elementwise as ew
from tracejit.tree_util import tree_flatten

RNG = np.random.default_rng(20260527)


def _uniform(lo, hi, shape, dtype=np.float64):
    return RNG.uniform(lo, hi, size=shape).astype(dtype)


# Fixed inputs, shared by the tests below (one compile per program and dtype).
X01 = _uniform(0.1, 0.9, (3, 4))  # inside every domain (log, arcsin, arctanh, ...)
Y12 = _uniform(0.5, 2.0, (3, 4))
Z = RNG.standard_normal((3, 4)) * 2.0
X3 = RNG.standard_normal((2, 3, 4))


def _rtol(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def check(jitted, *args, rtol=1e-12, disable=False):
    """The compiled result of `jitted(*args)` against the interpreter's; returns it."""
    got = jitted(*args)
    if disable:
        with tj.disable_jit():
            want = jitted(*args)
    else:
        want = jitted.fun(*args)
    assert_close(got, want, rtol=rtol)
    return got


# -- elementwise primitives ------------------------------------------------------------------

def y_of(x):
    """(0.1, 0.9) mapped onto (0.2, 9): either side of gammaln's minimum."""
    return 1.0 / x ** 2 - 1.0 + 0.2 * x


def unary_ops(x, z):
    """x in (0.1, 0.9), z of either sign."""
    return {
        "exp": tnp.exp(z), "expm1": tnp.expm1(z), "exp2": tnp.exp2(z), "log": tnp.log(x),
        "log1p": tnp.log1p(x), "log2": tnp.log2(x), "log10": tnp.log10(x),
        "sqrt": tnp.sqrt(x), "cbrt": tnp.cbrt(z), "sin": tnp.sin(z), "cos": tnp.cos(z),
        "tan": tnp.tan(x), "arcsin": tnp.arcsin(x), "arccos": tnp.arccos(x),
        "arctan": tnp.arctan(z), "sinh": tnp.sinh(z), "cosh": tnp.cosh(z), "tanh": tnp.tanh(z),
        "arcsinh": tnp.arcsinh(z), "arccosh": tnp.arccosh(1.0 + x), "arctanh": tnp.arctanh(x),
        "sigmoid": nn.sigmoid(z), "abs": tnp.abs(z), "sign": tnp.sign(z),
        "floor": tnp.floor(z), "ceil": tnp.ceil(z), "round": tnp.round(z),
        "round1": tnp.round(z, 1), "trunc": tnp.trunc(z), "rint": tnp.rint(z), "neg": -z,
        "square": tnp.square(z), "reciprocal": tnp.reciprocal(x), "relu": nn.relu(z),
        "softplus": nn.softplus(z), "erf": tss.erf(z), "erfc": tss.erfc(z),
        "erfinv": tss.erfinv(x), "gammaln": tss.gammaln(y_of(x)), "digamma": tss.digamma(x),
        "polygamma": tss.polygamma(2, x),
    }


def binary_ops(x, y, z):
    """x in (0.1, 0.9), y in (0.5, 2), z of either sign."""
    return {
        "add": x + y, "sub": z - y, "mul": z * y, "div": z / y, "pow": x ** y,
        "pow_half": x ** 0.5, "maximum": tnp.maximum(x, z), "minimum": tnp.minimum(z, x),
        "fmax": tnp.fmax(z, y), "fmin": tnp.fmin(y, z), "arctan2": tnp.arctan2(z, y),
        "mod": tnp.mod(z, y), "floor_divide": tnp.floor_divide(z, y),
        "hypot": tnp.hypot(z, y), "nextafter": tnp.nextafter(x, y),
        "logaddexp": tnp.logaddexp(z, y), "logaddexp2": tnp.logaddexp2(z, x),
        "copysign": tnp.copysign(y, z), "clip": tnp.clip(z, -1.0, 1.5),
        "sq": z ** 2, "cube": z ** 3, "inv_sq": z ** -2, "fifth": z ** 5, "zeroth": z ** 0,
        "float_power": tnp.float_power(x, 3), "xlogy": tss.xlogy(z, y),
        "xlog1py": tss.xlog1py(z, x),
    }


def logical_ops(x, z, mask):
    """Comparisons, boolean logic, select and conversions; `mask` is a bool input."""
    a, b = x > 0.5, z < 0.0
    logz = tnp.log(z)  # NaN where z < 0, -inf never (z != 0)
    return {
        "eq": x == z, "ne": x != z, "lt": x < z, "le": z <= x, "gt": x > z, "ge": z >= x,
        "eq_self": z == z, "and": a & b, "or": a | mask, "xor": a ^ b, "invert": ~a,
        "logical_not": tnp.logical_not(mask), "logical_and": tnp.logical_and(a, mask),
        "logical_or": tnp.logical_or(a, b), "logical_xor": tnp.logical_xor(mask, b),
        "where": tnp.where(a, x, z), "where_scalar": tnp.where(mask, 1.0, z),
        "where_int": tnp.where(b, 3, -1), "isnan": tnp.isnan(logz),
        "isfinite": tnp.isfinite(logz), "isinf": tnp.isinf(1.0 / (z - z)),
        "signbit": tnp.signbit(z), "to_int": (z * 10.0).astype(np.int64),
        "to_int32": (z * 10.0).astype(np.int32), "bool_to_float": mask.astype(np.float64),
        "float_to_bool": (z - z).astype(bool), "mask_times": mask * z,
        "to_f32": z.astype(np.float32), "count": tnp.sum(mask), "any": tnp.any(a, axis=1),
        "all": tnp.all(mask | a, axis=0),
    }


def int_ops(i, j, k):
    """i, j int64 (j > 0), k int32."""
    return {
        "add": i + j, "sub": i - j, "mul": i * j, "floordiv": i // j, "mod": i % j,
        "and": i & j, "or": i | j, "xor": i ^ j, "neg": -i, "abs": tnp.abs(i),
        "maximum": tnp.maximum(i, j), "minimum": tnp.minimum(i, k), "sq": i ** 2,
        "cube": i ** 3, "truediv": i / j, "sign": tnp.sign(i), "eq": i == j,
        "weak": i * 3 + 1, "int32": k * 2, "promote": i + k, "to_f64": i.astype(np.float64),
        "to_f32": k.astype(np.float32), "sum": tnp.sum(i), "max0": tnp.max(i, axis=0),
        "prod1": tnp.prod(j, axis=1), "positive": tnp.sum(i > 0, axis=1),
        "argmax": tnp.argmax(i, axis=1), "cumsum": tnp.cumsum(i, axis=0),
        "matmul": i @ j.T,
    }


def narrow_int_ops(u, i, k):
    """uint8, int8 and int32 arithmetic wraps around at every step, as in NumPy."""
    s = u + u
    return {
        "u8_add": s, "u8_add_compare": s > 150, "u8_mul_div": (u * u) // 7, "u8_neg": -u,
        "u8_pow": u ** 3, "u8_sum": tnp.sum(u), "i8_mid": (i + i) // 2,
        "i8_max": tnp.max(i * 2), "i8_cumsum": tnp.cumsum(i), "i8_abs": tnp.abs(i - 100),
        "i32_mul_div": (k * 4) // 3, "i32_compare": k + k > 0, "to_i16": u.astype(np.int16) * 300,
    }


def edge_ops(x, y):
    """NaN, inf, huge, signed zeros and halves."""
    return {
        "floor": tnp.floor(x), "ceil": tnp.ceil(x), "trunc": tnp.trunc(x),
        "round": tnp.round(x), "sign": tnp.sign(x), "abs": tnp.abs(x),
        "maximum_xy": tnp.maximum(x, y), "maximum_yx": tnp.maximum(y, x),
        "minimum_xy": tnp.minimum(x, y), "minimum_yx": tnp.minimum(y, x),
        "fmax": tnp.fmax(x, y), "fmin": tnp.fmin(x, y), "max": tnp.max(x), "min": tnp.min(y),
        "argmax": tnp.argmax(x), "argmin": tnp.argmin(y), "clip": tnp.clip(x, -1.0, 1.0),
        "mod": tnp.mod(x, y), "floor_divide": tnp.floor_divide(x, y), "div": x / y,
        "fmod": tnp.fmod(x, y), "signbit": tnp.signbit(y),
        "sqrt": tnp.sqrt(y), "log": tnp.log(y), "exp": tnp.exp(x), "sigmoid": nn.sigmoid(x),
        "isnan": tnp.isnan(x), "isfinite": tnp.isfinite(x), "relu": nn.relu(x),
        "logaddexp": tnp.logaddexp(x, y),
    }


def int_edge_ops(i, j):
    return {"floordiv": i // j, "mod": i % j, "truediv": i / j}


def complex_ops(z, x):
    """Complex values in loops: cmath calls, parts, conjugates, complex literals."""
    w = tnp.conj(z) * (1 - 2j) + x
    return {
        "exp": tnp.exp(z), "log": tnp.log(w), "sqrt": tnp.sqrt(z), "sin": tnp.sin(z),
        "tanh": tnp.tanh(z), "abs": tnp.abs(w), "real": tnp.real(w), "imag": tnp.imag(w),
        "angle": tnp.angle(z), "sign": tnp.sign(z), "pow": z ** w, "div": z / w,
        "sum": tnp.sum(w), "round": tnp.round(z), "isfinite": tnp.isfinite(w),
    }


unary_jit = tj.jit(unary_ops)
complex_jit = tj.jit(complex_ops)
binary_jit = tj.jit(binary_ops)
logical_jit = tj.jit(logical_ops)
int_jit = tj.jit(int_ops)
narrow_int_jit = tj.jit(narrow_int_ops)
edge_jit = tj.jit(edge_ops)
int_edge_jit = tj.jit(int_edge_ops)

MASK = RNG.random((3, 4)) < 0.5
I = RNG.integers(-6, 7, size=(3, 4))
J = RNG.integers(1, 5, size=(3, 4))
K = RNG.integers(-3, 4, size=(3, 4)).astype(np.int32)
EDGE_X = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 2.5, -2.5, 0.5, -0.0, 3.7, -1.5, 9e18])
EDGE_Y = np.array([1.0, np.nan, 2.0, np.nan, 0.0, 3.0, -2.5, np.nan, 0.0, 1.0, -0.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_math(dtype):
    got = check(unary_jit, X01.astype(dtype), Z.astype(dtype), rtol=_rtol(dtype))
    assert all(v.dtype == dtype for v in got.values())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_arithmetic(dtype):
    got = check(binary_jit, X01.astype(dtype), Y12.astype(dtype), Z.astype(dtype),
                rtol=_rtol(dtype))
    assert got["float_power"].dtype == np.float64  # float_power computes in float64
    assert got["add"].dtype == dtype


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_comparisons_logic_select_convert():
    got = check(logical_jit, X01, Z, MASK)
    assert got["where_int"].dtype == np.int64 and got["to_int32"].dtype == np.int32
    assert got["eq_self"].all() and got["isnan"].any() and got["isinf"].all()


def test_integer_programs():
    got = check(int_jit, I, J, K)
    assert got["promote"].dtype == np.int64 and got["int32"].dtype == np.int32
    assert got["truediv"].dtype == np.float64 and got["matmul"].dtype == np.int64


def test_narrow_integers_wrap_around_like_numpy():
    u = np.array([200, 100, 255, 3], dtype=np.uint8)
    i = np.array([100, -100, 5, -128], dtype=np.int8)
    k = np.array([2 ** 30, 5, -2 ** 31, 7], dtype=np.int32)
    got = check(narrow_int_jit, u, i, k)
    assert got["u8_add"].dtype == np.uint8 and got["i8_max"].dtype == np.int8
    assert list(got["u8_mul_div"]) == [9, 2, 0, 1]  # (200*200) % 256 // 7 == 9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_inf_and_huge_values():
    check(edge_jit, EDGE_X, EDGE_Y)


def rows_with_nan(x):
    """Row and column reductions (and their consumers) over rows holding NaN and inf."""
    return {
        "max1": tnp.max(x, axis=1), "min1": tnp.min(x, axis=1), "max0": tnp.max(x, axis=0),
        "min0": tnp.min(x, axis=0), "maxall": tnp.max(x), "lse": nn.logsumexp(x, axis=1),
        "softmax": nn.softmax(x, axis=1), "log_softmax": nn.log_softmax(x, axis=1),
        "argmax": tnp.argmax(x, axis=1), "argmin": tnp.argmin(x, axis=1),
        "range": tnp.max(x, axis=1) - tnp.min(x, axis=1), "sum1": tnp.sum(x, axis=1),
        "prod1": tnp.prod(x, axis=1),
        "scaled": tnp.max(tnp.clip(x, -1.0, 1.0), axis=1, keepdims=True) * x,
        "int_max": tnp.max((x > 0).astype(np.int32) * 3, axis=1),
        "bool_max": tnp.max(x > 2, axis=1), "bool_min": tnp.min(x > 0, axis=1),
    }


rows_nan_jit = tj.jit(rows_with_nan)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_row_reductions_with_nan_and_inf():
    x = np.array([[1.0, np.nan, 3.0, 0.0], [np.inf, 1.0, -np.inf, 2.0],
                  [-np.inf, -np.inf, -np.inf, -np.inf], [np.nan] * 4, [1.0, 2.0, 3.0, 4.0],
                  [np.inf, np.inf, 0.0, 1.0], [-1.0, np.nan, np.inf, -np.inf]])
    got = check(rows_nan_jit, x)
    assert np.isnan(got["max1"][[0, 3, 6]]).all() and got["max1"][1] == np.inf


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_integer_division_by_zero():
    # NumPy gives 0 (with a warning) for integer // and % by zero, and inf/nan for /.
    got = check(int_edge_jit, np.array([5, -5, 7, 0, -7]), np.array([0, 0, 2, 0, -3]))
    assert list(got["floordiv"]) == [0, 0, 3, 0, 2]


CZ = RNG.standard_normal((3, 4)) + 1j * RNG.standard_normal((3, 4))


def test_complex_values_compile_as_numpy_computes_them():
    for dtype, tol in ((np.complex128, 1e-12), (np.complex64, 1e-5)):
        z = CZ.astype(dtype)
        x = X01.astype(np.float32 if dtype == np.complex64 else np.float64)
        got = complex_jit(z, x)
        with np.errstate(all="ignore"):
            want = {k: np.asarray(v) for k, v in complex_ops(z, x).items()}
        for k, v in want.items():
            assert np.asarray(got[k]).dtype == v.dtype, k
            np.testing.assert_allclose(got[k], v, rtol=tol, atol=tol, err_msg=k)


def test_every_elementwise_primitive_is_compiled_somewhere():
    """The programs above reach every elementwise primitive (and select, convert,
    integer_pow): a new primitive needs a line in one of them."""
    seen = set()
    for jitted, args in [(unary_jit, (X01, Z)), (binary_jit, (X01, Y12, Z)),
                         (logical_jit, (X01, Z, MASK)), (int_jit, (I, J, K)),
                         (narrow_int_jit, (I.astype(np.uint8), I.astype(np.int8), K)),
                         (edge_jit, (EDGE_X, EDGE_Y)), (complex_jit, (CZ, X01))]:
        seen |= {e.prim.name for e in jitted.lower(*args).ir.eqns}
    wanted = {p.name for p in ew.elementwise_table} | {"integer_pow", "select", "convert"}
    assert wanted - seen == set(), f"not compiled by any test: {sorted(wanted - seen)}"


# -- broadcasting ----------------------------------------------------------------------------

def broadcasting(a, b, c, d, s):
    """a (3,4), b (4,), c (3,1), d (1,4), s a scalar."""
    return {
        "array_scalar": a + s, "scalar_vector": s * b, "col_row": c + b, "row_col": d * c,
        "row": a - d, "col": a / (c + 3.0), "where3": tnp.where(a > 0, c, d),
        "to3d": tnp.broadcast_to(b, (2, 3, 4)) * c, "literal": c + 1.5,
        "scalar_fn": tnp.exp(s) + tnp.sin(b), "vector_matrix": b * a * s,
    }


broadcast_jit = tj.jit(broadcasting)
A34, B4, C31, D14 = Z, RNG.standard_normal(4), RNG.standard_normal((3, 1)), \
    RNG.standard_normal((1, 4))


@pytest.mark.parametrize("s", [0.75, np.float64(-1.25), np.array(2.5)],
                         ids=["python-float", "numpy-scalar", "0d-array"])
def test_broadcasting(s):
    got = check(broadcast_jit, A34, B4, C31, D14, s)
    assert got["col_row"].shape == (3, 4) and got["to3d"].shape == (2, 3, 4)


def _sum_sin(a, b, c):
    return tnp.sum(tnp.sin(a * c + b))


grad_broadcast_jit = tj.jit(tj.grad(_sum_sin, argnums=(0, 1, 2)))


def test_gradient_of_broadcasting_sums_back_to_operand_shapes():
    ga, gb, gc = check(grad_broadcast_jit, A34, B4, C31)
    cos = np.cos(A34 * C31 + B4)
    assert_close((ga, gb, gc), (cos * C31, cos.sum(axis=0), (cos * A34).sum(axis=1,
                                                                            keepdims=True)))


# -- reductions ------------------------------------------------------------------------------

AXES = [0, 1, 2, -1, (0, 2), (1, 2), (0, 1), (2, 0), None]


def _reductions(fn):
    def program(x):
        out = {f"axis={ax}": fn(x, axis=ax) for ax in AXES}
        out["keep1"] = fn(x, axis=1, keepdims=True)
        out["keep02"] = fn(x, axis=(0, 2), keepdims=True)
        out["keepall"] = fn(x, axis=None, keepdims=True)
        out["consumer"] = x - fn(x, axis=0)  # an accumulated result read by a later loop
        return out
    program.__name__ = f"reduce_{fn.__name__}"
    return tj.jit(program)


REDUCTIONS = {fn.__name__: _reductions(fn)
              for fn in (tnp.sum, tnp.max, tnp.min, tnp.prod, tnp.mean, tnp.var)}


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reductions_over_every_axis_combination(name):
    got = check(REDUCTIONS[name], X3)
    assert got["keep02"].shape == (1, 3, 1) and np.ndim(got["axis=None"]) == 0


def row_consumers(x, x3):
    """Row reductions whose results later loops of the same row read."""
    mean = tnp.mean(x, axis=1, keepdims=True)
    centered = x - mean
    padded = tnp.pad(x, ((1, 1), (2, 0)))[1:-1, 1:]
    return {
        "softmax": nn.softmax(x, axis=1), "logsumexp": nn.logsumexp(x, axis=1),
        "log_softmax": nn.log_softmax(x, axis=-1),
        "layernorm": centered / tnp.sqrt(tnp.mean(centered ** 2, axis=1, keepdims=True)
                                         + 1e-5),
        "l2": x / tnp.sqrt(tnp.sum(x * x, axis=1, keepdims=True)),
        "softmax_cols": nn.softmax(x, axis=0), "softmax3": nn.softmax(x3, axis=-1),
        "logsumexp3": nn.logsumexp(x3, axis=(1, 2)), "logsumexp_all": nn.logsumexp(x),
        "std": tnp.std(x, axis=1), "max_minus_min": tnp.max(x, axis=1) - tnp.min(x, axis=1),
        "centered_sum": tnp.sum(centered * x, axis=1),
        "softmax_then_cumsum": tnp.cumsum(nn.softmax(x, axis=1), axis=1),
        # Guarded (pad/concatenate) reads inside the row loops of a row reduction.
        "pad_log_softmax": padded - nn.logsumexp(padded, axis=1, keepdims=True),
        "concat_softmax": nn.softmax(tnp.concatenate([x[:, :2], -x[:, 2:]], axis=1), axis=1),
    }


row_jit = tj.jit(row_consumers)


def test_row_reductions_followed_by_consumers():
    got = check(row_jit, Z, X3)
    np.testing.assert_allclose(got["softmax"].sum(axis=1), 1.0, rtol=1e-14)


def xent(logits, labels):
    return tnp.mean(nn.logsumexp(logits, 1) - logits[tnp.arange(logits.shape[0]), labels])


def layernorm_loss(x, w):
    c = x - tnp.mean(x, axis=1, keepdims=True)
    y = c / tnp.sqrt(tnp.mean(c * c, axis=1, keepdims=True) + 1e-3)
    return tnp.sum(tnp.tanh(y) * w)


xent_vg_jit = tj.jit(tj.value_and_grad(xent))
layernorm_grad_jit = tj.jit(tj.grad(layernorm_loss))


def test_softmax_cross_entropy_gradient_by_hand():
    rng = np.random.default_rng(87)
    logits = rng.standard_normal((6, 5)) * 3.0
    labels = np.array([0, 4, 4, 2, 0, 1])  # repeated and edge labels
    value, g = check(xent_vg_jit, logits, labels)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    want = p.copy()
    want[np.arange(6), labels] -= 1.0
    lse = np.log(e.sum(axis=1)) + logits.max(axis=1)
    assert_close((value, g), (np.mean(lse - logits[np.arange(6), labels]), want / 6))


def test_layernorm_gradient_against_finite_differences():
    rng = np.random.default_rng(770)
    x, w = Z, rng.standard_normal(4)
    g = check(layernorm_grad_jit, x, w)
    np.testing.assert_allclose(g, fd_grad(lambda x: layernorm_loss(x, w), x), rtol=1e-6,
                               atol=1e-8)


def arg_and_cumulative(x):
    return {
        "argmax0": tnp.argmax(x, axis=0), "argmin1": tnp.argmin(x, axis=1),
        "argmax-1": tnp.argmax(x, axis=-1), "argmax_flat": tnp.argmax(x),
        "argmin_keep": tnp.argmin(x, axis=2, keepdims=True), "cumsum0": tnp.cumsum(x, axis=0),
        "cumsum2": tnp.cumsum(x, axis=2), "cumsum_flat": tnp.cumsum(x),
        "cumprod1": tnp.cumprod(x, axis=1), "cumprod_rev": tnp.flip(tnp.cumprod(
            tnp.flip(x, 2), axis=2), 2),
        "cumsum_of_exp": tnp.cumsum(tnp.exp(x), axis=1),
        "take_argmax": tnp.take_along_axis(x, tnp.argmax(x, axis=1, keepdims=True), axis=1),
    }


arg_jit = tj.jit(arg_and_cumulative)


def test_argmax_argmin_cumsum_cumprod():
    got = check(arg_jit, X3)
    ties = np.zeros((2, 3, 4))
    ties[0, 1, 2] = ties[1, 2, 1] = 1.0
    got_ties = check(arg_jit, ties)  # ties: the first index wins, as in NumPy
    assert got["argmax0"].dtype == np.int64 and list(got_ties["argmax_flat"].shape) == []


def _cumulative_loss(x):
    return (tnp.sum(tnp.cumprod(x, axis=1) ** 2) + tnp.prod(x[0])
            + tnp.sum(tnp.cumsum(x[:, ::-1], axis=0) * x))


cumulative_grad_jit = tj.jit(tj.grad(_cumulative_loss))


def test_cumulative_gradients_with_zeros():
    x = Z.copy()
    x[1, 2] = 0.0  # exact derivatives through a zero
    g = check(cumulative_grad_jit, x)
    np.testing.assert_allclose(g, fd_grad(_cumulative_loss, x), rtol=1e-6, atol=1e-6)


# -- structural ops --------------------------------------------------------------------------

V6 = RNG.standard_normal(6)
M45 = RNG.standard_normal((4, 5))


def slicing(x, v):
    return {
        "step": x[::2], "neg_cols": x[:, ::-1], "neg_step": x[::-2, 1:4:2],
        "tail": x[1:3, -2:], "v_neg3": v[::-3], "v_back": v[4:1:-1], "last_row": x[-1],
        "col": x[:, 2], "ellipsis": x[..., 1], "newaxis": v[None, :, None],
        "both_neg": x[-1:0:-2, ::-2], "empty": v[3:3], "scalar": x[2, -1] * v,
        "diag": tnp.diagonal(x), "chain": x[1:, ::-1][::2, 1:],
    }


def padding_concat(x, v):
    return {
        "pad": tnp.pad(v, (2, 3)), "pad_value": tnp.pad(x, ((1, 0), (0, 2)),
                                                        constant_values=1.5),
        "pad_all": tnp.pad(v, 1), "pad_of_expr": tnp.pad(tnp.exp(x), ((0, 1), (2, 0))),
        "concat0": tnp.concatenate([x, x * 2.0], axis=0),
        "concat1": tnp.concatenate([x, x[:, :2]], axis=1),
        "concat_many": tnp.concatenate([v, v[:2], v[::-1]]), "stack": tnp.stack([v, -v]),
        "hstack": tnp.hstack([v, v]), "vstack": tnp.vstack([v, v]),
        "sum_of_concat": tnp.sum(tnp.concatenate([x, tnp.sin(x)], axis=1), axis=1),
    }


def rearranging(x, v):
    return {
        "flip": tnp.flip(x), "flip1": tnp.flip(x, axis=1), "roll": tnp.roll(v, 2),
        "roll0": tnp.roll(x, -1, axis=0), "roll_flat": tnp.roll(x, 3),
        "reshape": x.reshape(5, 4), "ravel": x.reshape(-1), "reshape3": v.reshape(2, 3, 1),
        "T": x.T, "transpose": tnp.transpose(x[None], (2, 0, 1)),
        "swapaxes": tnp.swapaxes(x[:, :, None], 0, 2), "moveaxis": tnp.moveaxis(x[None], 0, 2),
        "tile": tnp.tile(v, 2), "tile2": tnp.tile(x, (2, 1)), "repeat": tnp.repeat(v, 2),
        "repeat0": tnp.repeat(x, 3, axis=0), "expand": tnp.expand_dims(v, 0),
        "squeeze": tnp.squeeze(x[:1]), "tril": tnp.tril(x), "triu": tnp.triu(x, 1),
        "ravel_T": tnp.ravel(x.T), "reshape_sum": tnp.sum(x.reshape(2, 10), axis=1),
        "T_exp": tnp.exp(x.T) * v[:4],
    }


slicing_jit = tj.jit(slicing)
padding_jit = tj.jit(padding_concat)
rearranging_jit = tj.jit(rearranging)


def test_slicing_with_steps_and_negative_steps():
    got = check(slicing_jit, M45, V6)
    assert got["empty"].shape == (0,) and got["newaxis"].shape == (1, 6, 1)


def test_pad_and_concatenate():
    check(padding_jit, M45, V6)


def test_flip_roll_reshape_transpose_tile_repeat():
    got = check(rearranging_jit, M45, V6)
    assert got["swapaxes"].shape == (1, 5, 4)


def _structural_loss(x):
    y = tnp.concatenate([tnp.pad(x[::2, ::-1], ((1, 0), (0, 0))), tnp.roll(x, 1, axis=1)[:3]])
    return tnp.sum(tnp.sin(y) * tnp.tile(x[:, :3].T, (1, 2))[:, :y.shape[1]].sum())


structural_grad_jit = tj.jit(tj.grad(_structural_loss))


def test_gradient_through_structural_ops():
    g = check(structural_grad_jit, M45)
    np.testing.assert_allclose(g, fd_grad(_structural_loss, M45), rtol=1e-6, atol=1e-7)


def _unrolled(x):
    """A Python loop unrolled into a 300-equation elementwise chain (its gradient: 600)."""
    y = x
    for _ in range(100):
        y = tnp.sin(y) * 0.9 + x
    return tnp.sum(y)


unrolled_grad_jit = tj.jit(tj.grad(_unrolled))


def test_long_unrolled_elementwise_chain():
    x = np.linspace(-1.0, 2.0, 8)
    g = check(unrolled_grad_jit, x)
    y, dy = x, np.ones_like(x)  # forward-mode recursion by hand
    for _ in range(100):
        y, dy = 0.9 * np.sin(y) + x, 0.9 * np.cos(y) * dy + 1.0
    assert_close(g, dy, rtol=1e-10)


# -- gather and scatter-add ------------------------------------------------------------------

def gathers(x, v, idx, idx2):
    return {
        "v_idx": v[idx], "rows": x[idx], "cols": x[:, idx], "pairs": x[idx, idx + 1],
        "idx2d": x[idx2], "take": tnp.take(v, idx), "take_axis1": tnp.take(x, idx, axis=1),
        "take_along0": tnp.take_along_axis(x, idx2[:, :1] + tnp.zeros((1, 5), int), axis=0),
        "take_along1": tnp.take_along_axis(x, tnp.argmax(x, axis=1, keepdims=True), axis=1),
        "const_idx": x[np.array([3, 0, 0]), 2], "mixed": x[1:, idx][::-1],
        "gather_of_expr": tnp.exp(x)[idx, 0] * v[idx2[0, 1]],
    }


gather_jit = tj.jit(gathers)
IDX = np.array([0, 3, 3, 1, -1, 2])  # repeated and negative (wrapped) indices
IDX2 = np.array([[0, 1], [2, 2], [3, 0]])


def test_gathers():
    got = check(gather_jit, M45, V6, IDX, IDX2)
    assert got["idx2d"].shape == (3, 2, 5)
    assert_close(got["pairs"], M45[IDX, IDX + 1])  # NumPy itself, with wrapped -1


def test_out_of_range_traced_indices_are_clamped_like_the_interpreter():
    idx = np.array([0, 3, 3, 1, -1, 9])  # 9: out of range, clamped (not an error)
    check(gather_jit, M45, V6, idx, IDX2, disable=True)


def _gather_loss(x, v, w, idx):
    return (tnp.sum(v[idx] * w) + tnp.sum(x[idx % 4, idx] ** 2)
            + tnp.sum(tnp.take(x, idx, axis=1) * tnp.sin(w)))


gather_grad_jit = tj.jit(tj.grad(_gather_loss, argnums=(0, 1)))


def test_scatter_add_gradients_of_gathers_with_repeated_indices():
    rng = np.random.default_rng(692)
    w = rng.standard_normal(6)
    gx, gv = check(gather_grad_jit, M45, V6, w, IDX)
    want_v = np.zeros(6)
    np.add.at(want_v, IDX, w)
    want_x = np.zeros((4, 5))
    np.add.at(want_x, (IDX % 4, IDX), 2.0 * M45[IDX % 4, IDX])
    np.add.at(want_x, (slice(None), IDX), np.broadcast_to(np.sin(w), (4, 6)))
    assert_close((gx, gv), (want_x, want_v))


# -- linear algebra --------------------------------------------------------------------------

def products(a, b, v, w, i, j):
    return {
        "mm": a @ b, "mv": a @ v, "vm": w @ a, "vv": v @ v, "dot": tnp.dot(a, b),
        "einsum_mm": tnp.einsum("ij,jk->ik", a, b), "einsum_T": tnp.einsum("ij->ji", a),
        "einsum_full": tnp.einsum("ij,ij->", a, a), "outer": tnp.einsum("i,j->ij", v, w),
        "np_outer": tnp.outer(w, v), "inner": tnp.inner(v, v), "gram": a.T @ a,
        "fused_operands": (a * 2.0) @ tnp.exp(b), "int_mm": i @ j,
        "int_dot": tnp.dot(i[0], j[:, 0]), "chain": (a @ b).T @ w,
    }


def batched(t, u, v):
    return {
        "bmm": t @ u, "einsum_b": tnp.einsum("bij,bjk->bik", t, u),
        "einsum_bv": tnp.einsum("bij,j->bi", t, v), "broadcast_mm": t @ u[0],
    }


products_jit = tj.jit(products)
batched_jit = tj.jit(batched)


def test_matmul_dot_einsum():
    rng = np.random.default_rng(857)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    v, w = rng.standard_normal(4), rng.standard_normal(3)
    i, j = rng.integers(-3, 4, (3, 4)), rng.integers(-3, 4, (4, 2))
    got = check(products_jit, a, b, v, w, i, j)
    assert got["int_mm"].dtype == np.int64 and np.ndim(got["vv"]) == 0


def test_batched_matmul_and_einsum():
    rng = np.random.default_rng(647)
    t, u, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5)), \
        rng.standard_normal(4)
    got = check(batched_jit, t, u, v)
    assert got["bmm"].shape == (2, 3, 5)


def mlp_loss(params, x):
    h = tnp.tanh(x @ params["w1"] + params["b1"])
    return tnp.mean((h @ params["w2"]) ** 2)


def mlp_hand(params, x):
    w1, b1, w2 = params["w1"], params["b1"], params["w2"]
    h = np.tanh(x @ w1 + b1)
    out = h @ w2
    d_out = 2.0 * out / out.size
    dh = np.outer(d_out, w2) * (1.0 - h * h)
    return {"w1": x.T @ dh, "b1": dh.sum(axis=0), "w2": h.T @ d_out}


mlp_grad_jit = tj.jit(tj.grad(mlp_loss))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_gradient_dict_params(dtype):
    rng = np.random.default_rng(7)
    params = {"w1": rng.standard_normal((4, 3)), "b1": rng.standard_normal(3),
              "w2": rng.standard_normal(3)}
    x = rng.standard_normal((5, 4))
    p = {k: v.astype(dtype) for k, v in params.items()}
    g = check(mlp_grad_jit, p, x.astype(dtype), rtol=_rtol(dtype))
    assert set(g) == {"w1", "b1", "w2"} and all(v.dtype == dtype for v in g.values())
    want = mlp_hand(params, x)  # float64 hand derivation
    for k in want:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-10 if dtype == np.float64 else 1e-4,
                                   atol=1e-12 if dtype == np.float64 else 1e-5)


# -- dtypes, scalars, 0-d, pytrees -----------------------------------------------------------

def float32_program(x, y):
    return {
        "softmax": nn.softmax(x, axis=1), "total": tnp.sum(tnp.exp(x) * 2.0),
        "weak_scalar": x * 0.1, "sigmoid": nn.sigmoid(x), "mean": tnp.mean(x),
        "var0": tnp.var(x, axis=0), "dot": x @ y, "upcast": x.astype(np.float64) * 0.1,
        "mixed": x + y[0, 0].astype(np.float64), "lse": nn.logsumexp(x, axis=1),
    }


float32_jit = tj.jit(float32_program)


def test_float32_program_keeps_float32():
    rng = np.random.default_rng(878)
    x = Z.astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    got = check(float32_jit, x, y, rtol=1e-5)
    for k, v in got.items():
        want = np.float64 if k in ("upcast", "mixed") else np.float32
        assert np.asarray(v).dtype == want, k


def zero_d(s, x, n):
    return {"scaled": s * x, "s_plus": s + 1.0, "sin_s": tnp.sin(s), "sum": tnp.sum(x),
            "elem": x[1], "n_times": n * s, "as_array": tnp.reshape(x[0], ())}


zero_d_jit = tj.jit(zero_d)


@pytest.mark.parametrize("s", [np.float64(2.0), np.array(-0.5), 1.5],
                         ids=["numpy-scalar", "0d-array", "python-float"])
def test_zero_d_inputs_and_outputs(s):
    got = check(zero_d_jit, s, V6, np.int64(3))
    for k in ("s_plus", "sin_s", "sum", "elem", "n_times", "as_array"):
        assert np.ndim(got[k]) == 0 and np.asarray(got[k]).dtype == np.float64, k


def python_scalars(x, a, n, flag):
    return tnp.where(flag, x * a + n, x - n), n * 2, a * n


python_scalars_jit = tj.jit(python_scalars)


@pytest.mark.parametrize("a,n,flag", [(2.0, 3, True), (-0.25, 7, False)])
def test_python_scalar_arguments(a, n, flag):
    x32 = Z.astype(np.float32)
    out, n2, an = check(python_scalars_jit, x32, a, n, flag, rtol=1e-6)
    assert out.dtype == np.float32  # weak Python scalars keep float32
    assert n2 == 2 * n and an == pytest.approx(a * n)


def pytrees(params, batch):
    w, b = params["w"], params["b"]
    xs, ys = batch
    pred = xs @ w + b
    return {"loss": tnp.mean((pred - ys) ** 2), "pred": pred,
            "stats": (tnp.max(pred), [tnp.min(pred), w * 2.0])}


pytree_jit = tj.jit(pytrees)
pytree_grad_jit = tj.jit(tj.value_and_grad(lambda p, batch: pytrees(p, batch)["loss"]))


def test_pytrees_in_and_out():
    rng = np.random.default_rng(958)
    params = {"w": rng.standard_normal(4), "b": np.float64(0.5)}
    batch = (rng.standard_normal((6, 4)), rng.standard_normal(6))
    got = check(pytree_jit, params, batch)
    assert isinstance(got["stats"], tuple) and isinstance(got["stats"][1], list)
    value, g = check(pytree_grad_jit, params, batch)
    xs, ys = batch
    r = xs @ params["w"] + params["b"] - ys
    assert_close((value, g), (np.mean(r ** 2), {"w": 2.0 * xs.T @ r / 6,
                                                "b": np.float64(2.0 * r.sum() / 6)}))


CONSTS = {
    "f64": RNG.standard_normal(5) / 3.0,
    "special": np.array([1.0, np.nan, np.inf, -np.inf, -0.0]),
    "f32": np.array([0.1, -np.inf, 1e-8, 3.0e38, np.nan], dtype=np.float32),
    "int": np.array([-2 ** 40, 3, 0, 7, 1]),
    "bool": np.array([True, False, True, True, False]),
}


def with_constants(x):
    c = CONSTS  # concrete arrays the function closes over: constants of the program
    return {"f64": x * c["f64"], "special": tnp.where(tnp.isnan(c["special"]), x,
                                                      c["special"] - x),
            "f32": x.astype(np.float32) * c["f32"], "int": x + c["int"],
            "bool": tnp.where(c["bool"], x, -x), "returned": c["f64"]}


constants_jit = tj.jit(with_constants)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_captured_constants_nan_inf_and_exact_values():
    rng = np.random.default_rng(572)
    x = rng.standard_normal(5)
    got = check(constants_jit, x)
    # The constants are arguments of the module's `run`, never text in its source: passed
    # explicitly, they give the same bits as the compiled call.
    low = constants_jit.lower(x)
    assert repr(float(CONSTS["f64"][0]))[:12] not in low.source
    assert "1099511627776" not in low.source
    assert len(low.const_names) == len(low.consts) >= 5
    flat = tree_flatten(got)[0]
    for a, b in zip(low.module.run(x, constants=low.consts), flat):
        np.testing.assert_array_equal(a, b)


def test_integer_and_bool_inputs_flow_through():
    def f(x, labels, mask):
        picked = x[tnp.arange(3), labels]
        return tnp.where(mask, picked, 0.0), labels + 1, mask & (labels > 0)
    jf = tj.jit(f)
    got = check(jf, Z[:, :3], np.array([0, 2, 1]), np.array([True, False, True]))
    assert got[1].dtype == np.int64 and got[2].dtype == np.bool_
