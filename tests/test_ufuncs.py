"""The elementwise NumPy surface of `tracejit.numpy`.

For every function: values and dtypes against NumPy, eagerly (NumPy inputs) and through
tracing (the recorded IR passes the checker, and `jvp`/`grad` produce NumPy's values);
derivatives against finite differences (`check_grads`, second order) and against hand
derivations; and the NumPy protocols (`np.sin(t)`, operators on traced values).
"""

import operator

import numpy as np
import pytest
from conftest import checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

F64, F32 = np.dtype("float64"), np.dtype("float32")
LN2, LN10 = np.log(2.0), np.log(10.0)


# -- helpers ---------------------------------------------------------------------------------

def _rtol(dtype) -> float:
    return 1e-5 if np.dtype(dtype) == F32 else 1e-12


def _assert_same(actual, expected, rtol=1e-12, atol=0.0):
    """Same dtype, same shape, same values (NaN == NaN, inf == inf)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def _traced_value(f, *args):
    """`f(*args)` computed through tracing: the primal output of a JVP (all args traced)."""
    tangents = tuple(np.zeros_like(np.asarray(a)) if not isinstance(a, (bool, int, float))
                     else type(a)(0) for a in args)
    return tj.jvp(f, args, tangents)[0]


def _unbroadcast(g, shape):
    """Sum a gradient of the broadcast output down to an operand's shape."""
    g = np.asarray(g)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, d in enumerate(shape):
        if d == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def _uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


def _signed(lo, hi):
    """Magnitudes in [lo, hi] with random signs: away from 0."""
    return lambda rng, shape: (rng.uniform(lo, hi, size=shape)
                               * rng.choice([-1.0, 1.0], size=shape))


def _off_integer(rng, shape):
    """Values away from integers and half-integers (kinks of floor/ceil/round/trunc)."""
    frac = rng.choice([0.2, 0.3, 0.7, 0.8], size=shape) + rng.uniform(-0.03, 0.03, size=shape)
    return rng.integers(-3, 3, size=shape) + frac


def _sample(sampler, shape, dtype, seed=0):
    return np.asarray(sampler(np.random.default_rng(seed), shape), dtype=dtype)


# -- unary functions -------------------------------------------------------------------------

# name -> (sampler inside the domain, away from kinks; hand-derived derivative)
UNARY = {
    "abs": (_signed(0.5, 2.0), np.sign),
    "negative": (_uniform(-2.0, 2.0), lambda x: -np.ones_like(x)),
    "exp": (_uniform(-2.0, 2.0), np.exp),
    "expm1": (_uniform(-2.0, 2.0), np.exp),
    "exp2": (_uniform(-2.0, 2.0), lambda x: LN2 * np.exp2(x)),
    "log": (_uniform(0.5, 3.0), lambda x: 1 / x),
    "log1p": (_uniform(-0.5, 2.0), lambda x: 1 / (1 + x)),
    "log2": (_uniform(0.5, 3.0), lambda x: 1 / (x * LN2)),
    "log10": (_uniform(0.5, 3.0), lambda x: 1 / (x * LN10)),
    "sqrt": (_uniform(0.5, 3.0), lambda x: 0.5 / np.sqrt(x)),
    "cbrt": (_signed(0.5, 2.0), lambda x: 1 / (3 * np.cbrt(x) ** 2)),
    "square": (_uniform(-2.0, 2.0), lambda x: 2 * x),
    "reciprocal": (_signed(0.5, 2.0), lambda x: -1 / x**2),
    "sin": (_uniform(-3.0, 3.0), np.cos),
    "cos": (_uniform(-3.0, 3.0), lambda x: -np.sin(x)),
    "tan": (_uniform(-1.2, 1.2), lambda x: 1 / np.cos(x) ** 2),
    "arcsin": (_uniform(-0.8, 0.8), lambda x: 1 / np.sqrt(1 - x**2)),
    "arccos": (_uniform(-0.8, 0.8), lambda x: -1 / np.sqrt(1 - x**2)),
    "arctan": (_uniform(-3.0, 3.0), lambda x: 1 / (1 + x**2)),
    "sinh": (_uniform(-2.0, 2.0), np.cosh),
    "cosh": (_uniform(-2.0, 2.0), np.sinh),
    "tanh": (_uniform(-2.0, 2.0), lambda x: 1 - np.tanh(x) ** 2),
    "arcsinh": (_uniform(-3.0, 3.0), lambda x: 1 / np.sqrt(x**2 + 1)),
    "arccosh": (_uniform(1.2, 3.0), lambda x: 1 / np.sqrt(x**2 - 1)),
    "arctanh": (_uniform(-0.8, 0.8), lambda x: 1 / (1 - x**2)),
}
# Piecewise constant: the derivative is exactly zero.
ZERO_GRAD_UNARY = {
    "sign": _signed(0.5, 2.0),
    "floor": _off_integer,
    "ceil": _off_integer,
    "round": _off_integer,
    "trunc": _off_integer,
}
ALL_UNARY = [*UNARY, *ZERO_GRAD_UNARY, "isfinite", "isnan", "logical_not"]

# Integer/bool inputs, some outside a function's domain (NaN/inf must match NumPy too).
INT_INPUTS = {
    "int64": np.array([-2, -1, 0, 1, 2, 3]),
    "int32": np.array([-2, 0, 1, 3], np.int32),
    "int16": np.array([-2, 0, 1, 3], np.int16),
    "int8": np.array([-2, 0, 1, 3], np.int8),
    "uint8": np.array([0, 1, 2, 200], np.uint8),
    "bool": np.array([True, False, True]),
}


def _float_input(name, dtype):
    x = _sample(UNARY[name][0] if name in UNARY else ZERO_GRAD_UNARY.get(name,
                                                                         _uniform(-2, 2)),
                (2, 3), dtype)
    if name in ("isfinite", "isnan"):
        x.flat[:3] = [np.nan, np.inf, -np.inf]
    return x


def _unary_inputs():
    for name in ALL_UNARY:
        for dtype in ("float64", "float32"):
            yield pytest.param(name, dtype, id=f"{name}-{dtype}")
        for kind in INT_INPUTS:
            yield pytest.param(name, kind, id=f"{name}-{kind}")


@pytest.mark.parametrize("name, kind", list(_unary_inputs()))
def test_unary_values_and_dtypes_match_numpy(name, kind):
    x = INT_INPUTS[kind] if kind in INT_INPUTS else _float_input(name, kind)
    if name == "reciprocal" and kind in INT_INPUTS:
        x = x[x != 0]  # NumPy's integer 1 / 0 is undefined
    np_fn, fn = getattr(np, name), getattr(tnp, name)
    try:
        with np.errstate(all="ignore"):
            expected = np_fn(x)
    except TypeError:  # e.g. negative/sign of bools: NumPy refuses, and so do we
        with pytest.raises(TypeError):
            fn(x)
        with pytest.raises(TypeError):
            tj.make_ir(fn)(x)
        return
    rtol = _rtol(expected.dtype) if expected.dtype != np.float16 else 1e-3
    _assert_same(fn(x), expected, rtol)
    ir = checked_ir(fn, x)
    assert ir.out_avals[0].dtype == expected.dtype
    assert ir.out_avals[0].shape == expected.shape
    _assert_same(_traced_value(fn, x), expected, rtol)


@pytest.mark.parametrize("name", ALL_UNARY)
@pytest.mark.parametrize("value", [0.75, 1, True], ids=["float", "int", "bool"])
def test_unary_on_python_scalars(name, value):
    """Python scalars alone take NumPy's default dtypes (float64, int64, bool)."""
    np_fn, fn = getattr(np, name), getattr(tnp, name)
    if name == "arccosh" and value == 0.75:
        value = 1.75
    try:
        with np.errstate(all="ignore"):
            expected = np_fn(value)
    except TypeError:
        with pytest.raises(TypeError):
            fn(value)
        return
    rtol = 1e-3 if expected.dtype == np.float16 else 1e-12
    _assert_same(fn(value), expected, rtol)
    _assert_same(_traced_value(fn, value), expected, rtol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_derivatives_match_hand_derivation(name, dtype):
    sampler, deriv = UNARY[name]
    fn = getattr(tnp, name)
    x = _sample(sampler, (5,), dtype)
    t = _sample(_uniform(-1, 1), (5,), dtype, seed=1)
    expected_d = deriv(x.astype(np.float64))
    y, ty = tj.jvp(fn, (x,), (t,))
    _assert_same(y, getattr(np, name)(x), _rtol(dtype))
    _assert_same(ty, (expected_d * t).astype(dtype), 10 * _rtol(dtype))
    g = tj.grad(lambda x: tnp.sum(fn(x)))(x)
    _assert_same(g, expected_d.astype(dtype), 10 * _rtol(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)], ids=["0d", "vec", "mat"])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_check_grads(name, shape, dtype):
    x = _sample(UNARY[name][0], shape, dtype, seed=2)
    check_grads(getattr(tnp, name), (x,), order=2)


@pytest.mark.parametrize("name", ["sin", "exp", "log", "sqrt", "arctanh", "square",
                                  "reciprocal", "abs"])
def test_unary_check_grads_python_scalar_argument(name):
    x = float(_sample(UNARY[name][0], (), np.float64, seed=3))
    check_grads(getattr(tnp, name), (x,), order=2)
    g = tj.grad(getattr(tnp, name))(x)
    np.testing.assert_allclose(g, UNARY[name][1](x), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(ZERO_GRAD_UNARY))
def test_piecewise_constant_functions_have_zero_gradient(name, dtype):
    fn = getattr(tnp, name)
    x = _sample(ZERO_GRAD_UNARY[name], (2, 3), dtype)
    g = tj.grad(lambda x: tnp.sum(fn(x)))(x)
    assert g.dtype == x.dtype
    np.testing.assert_array_equal(g, np.zeros_like(x))
    # Product rule with f' = 0: d/dx sum(f(x) * x) = f(x).
    g = tj.grad(lambda x: tnp.sum(fn(x) * x))(x)
    _assert_same(g, getattr(np, name)(x))
    _, ty = tj.jvp(fn, (x,), (np.ones_like(x),))
    _assert_same(ty, np.zeros_like(x))


def test_round_with_decimals_values_and_zero_gradient():
    x = np.array([1.234, -2.345, 0.051, 7.5])
    _assert_same(tnp.round(x, 2), np.round(x, 2))
    _assert_same(tnp.round(x, 1), np.round(x, 1))
    _assert_same(_traced_value(lambda x: tnp.round(x, 2), x), np.round(x, 2))
    checked_ir(lambda x: tnp.round(x, 2), x)
    np.testing.assert_array_equal(tj.grad(lambda x: tnp.sum(tnp.round(x, 2)))(x), 0.0)
    # round half to even, as NumPy
    h = np.array([0.5, 1.5, 2.5, -0.5, -1.5])
    _assert_same(tnp.round(h), np.round(h))
    _assert_same(_traced_value(tnp.round, h), np.round(h))


def test_integer_rounding_is_the_identity():
    x = np.array([-3, 0, 4], np.int32)
    for name in ("floor", "ceil", "trunc", "round"):
        _assert_same(getattr(tnp, name)(x), getattr(np, name)(x))
        _assert_same(_traced_value(getattr(tnp, name), x), getattr(np, name)(x))


# -- binary functions ------------------------------------------------------------------------

def _pair(sx, sy, ok=None):
    """A sampler of (x, y) for shapes (None = a Python float); rejection until `ok`."""
    def sample(rng, shape_x, shape_y):
        for _ in range(10_000):
            x = np.asarray(sx(rng, () if shape_x is None else shape_x))
            y = np.asarray(sy(rng, () if shape_y is None else shape_y))
            if ok is None or np.all(ok(x, y)):
                x = float(x) if shape_x is None else x
                y = float(y) if shape_y is None else y
                return x, y
        raise AssertionError("no sample found")
    return sample


def _frac_ok(x, y):
    q = np.asarray(x) / np.asarray(y)
    return np.abs(q - np.round(q)) > 0.15  # away from the jumps of mod and floor_divide


def _distinct(x, y):
    return np.abs(np.asarray(x) - np.asarray(y)) > 0.25  # away from ties of max and min


def _d_logaddexp(x, y):
    return 1 / (1 + np.exp(y - x)), 1 / (1 + np.exp(x - y))


# name -> (pair sampler, hand derivative (d/dx, d/dy) or None for a zero gradient)
BINARY = {
    "add": (_pair(_uniform(-2, 2), _uniform(-2, 2)), lambda x, y: (1.0 + 0 * x, 1.0 + 0 * y)),
    "subtract": (_pair(_uniform(-2, 2), _uniform(-2, 2)),
                 lambda x, y: (1.0 + 0 * x, -1.0 + 0 * y)),
    "multiply": (_pair(_uniform(-2, 2), _uniform(-2, 2)), lambda x, y: (y + 0 * x, x + 0 * y)),
    "divide": (_pair(_uniform(-2, 2), _signed(0.5, 2)), lambda x, y: (1 / y + 0 * x, -x / y**2)),
    "true_divide": (_pair(_uniform(-2, 2), _signed(0.5, 2)),
                    lambda x, y: (1 / y + 0 * x, -x / y**2)),
    "mod": (_pair(_uniform(-3, 3), _signed(0.7, 2), _frac_ok),
            lambda x, y: (1.0 + 0 * x * y, -np.floor(x / y))),
    "floor_divide": (_pair(_uniform(-3, 3), _signed(0.7, 2), _frac_ok), None),
    "maximum": (_pair(_uniform(-2, 2), _uniform(-2, 2), _distinct),
                lambda x, y: (1.0 * (x > y), 1.0 * (y > x))),
    "minimum": (_pair(_uniform(-2, 2), _uniform(-2, 2), _distinct),
                lambda x, y: (1.0 * (x < y), 1.0 * (y < x))),
    "fmax": (_pair(_uniform(-2, 2), _uniform(-2, 2), _distinct),
             lambda x, y: (1.0 * (x > y), 1.0 * (y > x))),
    "fmin": (_pair(_uniform(-2, 2), _uniform(-2, 2), _distinct),
             lambda x, y: (1.0 * (x < y), 1.0 * (y < x))),
    "arctan2": (_pair(_signed(0.5, 2), _uniform(-2, 2)),
                lambda x, y: (y / (x**2 + y**2), -x / (x**2 + y**2))),
    "hypot": (_pair(_signed(0.5, 2), _uniform(-2, 2)),
              lambda x, y: (x / np.hypot(x, y), y / np.hypot(x, y))),
    "power": (_pair(_uniform(0.5, 2), _uniform(-2, 2)),
              lambda x, y: (y * x ** (y - 1), np.log(x) * x**y)),
    "logaddexp": (_pair(_uniform(-3, 3), _uniform(-3, 3)), _d_logaddexp),
}
COMPARISONS = ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]
LOGICAL = ["logical_and", "logical_or"]
ALL_BINARY = [*BINARY, *COMPARISONS, *LOGICAL]
DIFF_BINARY = [n for n, (_, d) in BINARY.items() if d is not None]

SHAPE_PAIRS = {
    "0d": ((), ()),
    "vec": ((3,), (3,)),
    "bcast": ((3, 1), (4,)),
    "mat-0d": ((2, 3), ()),
    "0d-vec": ((), (4,)),
}


def _binary_sample(name, shape_x, shape_y, dtype_x=F64, dtype_y=F64, seed=0):
    sampler = BINARY[name][0] if name in BINARY else _pair(_uniform(-2, 2), _uniform(-2, 2))
    x, y = sampler(np.random.default_rng(seed), shape_x, shape_y)
    if name in COMPARISONS:  # make some elements equal
        x = np.where(np.arange(np.size(x)).reshape(np.shape(x)) % 2 == 0, np.round(x), x)
        y = np.round(y)
    if shape_x is not None:
        x = np.asarray(x, dtype_x)
    if shape_y is not None:
        y = np.asarray(y, dtype_y)
    return x, y


@pytest.mark.parametrize("shapes", list(SHAPE_PAIRS), ids=list(SHAPE_PAIRS))
@pytest.mark.parametrize("name", ALL_BINARY)
def test_binary_values_match_numpy_with_broadcasting(name, shapes):
    x, y = _binary_sample(name, *SHAPE_PAIRS[shapes])
    np_fn, fn = getattr(np, name), getattr(tnp, name)
    expected = np_fn(x, y)
    _assert_same(fn(x, y), expected)
    ir = checked_ir(fn, x, y)
    assert ir.out_avals[0].shape == np.shape(expected)
    assert ir.out_avals[0].dtype == expected.dtype
    _assert_same(_traced_value(fn, x, y), expected)
    # one operand traced, the other a NumPy constant
    _assert_same(_traced_value(lambda a: fn(a, y), x), expected)
    _assert_same(_traced_value(lambda b: fn(x, b), y), expected)


# Operand kinds: NumPy dtypes, NumPy scalars (strong) and Python scalars (weak, NEP 50).
OPERANDS = {
    "f64": lambda v: np.asarray(v, np.float64),
    "f32": lambda v: np.asarray(v, np.float32),
    "i64": lambda v: np.asarray(np.round(np.abs(v)) + 1, np.int64),
    "i32": lambda v: np.asarray(np.round(np.abs(v)) + 1, np.int32),
    "i8": lambda v: np.asarray(np.round(np.abs(v)) + 1, np.int8),
    "u8": lambda v: np.asarray(np.round(np.abs(v)) + 1, np.uint8),
    "bool": lambda v: np.asarray(v, np.float64) > 0,
    "py_float": lambda v: 1.5,
    "py_int": lambda v: 2,
    "py_bool": lambda v: True,
    "np_f64": lambda v: np.float64(1.5),
    "np_f32": lambda v: np.float32(1.5),
    "np_i8": lambda v: np.int8(2),
}
DTYPE_PAIRS = [
    ("f64", "f64"), ("f32", "f32"), ("f32", "f64"), ("f64", "f32"), ("f32", "py_float"),
    ("py_float", "f32"), ("f32", "py_int"), ("f32", "np_f64"), ("np_f32", "f64"),
    ("i32", "i64"), ("i32", "py_int"), ("py_int", "i8"), ("i32", "py_float"), ("i64", "f32"),
    ("u8", "i8"), ("i8", "np_i8"), ("bool", "bool"), ("bool", "f32"), ("bool", "py_int"),
    ("f32", "bool"), ("py_float", "py_int"), ("py_int", "py_int"),
]


def _is_py(v):
    return isinstance(v, (bool, int, float))


@pytest.mark.parametrize("kinds", DTYPE_PAIRS, ids=["-".join(k) for k in DTYPE_PAIRS])
@pytest.mark.parametrize("name", ALL_BINARY)
def test_binary_dtype_promotion_matches_numpy(name, kinds):
    x, y = _binary_sample(name, (3,), (3,))
    if name == "power":
        x = np.abs(x) + 0.5
    x, y = OPERANDS[kinds[0]](x), OPERANDS[kinds[1]](y)
    np_fn, fn = getattr(np, name), getattr(tnp, name)
    try:
        with np.errstate(all="ignore"):
            expected = np.asarray(np_fn(x, y))
    except TypeError:  # e.g. subtract of bools
        with pytest.raises(TypeError):
            fn(x, y)
        return
    rtol = 1e-3 if expected.dtype == np.float16 else _rtol(expected.dtype)
    _assert_same(fn(x, y), expected, rtol)
    if name == "power" and expected.dtype.kind in "biu":
        # Traced integer powers need a concrete scalar exponent: trace the base only.
        if np.ndim(y) == 0:
            _assert_same(_traced_value(lambda a: fn(a, y), x), expected, rtol)
        return
    traced = [a for a in (x, y) if not _is_py(a)]
    if traced:  # NumPy operands traced, Python scalars kept as weak constants
        def f(*args):
            it = iter(args)
            return fn(*[a if _is_py(a) else next(it) for a in (x, y)])
        _assert_same(_traced_value(f, *traced), expected, rtol)
        ir = checked_ir(f, *traced)
        assert ir.out_avals[0].dtype == expected.dtype
    # everything traced (Python scalars become weakly typed inputs)
    _assert_same(_traced_value(fn, x, y), expected, rtol)


@pytest.mark.parametrize("shapes", ["vec", "bcast", "mat-0d", "0d-vec"])
@pytest.mark.parametrize("name", DIFF_BINARY)
def test_binary_derivatives_match_hand_derivation(name, shapes):
    sx, sy = SHAPE_PAIRS[shapes]
    x, y = _binary_sample(name, sx, sy)
    dx, dy = BINARY[name][1](x, y)
    fn = getattr(tnp, name)
    tx, ty = np.full(np.shape(x), 0.3), np.full(np.shape(y), -0.7)
    out, tout = tj.jvp(fn, (x, y), (tx, ty))
    _assert_same(out, getattr(np, name)(x, y))
    _assert_same(tout, dx * tx + dy * ty, rtol=1e-10)
    gx, gy = tj.grad(lambda a, b: tnp.sum(fn(a, b)), argnums=(0, 1))(x, y)
    out_shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    _assert_same(gx, _unbroadcast(np.broadcast_to(dx, out_shape), np.shape(x)), rtol=1e-10)
    _assert_same(gy, _unbroadcast(np.broadcast_to(dy, out_shape), np.shape(y)), rtol=1e-10)


@pytest.mark.parametrize("shapes", ["0d", "vec", "bcast", "mat-0d"])
@pytest.mark.parametrize("name", DIFF_BINARY)
def test_binary_check_grads(name, shapes):
    x, y = _binary_sample(name, *SHAPE_PAIRS[shapes], seed=4)
    check_grads(getattr(tnp, name), (x, y), order=2)


@pytest.mark.parametrize("name", DIFF_BINARY)
def test_binary_check_grads_float32(name):
    x, y = _binary_sample(name, (3, 1), (4,), F32, F32, seed=5)
    fn = getattr(tnp, name)
    assert fn(x, y).dtype == F32
    check_grads(fn, (x, y), order=2)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", DIFF_BINARY)
def test_binary_check_grads_with_python_scalar_operand(name, dtype, side):
    """A Python-scalar operand is weak: float32 stays float32; its literal is in the IR."""
    fn = getattr(tnp, name)
    if side == "right":
        x, s = _binary_sample(name, (3,), None, dtype, seed=6)

        def f(a):
            return fn(a, s)
        expected = getattr(np, name)(x, s)
    else:
        s, x = _binary_sample(name, None, (3,), dtype_y=dtype, seed=6)

        def f(a):
            return fn(s, a)
        expected = getattr(np, name)(s, x)
    assert expected.dtype == np.dtype(dtype)
    _assert_same(f(x), expected, _rtol(dtype))
    _assert_same(_traced_value(f, x), expected, _rtol(dtype))
    ir = checked_ir(f, x)
    assert str(ir).splitlines()[0].endswith(f"-> {'f32' if dtype == 'float32' else 'f64'}[3]")
    check_grads(f, (x,), order=2)


def test_floor_divide_values_and_zero_gradient():
    x = np.array([-7.5, 7.5, 3.25, -0.5])
    y = np.array([2.0, -2.0, 1.5, 0.75])
    _assert_same(tnp.floor_divide(x, y), np.floor_divide(x, y))
    _assert_same(_traced_value(tnp.floor_divide, x, y), np.floor_divide(x, y))
    gx, gy = tj.grad(lambda a, b: tnp.sum(tnp.floor_divide(a, b)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, 0.0)
    np.testing.assert_array_equal(gy, 0.0)
    # x - (x // y) * y == mod(x, y): d/dx = 1, d/dy = -(x // y)
    gx, gy = tj.grad(lambda a, b: tnp.sum(a - (a // b) * b), argnums=(0, 1))(x, y)
    _assert_same(gx, np.ones_like(x))
    _assert_same(gy, -np.floor_divide(x, y))
    xi, yi = np.array([-7, 7, 3, 0]), np.array([2, -2, 3, 5])
    for fn in ("floor_divide", "mod"):
        _assert_same(getattr(tnp, fn)(xi, yi), getattr(np, fn)(xi, yi))
        _assert_same(_traced_value(getattr(tnp, fn), xi, yi), getattr(np, fn)(xi, yi))


def test_mod_follows_the_sign_of_the_divisor():
    x = np.array([-7.0, 7.0, -7.0, 7.0, 5.5])
    y = np.array([2.0, -2.0, -2.0, 2.0, 1.5])
    _assert_same(tnp.mod(x, y), np.mod(x, y))
    _assert_same(_traced_value(tnp.mod, x, y), np.mod(x, y))
    _assert_same(_traced_value(lambda a: a % 1.5, x), np.mod(x, 1.5))


# -- maximum / minimum ties, clip, where -----------------------------------------------------

@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_max_min_gradient_at_ties_splits_evenly(name):
    fn = getattr(tnp, name)
    x = np.array([1.0, 2.0, 3.0, -1.0])
    y = np.array([1.0, 3.0, 2.0, -1.0])
    is_max = name in ("maximum", "fmax")
    wins = (x > y) if is_max else (x < y)
    loses = (x < y) if is_max else (x > y)
    expected_gx = np.where(x == y, 0.5, np.where(wins, 1.0, 0.0))
    expected_gy = np.where(x == y, 0.5, np.where(loses, 1.0, 0.0))
    gx, gy = tj.grad(lambda a, b: tnp.sum(fn(a, b)), argnums=(0, 1))(x, y)
    _assert_same(gx, expected_gx)
    _assert_same(gy, expected_gy)
    _, t = tj.jvp(fn, (x, y), (np.ones(4), np.zeros(4)))
    _assert_same(t, expected_gx)
    # a tie with itself: both halves land on x
    _assert_same(tj.grad(lambda a: tnp.sum(fn(a, a)))(x), np.ones(4))
    # a tie with a Python scalar
    np.testing.assert_allclose(tj.grad(lambda a: fn(a, 1.0))(1.0), 0.5)
    np.testing.assert_allclose(tj.grad(lambda a: fn(a, 1.0))(np.array(1.0)), 0.5)


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_max_min_nan_handling_matches_numpy(name):
    x = np.array([1.0, np.nan, np.nan, 3.0])
    y = np.array([np.nan, 2.0, np.nan, 2.0])
    expected = getattr(np, name)(x, y)
    _assert_same(getattr(tnp, name)(x, y), expected)
    _assert_same(_traced_value(getattr(tnp, name), x, y), expected)


def test_max_min_of_integers_and_bools():
    a, b = np.array([1, 5, -3], np.int32), np.array([2, 4, -3], np.int8)
    for name in ("maximum", "minimum", "fmax", "fmin"):
        _assert_same(getattr(tnp, name)(a, b), getattr(np, name)(a, b))
        _assert_same(_traced_value(getattr(tnp, name), a, b), getattr(np, name)(a, b))
        _assert_same(getattr(tnp, name)(a, 2.5), getattr(np, name)(a, 2.5))
    p, q = np.array([True, False]), np.array([False, False])
    _assert_same(_traced_value(tnp.maximum, p, q), np.maximum(p, q))


CLIP_CASES = {
    "scalars": (-1.0, 1.0),
    "ints": (-1, 1),
    "min-only": (-1.0, None),
    "max-only": (None, 1.0),
    "arrays": (np.array([-1.0, -0.5, -2.0, 0.0, -1.5]), np.array([1.0, 0.5, 2.0, 1.8, 0.2])),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_clip_values_dtypes_and_gradient(case, dtype):
    lo, hi = CLIP_CASES[case]
    x = np.array([-1.7, -0.3, 0.4, 1.3, 2.2], dtype)
    expected = np.clip(x, lo, hi)
    _assert_same(tnp.clip(x, lo, hi), expected, _rtol(dtype))
    _assert_same(_traced_value(lambda a: tnp.clip(a, lo, hi), x), expected, _rtol(dtype))
    checked_ir(lambda a: tnp.clip(a, lo, hi), x)
    inside = np.ones_like(x, dtype=bool)
    if lo is not None:
        inside &= x > lo
    if hi is not None:
        inside &= x < hi
    g = tj.grad(lambda a: tnp.sum(tnp.clip(a, lo, hi)))(x)
    _assert_same(g, inside.astype(dtype))
    check_grads(lambda a: tnp.clip(a, lo, hi), (x,), order=2)


def test_clip_with_traced_bounds():
    x = np.array([-1.7, -0.3, 0.4, 1.3, 2.2])
    lo, hi = np.array(-1.0), np.array(1.0)
    gx, glo, ghi = tj.grad(lambda a, l, h: tnp.sum(tnp.clip(a, l, h)), argnums=(0, 1, 2))(
        x, lo, hi)
    _assert_same(gx, ((x > lo) & (x < hi)).astype(float))
    _assert_same(glo, np.float64(np.sum(x < lo)))
    _assert_same(ghi, np.float64(np.sum(x > hi)))
    check_grads(lambda a, l, h: tnp.clip(a, l, h), (x, lo, hi), order=2)
    # keyword spelling and the method
    _assert_same(tnp.clip(x, min=-1.0, max=1.0), np.clip(x, -1.0, 1.0))
    _assert_same(_traced_value(lambda a: a.clip(-1.0, 1.0), x), np.clip(x, -1.0, 1.0))
    with pytest.raises(ValueError):
        tnp.clip(x)


def test_clip_promotes_like_numpy():
    xi = np.array([1, 5, -3])
    for lo, hi in ((-1, 2), (-1.5, 2.5), (np.float32(-1), np.float32(2))):
        _assert_same(tnp.clip(xi, lo, hi), np.clip(xi, lo, hi))
        _assert_same(_traced_value(lambda a, lo=lo, hi=hi: tnp.clip(a, lo, hi), xi),
                     np.clip(xi, lo, hi))


WHERE_CASES = {
    "same-shape": ((4,), (4,), (4,)),
    "bcast": ((3, 1), (4,), ()),
    "scalar-cond": ((), (3,), (3,)),
    "cond-row": ((1, 4), (3, 1), (3, 4)),
}


@pytest.mark.parametrize("case", list(WHERE_CASES))
def test_where_values_and_gradients(case):
    sc, sx, sy = WHERE_CASES[case]
    rng = np.random.default_rng(7)
    c = np.asarray(rng.uniform(-1, 1, sc) > 0)
    if c.ndim == 0:
        c = np.array(True)
    x, y = rng.standard_normal(sx), rng.standard_normal(sy)
    expected = np.where(c, x, y)
    _assert_same(tnp.where(c, x, y), expected)
    _assert_same(_traced_value(tnp.where, c, x, y), expected)
    checked_ir(tnp.where, c, x, y)
    gx, gy = tj.grad(lambda a, b: tnp.sum(tnp.where(c, a, b)), argnums=(0, 1))(x, y)
    out_shape = expected.shape
    _assert_same(gx, _unbroadcast(np.broadcast_to(c, out_shape) * 1.0, np.shape(x)))
    _assert_same(gy, _unbroadcast(np.broadcast_to(~c, out_shape) * 1.0, np.shape(y)))
    check_grads(lambda a, b: tnp.where(c, a, b), (x, y), order=2)


def test_where_dtypes_and_truthiness():
    c = np.array([True, False, True])
    x32 = np.array([1.0, 2.0, 3.0], np.float32)
    xi = np.array([1, 2, 3], np.int32)
    for args in ((c, x32, 0.0), (c, x32, 0), (c, xi, 2.5), (c, xi, 2), (c, x32, xi),
                 (c, 1.0, 2), (np.array([0.0, 1.5, -2.0]), 1.0, 0.0), (c, True, False)):
        expected = np.where(*args)
        _assert_same(tnp.where(*args), expected)
        traced = [a for a in args if not _is_py(a)]

        def f(*ts, args=args):
            it = iter(ts)
            return tnp.where(*[a if _is_py(a) else next(it) for a in args])
        _assert_same(_traced_value(f, *traced), expected)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_where_on_comparison_is_a_step_function_gradient(dtype):
    x = np.array([-1.5, -0.2, 0.3, 2.0, 0.7], dtype)
    g = tj.grad(lambda a: tnp.sum(tnp.where(a > 0, a, 0)))(x)
    _assert_same(g, (x > 0).astype(dtype))
    g = tj.grad(lambda a: tnp.sum(tnp.where(a > 0, a * a, -a)))(x)
    _assert_same(g, np.where(x > 0, 2 * x, -1).astype(dtype), _rtol(dtype))
    check_grads(lambda a: tnp.where(a > 0, tnp.sin(a), tnp.cos(a)), (x,), order=2)


def test_where_does_not_leak_nan_gradients_from_the_unselected_branch():
    x = np.array([np.nan, 1.0, np.inf, -2.0])
    g = tj.grad(lambda a: tnp.sum(tnp.where(tnp.isfinite(a), a, 0.0)))(x)
    _assert_same(g, np.array([0.0, 1.0, 0.0, 1.0]))
    g = tj.grad(lambda a: tnp.sum(3.0 * tnp.where(tnp.isnan(a), 0.0, a)))(x)
    _assert_same(g, np.array([0.0, 3.0, 3.0, 3.0]))


# -- comparisons, logical functions, isnan/isfinite ------------------------------------------

CMP_OPS = {
    "equal": operator.eq, "not_equal": operator.ne, "less": operator.lt,
    "less_equal": operator.le, "greater": operator.gt, "greater_equal": operator.ge,
}


@pytest.mark.parametrize("name", COMPARISONS)
def test_comparison_gradient_is_a_hand_derived_step(name):
    x = np.array([0.5, 1.0, 1.5, 2.0, 2.5])
    y = np.array([1.0, 1.0, 1.0, 3.0, 2.0])
    fn = getattr(tnp, name)
    c = getattr(np, name)(x, y)
    assert c.dtype == np.bool_
    gx, gy = tj.grad(lambda a, b: tnp.sum(tnp.where(fn(a, b), a * b, a + b)),
                     argnums=(0, 1))(x, y)
    _assert_same(gx, np.where(c, y, 1.0))
    _assert_same(gy, np.where(c, x, 1.0))
    # the comparison itself: bool output, zero (False) tangent
    out, t = tj.jvp(fn, (x, y), (np.ones(5), np.ones(5)))
    _assert_same(out, c)
    assert not np.any(t)
    # a bool mask times a float: the mask is a constant of differentiation
    g = tj.grad(lambda a: tnp.sum(fn(a, y) * a))(x)
    _assert_same(g, c.astype(float))


@pytest.mark.parametrize("name", LOGICAL + ["logical_not"])
def test_logical_functions_values_and_gradients(name):
    x = np.array([0.5, -1.0, 1.5, -2.0])
    y = np.array([1.0, 2.0, -1.0, -3.0])
    fn = getattr(tnp, name)
    if name == "logical_not":
        expected = np.logical_not(x > 0)
        _assert_same(fn(x > 0), expected)
        _assert_same(_traced_value(lambda a: fn(a > 0), x), expected)
        _assert_same(fn(np.array([0.0, 2.0, -0.5])), np.logical_not([0.0, 2.0, -0.5]))
        _assert_same(fn(np.array([0, 3])), np.logical_not(np.array([0, 3])))
        g = tj.grad(lambda a: tnp.sum(tnp.where(fn(a > 0), a, 2 * a)))(x)
        _assert_same(g, np.where(expected, 1.0, 2.0))
        return
    expected = getattr(np, name)(x > 0, y > 0)
    _assert_same(_traced_value(lambda a, b: fn(a > 0, b > 0), x, y), expected)
    # non-bool operands use truthiness, as NumPy
    for a, b in ((x, y), (np.array([0.0, 1.0, 0.0, 2.0]), np.array([0, 0, 3, 4])), (x, 0),
                 (True, x)):
        _assert_same(fn(a, b), getattr(np, name)(a, b))
    z = np.array([0.0, 1.0, 0.0, 2.0])
    _assert_same(_traced_value(fn, z, y), getattr(np, name)(z, y))
    g = tj.grad(lambda a: tnp.sum(tnp.where(fn(a > 0, y > 0), a, -3 * a)))(x)
    _assert_same(g, np.where(expected, 1.0, -3.0))


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "bool"])
def test_isnan_isfinite_values_and_zero_gradient(dtype):
    if dtype in ("float64", "float32"):
        x = np.array([1.0, np.nan, np.inf, -np.inf, -0.0], dtype)
    else:
        x = np.array([1, 0, 1], dtype)
    for name in ("isnan", "isfinite"):
        expected = getattr(np, name)(x)
        assert expected.dtype == np.bool_
        _assert_same(getattr(tnp, name)(x), expected)
        _assert_same(_traced_value(getattr(tnp, name), x), expected)
        ir = checked_ir(getattr(tnp, name), x)
        assert ir.out_avals[0].dtype == np.bool_
    if dtype in ("float64", "float32"):
        out, t = tj.jvp(tnp.isnan, (x,), (np.ones_like(x),))
        _assert_same(out, np.isnan(x))
        assert not np.any(t)
        _assert_same(tnp.isnan(np.float32(np.nan)), np.isnan(np.float32(np.nan)))


# -- logaddexp and power ---------------------------------------------------------------------

def test_logaddexp_is_stable_for_large_inputs():
    gf = tj.grad(lambda a, b: tnp.logaddexp(a, b), argnums=(0, 1))
    cases = [((1000.0, 1000.0), 1000.0 + LN2, (0.5, 0.5)),
             ((-1000.0, -1000.0), -1000.0 + LN2, (0.5, 0.5)),
             ((1000.0, -1000.0), 1000.0, (1.0, 0.0)),
             ((-1000.0, 1000.0), 1000.0, (0.0, 1.0)),
             ((1000.0, 999.0), 1000.0 + np.log1p(np.exp(-1.0)), _d_logaddexp(1000.0, 999.0))]
    for (a, b), value, (da, db) in cases:
        np.testing.assert_allclose(np.logaddexp(a, b), value, rtol=1e-15)
        for args in ((a, b), (np.array(a), np.array(b))):
            np.testing.assert_allclose(tnp.logaddexp(*args), value, rtol=1e-15)
            np.testing.assert_allclose(_traced_value(tnp.logaddexp, *args), value, rtol=1e-15)
            ga, gb = gf(*args)
            assert np.isfinite(ga) and np.isfinite(gb)
            np.testing.assert_allclose([ga, gb], [da, db], rtol=1e-12, atol=1e-300)
    x = np.array([1000.0, -1000.0, 5.0])
    y = np.array([1000.5, -999.0, 700.0])
    check_grads(tnp.logaddexp, (x, y), order=2)
    # float32 stays finite past exp's float32 overflow (~88)
    x32, y32 = np.array([100.0, -100.0], np.float32), np.array([100.0, -101.0], np.float32)
    expected = np.logaddexp(x32, y32)
    _assert_same(tnp.logaddexp(x32, y32), expected, 1e-6)
    _assert_same(_traced_value(tnp.logaddexp, x32, y32), expected, 1e-6)
    g = tj.grad(lambda a: tnp.sum(tnp.logaddexp(a, y32)))(x32)
    _assert_same(g, np.array([0.5, 1 / (1 + np.exp(-1.0))], np.float32), 1e-6)


def test_logaddexp_with_infinities():
    x = np.array([-np.inf, -np.inf, np.inf, 1.0])
    y = np.array([-np.inf, 1.0, np.inf, np.inf])
    expected = np.logaddexp(x, y)
    _assert_same(tnp.logaddexp(x, y), expected)
    _assert_same(_traced_value(tnp.logaddexp, x, y), expected)
    ga, gb = tj.grad(lambda a, b: tnp.logaddexp(a, b), argnums=(0, 1))(-np.inf, 1.0)
    np.testing.assert_allclose([ga, gb], [0.0, 1.0])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [2, 3, -1, 0, 1, 0.5, -2.5, 2.0])
def test_power_with_constant_exponent(n, dtype):
    x = np.array([0.5, 1.3, 2.0, 3.1], dtype)
    expected = np.power(x, n)
    _assert_same(tnp.power(x, n), expected, _rtol(dtype))
    _assert_same(_traced_value(lambda a: a**n, x), expected, _rtol(dtype))
    ir = checked_ir(lambda a: tnp.power(a, n), x)
    if float(n) == int(n):
        assert f"integer_pow[y={int(n)}]" in str(ir)
    elif n == 0.5:  # NumPy's loop takes sqrt for a scalar exponent 0.5
        assert "sqrt" in str(ir) and "pow" not in str(ir)
    else:
        assert "pow" in str(ir) and "integer_pow" not in str(ir)
    g = tj.grad(lambda a: tnp.sum(a**n))(x)
    expected_g = (n * x.astype(np.float64) ** (n - 1) if n != 0 else np.zeros(4)).astype(dtype)
    _assert_same(g, expected_g, 10 * _rtol(dtype))
    check_grads(lambda a: a**n, (x,), order=2)


def test_power_of_negative_base_and_zero():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    for n in (2, 3):
        _assert_same(_traced_value(lambda a, n=n: a**n, x), x**n)
        _assert_same(tj.grad(lambda a, n=n: tnp.sum(a**n))(x), n * x ** (n - 1))
    with np.errstate(invalid="ignore"):
        expected = np.power(x, 0.5)
    _assert_same(tnp.power(x, 0.5), expected)
    _assert_same(_traced_value(lambda a: a**0.5, x), expected)
    # d/dy 0**y = 0 for y > 0 (0**y is constant there)
    gx, gy = tj.grad(lambda a, b: tnp.power(a, b), argnums=(0, 1))(0.0, 2.5)
    np.testing.assert_allclose([gx, gy], [0.0, 0.0])
    # x**0 == 1 everywhere, with zero gradient
    _assert_same(_traced_value(lambda a: a**0, x), np.ones(4))
    np.testing.assert_array_equal(tj.grad(lambda a: tnp.sum(a**0))(x), 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_power_with_traced_exponent(dtype):
    x = np.array([0.5, 1.3, 2.0, 3.1], dtype)
    y = np.array([-1.5, 0.7, 2.0, -0.3], dtype)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    expected = np.power(x, y)
    _assert_same(_traced_value(tnp.power, x, y), expected, _rtol(dtype))
    _assert_same(_traced_value(lambda a, b: a**b, x, y), expected, _rtol(dtype))
    gx, gy = tj.grad(lambda a, b: tnp.sum(a**b), argnums=(0, 1))(x, y)
    _assert_same(gx, (y64 * x64 ** (y64 - 1)).astype(dtype), 10 * _rtol(dtype))
    _assert_same(gy, (np.log(x64) * x64**y64).astype(dtype), 10 * _rtol(dtype))
    check_grads(tnp.power, (x, y), order=2)
    # a Python-scalar base: d/dy 2**y = log(2) 2**y
    g = tj.grad(lambda b: tnp.sum(2.0**b))(y)
    _assert_same(g, (LN2 * 2.0**y64).astype(dtype), 10 * _rtol(dtype))


def test_power_dtypes_match_numpy():
    xi = np.array([1, 2, 3], np.int32)
    x32 = np.array([1.0, 2.0, 3.0], np.float32)
    for a, b in ((xi, 2), (xi, np.int64(3)), (xi, 2.0), (xi, 0.5), (x32, 2), (x32, 0.5),
                 (x32, np.float64(2.0)), (x32, np.float32(3.0)), (2, x32), (2.0, xi),
                 (np.uint8(3), 2)):
        expected = np.power(a, b)
        _assert_same(tnp.power(a, b), expected, 1e-6)
        if isinstance(a, np.ndarray):  # traced base, concrete exponent
            _assert_same(_traced_value(lambda t, b=b: t**b, a), expected, 1e-6)
        if expected.dtype.kind == "f":  # traced exponent (integer exponents are not traced)
            _assert_same(_traced_value(lambda t, a=a: tnp.power(a, t), b), expected, 1e-6)
    with pytest.raises(ValueError):
        np.power(xi, -1)
    with pytest.raises(ValueError):
        tnp.power(xi, -1)


# -- the NumPy protocols ---------------------------------------------------------------------

UNARY_PROTOCOL = [*UNARY, *ZERO_GRAD_UNARY, "isfinite", "isnan", "absolute", "fabs"]
BINARY_PROTOCOL = [*BINARY, *COMPARISONS, *LOGICAL, "remainder"]


@pytest.mark.parametrize("name", UNARY_PROTOCOL)
def test_numpy_unary_functions_on_tracers_record_the_same_ir(name):
    x = _sample(UNARY.get(name, (_uniform(0.5, 2),))[0], (3,), np.float32)
    ir_np = checked_ir(lambda t: getattr(np, name)(t), x)
    ir_tnp = checked_ir(lambda t: getattr(tnp, name)(t), x)
    assert str(ir_np) == str(ir_tnp)
    assert len(ir_np.eqns) >= 1
    _assert_same(_traced_value(lambda t: getattr(np, name)(t), x), getattr(np, name)(x), 1e-6)


@pytest.mark.parametrize("name", BINARY_PROTOCOL)
def test_numpy_binary_functions_on_tracers_record_the_same_ir(name):
    x, y = _binary_sample(name if name in BINARY else "add", (3, 1), (4,))
    np_fn, fn = getattr(np, name), getattr(tnp, name)
    cases = [
        ((x, y), lambda a, b: np_fn(a, b), lambda a, b: fn(a, b)),
        ((x,), lambda a: np_fn(a, y), lambda a: fn(a, y)),
        ((y,), lambda b: np_fn(x, b), lambda b: fn(x, b)),
        ((x,), lambda a: np_fn(a, 1.5), lambda a: fn(a, 1.5)),
    ]
    for args, np_f, t_f in cases:
        ir_np, ir_tnp = checked_ir(np_f, *args), checked_ir(t_f, *args)
        assert str(ir_np) == str(ir_tnp)
        with np.errstate(all="ignore"):
            expected = np_f(*[np.asarray(a) for a in args])
        _assert_same(_traced_value(np_f, *args), expected)


@pytest.mark.parametrize("call", ["clip", "where", "round", "round1", "ufunc_keywords"])
def test_numpy_array_functions_on_tracers_record_the_same_ir(call):
    x = np.array([-1.7, -0.3, 0.4, 1.3, 2.2])
    pairs = {
        "clip": (lambda t: np.clip(t, -1.0, 1.0), lambda t: tnp.clip(t, -1.0, 1.0)),
        "where": (lambda t: np.where(t > 0, t, 0.0), lambda t: tnp.where(t > 0, t, 0.0)),
        "round": (lambda t: np.round(t), lambda t: tnp.round(t)),
        "round1": (lambda t: np.round(t, 1), lambda t: tnp.round(t, 1)),
        "ufunc_keywords": (lambda t: np.true_divide(t, 2.0), lambda t: tnp.divide(t, 2.0)),
    }
    np_f, t_f = pairs[call]
    assert str(checked_ir(np_f, x)) == str(checked_ir(t_f, x))
    _assert_same(_traced_value(np_f, x), np_f(x))


def test_numpy_ufunc_with_out_is_rejected_on_tracers():
    x = np.ones(3)
    with pytest.raises(NotImplementedError, match="out="):
        tj.make_ir(lambda t: np.sin(t, out=np.empty(3)))(x)


OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "<": operator.lt,
    "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
    ">=": operator.ge,
}
PLACEMENTS = ["tracer-tracer", "tracer-array", "array-tracer", "tracer-pyscalar",
              "pyscalar-tracer", "tracer-npscalar", "npscalar-tracer"]


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("op", list(OPERATORS))
def test_operators_on_tracers(op, placement):
    fn = OPERATORS[op]
    # x / y, x / s and s / y away from integers (the jumps of // and %)
    x = np.array([0.5, 1.2, 2.0, 2.6], np.float32)
    y = np.array([1.7, 0.7, 0.8, 3.1], np.float32)
    s = 1.5 if "pyscalar" in placement else np.float64(1.5)
    if placement == "tracer-tracer":
        f, args, expected = fn, (x, y), fn(x, y)
    elif placement == "tracer-array":
        f, args, expected = (lambda a: fn(a, y)), (x,), fn(x, y)
    elif placement == "array-tracer":
        f, args, expected = (lambda b: fn(x, b)), (y,), fn(x, y)
    elif placement.startswith("tracer"):
        f, args, expected = (lambda a: fn(a, s)), (x,), fn(x, s)
    else:
        f, args, expected = (lambda b: fn(s, b)), (y,), fn(s, y)
    expected = np.asarray(expected)
    checked_ir(f, *args)
    _assert_same(_traced_value(f, *args), expected, 1e-6)
    if expected.dtype.kind == "f":
        check_grads(f, args, order=1)


def test_boolean_and_unary_operators_on_tracers():
    x = np.array([0.5, -1.5, 2.0, -2.5])
    y = np.array([1.5, -1.5, -0.75, 3.0])
    cases = [
        (lambda a, b: (a > 0) & (b > 0), np.logical_and(x > 0, y > 0)),
        (lambda a, b: (a > 0) | (b > 0), np.logical_or(x > 0, y > 0)),
        (lambda a, b: ~(a > 0), ~(x > 0)),
        (lambda a, b: (a > 0) & (y > 0), (x > 0) & (y > 0)),
        (lambda a, b: (x > 0) | (b > 0), (x > 0) | (y > 0)),
        (lambda a, b: True & (b > 0), y > 0),
        (lambda a, b: -a, -x),
        (lambda a, b: +a, x),
        (lambda a, b: abs(a), np.abs(x)),
        (lambda a, b: divmod(a, b)[0], np.floor_divide(x, y)),
        (lambda a, b: divmod(a, b)[1], np.mod(x, y)),
    ]
    for f, expected in cases:
        checked_ir(f, x, y)
        _assert_same(_traced_value(f, x, y), expected)
    g = tj.grad(lambda a: tnp.sum(abs(-a) * 2.0))(x)
    _assert_same(g, 2.0 * np.sign(x))


def test_matmul_operator_on_tracers():
    rng = np.random.default_rng(8)
    a, b, v = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    _assert_same(_traced_value(operator.matmul, a, b), a @ b)
    _assert_same(_traced_value(lambda t: a @ t, b), a @ b)  # NumPy array on the left
    _assert_same(_traced_value(lambda t: t @ b, a), a @ b)
    _assert_same(_traced_value(lambda t: t @ v, a), a @ v)
    checked_ir(operator.matmul, a, b)
    ga, gb = tj.grad(lambda p, q: tnp.sum(p @ q), argnums=(0, 1))(a, b)
    _assert_same(ga, np.broadcast_to(b.sum(axis=1), (2, 3)), rtol=1e-12)
    _assert_same(gb, np.broadcast_to(a.sum(axis=0)[:, None], (3, 4)), rtol=1e-12)


# -- weak typing and promotion through tracing -----------------------------------------------

def test_python_scalars_are_weak_and_numpy_scalars_are_strong():
    x32 = np.array([1.0, 2.0], np.float32)
    xi32 = np.array([1, 2], np.int32)
    cases = [
        (lambda a: a + 2.0, x32, F32),
        (lambda a: 2.0 * a, x32, F32),
        (lambda a: a * 2, x32, F32),
        (lambda a: a / 3, x32, F32),
        (lambda a: a + np.float64(2.0), x32, F64),
        (lambda a: np.float64(2.0) + a, x32, F64),
        (lambda a: a + np.ones(2), x32, F64),
        (lambda a: a + 2, xi32, np.dtype("int32")),
        (lambda a: a + 2.0, xi32, F64),
        (lambda a: a / 2, xi32, F64),
        (lambda a: a + np.int8(2), xi32, np.dtype("int32")),
        (lambda a: a + np.int64(2), xi32, np.dtype("int64")),
        (lambda a: tnp.sin(a), xi32, F64),
        (lambda a: tnp.sqrt(a), xi32.astype(np.int16), F32),
        (lambda a: a > 1.5, xi32, np.dtype(bool)),
        (lambda a: tnp.maximum(a, 1.5), x32, F32),
        (lambda a: tnp.where(a > 1.0, a, 0.0), x32, F32),
        (lambda a: tnp.arctan2(a, 1), x32, F32),
    ]
    for f, x, dtype in cases:
        expected = f(x)
        assert expected.dtype == dtype
        _assert_same(_traced_value(f, x), expected, 1e-6)
        assert checked_ir(f, x).out_avals[0].dtype == dtype


def test_traced_python_scalar_argument_is_weak():
    x32 = np.array([1.0, 2.0], np.float32)
    ir = checked_ir(lambda a, s: a * s, x32, 2.0)
    assert ir.out_avals[0].dtype == F32
    out, t = tj.jvp(lambda a, s: a * s, (x32, 2.0), (np.ones(2, np.float32), 1.0))
    _assert_same(out, x32 * 2.0)
    _assert_same(t, np.float32(2.0) + x32)
    g = tj.grad(lambda a, s: tnp.sum(a * s), argnums=(0, 1))(x32, 2.0)
    _assert_same(g[0], np.full(2, 2.0, np.float32))
    np.testing.assert_allclose(g[1], 3.0)
    # Python scalars alone: float64
    out = _traced_value(lambda s: tnp.sin(s) * 2, 0.5)
    _assert_same(out, np.sin(0.5) * 2)


@pytest.mark.parametrize("name", [*UNARY, *ZERO_GRAD_UNARY])
def test_float32_gradients_stay_float32(name):
    x = _sample(UNARY[name][0] if name in UNARY else ZERO_GRAD_UNARY[name], (3,), F32)
    fn = getattr(tnp, name)
    g = tj.grad(lambda a: tnp.sum(fn(a) * 2.0))(x)
    assert g.dtype == F32
    _, t = tj.jvp(fn, (x,), (np.ones(3, np.float32),))
    assert t.dtype == F32
    ir = checked_ir(tj.grad(lambda a: tnp.sum(fn(a))), x)
    assert all(v.aval.dtype != F64 for e in ir.eqns for v in e.outs), str(ir)
