"""Elementwise primitives, declared as table rows.

A row gives: name, NumPy implementation, derivative (a JVP expression of tangent, inputs and
output, written with the wrapper functions below), and a loop-body expression for the code
generator (`{0}`, `{1}` are the operands). Operands of a binary primitive have equal shapes,
or some are 0-d (scalars broadcast implicitly); their dtypes are equal (the NumPy front end
promotes and broadcasts before binding).

Adding an elementwise op: one `unary(...)` or `binary(...)` row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..core import Primitive, Tracer, abstract_eval_rules, bind, impl_rules
from ..errors import ShapeError
from ..ir import ShapedArray, aval_of
from ..transforms.jvp import Zero, defjvp_zero, deflinear, is_zero, jvp_rules
from ..transforms.transpose import is_undefined, transpose_rules


@dataclass(frozen=True)
class Elementwise:
    prim: Primitive
    numpy: Callable
    expr: str
    arity: int
    inputs: str  # a key of _KINDS
    output: str  # "same", "bool", "real" (the real dtype of a complex input) or "complex"
    complex_expr: str | None = None  # the loop-body expression for complex operands


elementwise_table: dict[Primitive, Elementwise] = {}
_row_watchers: list[Callable] = []


def each_row(fn: Callable) -> None:
    """Call `fn(prim)` for every elementwise primitive, now and as rows are added later:
    modules registered after import (`primitives/special.py`, imported with
    `tracejit.scipy`) reach the sets that other passes build from this table."""
    _row_watchers.append(fn)
    for prim in list(elementwise_table):
        fn(prim)


def _aval(x) -> ShapedArray:
    return x.aval if isinstance(x, Tracer) else aval_of(x)


_KINDS = {
    "float": lambda d: dtypes.is_float(d),
    "inexact": lambda d: dtypes.is_inexact(d),
    "complex": lambda d: dtypes.is_complex(d),
    "number": lambda d: not dtypes.is_bool(d),
    "real": lambda d: not dtypes.is_bool(d) and not dtypes.is_complex(d),
    "int": lambda d: dtypes.is_int(d) or dtypes.is_bool(d),
    "bool": lambda d: dtypes.is_bool(d),
    "ordered": lambda d: not dtypes.is_complex(d),
    "any": lambda d: True,
}
_KIND_WORDS = {
    "float": "real floating-point", "inexact": "floating-point or complex",
    "complex": "complex", "number": "numeric", "real": "real numeric", "int": "integer or bool",
    "bool": "bool", "ordered": "ordered (not complex)", "any": "any",
}


def _output_dtype(output: str, dtype) -> np.dtype:
    if output == "bool":
        return dtypes.bool_
    if output == "real":
        return dtypes.real_dtype(dtype)
    if output == "complex":
        return dtypes.complex_dtype(dtype)
    return np.dtype(dtype)


def _elementwise_shape(name: str, avals) -> tuple:
    shapes = {a.shape for a in avals if a.shape != ()}
    if len(shapes) > 1:
        raise ShapeError(f"`{name}` operands must have equal shapes (or be 0-d), got "
                         + ", ".join(str(a.shape) for a in avals))
    return shapes.pop() if shapes else ()


def _make_abstract_eval(row: Elementwise):
    name = row.prim.name

    def rule(*avals):
        dts = {a.dtype for a in avals}
        if len(dts) > 1:
            raise TypeError(f"`{name}` operands must have one dtype, got "
                            + ", ".join(str(a.dtype) for a in avals))
        dtype = dts.pop()
        if not _KINDS[row.inputs](dtype):
            raise TypeError(f"`{name}` does not accept {dtype} operands "
                            f"({_KIND_WORDS[row.inputs]} only)")
        shape = _elementwise_shape(name, avals)
        return ShapedArray(shape, _output_dtype(row.output, dtype))
    return rule


def _make_impl(row: Elementwise):
    fn = row.numpy
    bool_out = row.output == "bool"

    def impl(*args):
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*args))
        if not bool_out:
            dtype = _output_dtype(row.output, np.result_type(*args))
            if out.dtype != dtype:
                out = out.astype(dtype)
        return out
    return impl


def _register(name: str, numpy_fn, expr: str, arity: int, inputs: str, output: str,
              complex_expr: str | None = None) -> Primitive:
    prim = Primitive(name)
    if complex_expr is None and inputs in ("inexact", "number", "any") and "math." in expr:
        complex_expr = expr.replace("math.", "cmath.")
    row = Elementwise(prim, numpy_fn, expr, arity, inputs, output, complex_expr)
    elementwise_table[prim] = row
    abstract_eval_rules[prim] = _make_abstract_eval(row)
    impl_rules[prim] = _make_impl(row)
    for fn in _row_watchers:
        fn(prim)
    return prim


def _coerce(*args):
    """Give Python scalars the dtype of the traced/array operands (weak typing)."""
    ref = None
    for a in args:
        if not (isinstance(a, (bool, int, float, complex)) and not isinstance(a, np.generic)):
            ref = _aval(a).dtype
            break
    if ref is None:
        return [np.asarray(a)[()] for a in args]
    return [np.asarray(a, dtype=ref)[()] if isinstance(a, (bool, int, float, complex))
            and not isinstance(a, np.generic) else a for a in args]


def _wrapper(prim: Primitive, arity: int):
    if arity == 1:
        def fn(x):
            return bind(prim, *_coerce(x))
    else:
        def fn(x, y):
            return bind(prim, *_coerce(x, y))
    fn.__name__ = prim.name
    fn.__doc__ = f"Bind the `{prim.name}` primitive."
    return fn


def unary(name, numpy_fn, expr, jvp=None, inputs="float", output="same", complex_expr=None):
    """Declare a unary row. `jvp(t, x, out)` gives the output tangent, or "zero"/"linear".
    Rows that take complex operands spell their loop body `complex_expr` for them (by
    default `expr` with `cmath.` for `math.`)."""
    prim = _register(name, numpy_fn, expr, 1, inputs, output, complex_expr)
    if jvp == "zero" or output == "bool":
        defjvp_zero(prim)
    elif jvp == "linear":
        deflinear(prim)
    elif jvp is not None:
        def rule(primals, tangents, _jvp=jvp, _prim=prim):
            (x,), (t,) = primals, tangents
            out = bind(_prim, x)
            return out, _jvp(t, x, out)
        jvp_rules[prim] = rule
    return prim, _wrapper(prim, 1)


def binary(name, numpy_fn, expr, jvp=None, inputs="float", output="same", complex_expr=None):
    """Declare a binary row. `jvp(tx, ty, x, y, out)` with symbolic `Zero` tangents."""
    prim = _register(name, numpy_fn, expr, 2, inputs, output, complex_expr)
    if jvp == "zero" or output == "bool":
        defjvp_zero(prim)
    elif jvp is not None:
        jvp_rules[prim] = _binary_jvp_rule(prim, jvp)
    return prim, _wrapper(prim, 2)


def bcast_scalar(t, shape):
    """Broadcast a 0-d tangent to `shape` (tangents of implicitly broadcast scalars)."""
    if is_zero(t) or _aval(t).shape == tuple(shape):
        return t
    from .structural import broadcast_in_dim
    return broadcast_in_dim(t, shape, ())


def _only(t, f):
    """`f(t)` unless `t` is a symbolic zero."""
    return t if is_zero(t) else f(t)


# -- arithmetic -------------------------------------------------------------------------------

add_p, add = binary("add", np.add, "({0} + {1})", inputs="number")
sub_p, sub = binary("sub", np.subtract, "({0} - {1})", inputs="number")
mul_p, mul = binary("mul", np.multiply, "({0} * {1})", inputs="number")
# Complex loops call helpers with NumPy's results on special values (compiler/complex_math.py):
# Numba's complex `/`, `**` and cmath differ there (and raise ZeroDivisionError for zeros).
div_p, div = binary("div", np.true_divide, "({0} / {1})", inputs="inexact",
                    complex_expr="_cx_div({0}, {1}, {r1})")
neg_p, neg = unary("neg", np.negative, "(-{0})", jvp="linear", inputs="number")

def _jvp_add(tx, ty, x, y, out):
    return tx, ty


def _jvp_sub(tx, ty, x, y, out):
    return tx, _only(ty, neg)


def _jvp_mul(tx, ty, x, y, out):
    return _only(tx, lambda t: mul(t, y)), _only(ty, lambda t: mul(x, t))


def _jvp_div(tx, ty, x, y, out):
    return _only(tx, lambda t: div(t, y)), _only(ty, lambda t: mul(t, neg(div(out, y))))


def _binary_jvp_rule(prim, jvp):
    """JVP of a binary row: sum of the per-operand terms `jvp` returns."""
    def rule(primals, tangents):
        x, y = primals
        tx, ty = tangents
        out = bind(prim, x, y)
        shape = _aval(out).shape
        terms = [bcast_scalar(t, shape) for t in jvp(tx, ty, x, y, out) if not is_zero(t)]
        if not terms:
            return out, Zero(_aval(out).strip_weak())
        total = terms[0]
        for t in terms[1:]:
            total = add(total, t)
        return out, total
    return rule


for _p, _j in ((add_p, _jvp_add), (sub_p, _jvp_sub), (mul_p, _jvp_mul), (div_p, _jvp_div)):
    jvp_rules[_p] = _binary_jvp_rule(_p, _j)


def unbroadcast(ct, aval: ShapedArray):
    """Sum a cotangent down to a 0-d operand's shape (the transpose of implicit broadcast)."""
    if is_zero(ct):
        return ct
    if aval.shape == () and _aval(ct).shape != ():
        from .reductions import reduce_sum
        ct = reduce_sum(ct, tuple(range(_aval(ct).ndim)))
    return ct


def _transpose_add(ct, x, y):
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(ct, y.aval) if is_undefined(y) else None]


def _transpose_sub(ct, x, y):
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(_only(ct, neg), y.aval) if is_undefined(y) else None]


def _transpose_mul(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise NotImplementedError("mul of two linear values is not linear")
    if is_undefined(x):
        return [unbroadcast(_only(ct, lambda c: mul(c, y)), x.aval), None]
    return [None, unbroadcast(_only(ct, lambda c: mul(x, c)), y.aval)]


def _transpose_div(ct, x, y):
    if is_undefined(y):
        raise NotImplementedError("div is linear only in its numerator")
    return [unbroadcast(_only(ct, lambda c: div(c, y)), x.aval), None]


transpose_rules[add_p] = _transpose_add
transpose_rules[sub_p] = _transpose_sub
transpose_rules[mul_p] = _transpose_mul
transpose_rules[div_p] = _transpose_div
transpose_rules[neg_p] = lambda ct, x: [_only(ct, neg)]


# -- transcendental and friends: one row each -------------------------------------------------

def _sq(x):
    return mul(x, x)


exp_p, exp = unary("exp", np.exp, "math.exp({0})", lambda t, x, out: mul(t, out), inputs="inexact",
                   complex_expr="_cx_exp({0})")
expm1_p, expm1 = unary("expm1", np.expm1, "math.expm1({0})",
                       lambda t, x, out: mul(t, add(out, 1.0)),
                       inputs="inexact",
                       # exp(x) cos y - 1 = expm1(x) cos y - 2 sin²(y/2): no cancellation
                       # near 0 (NumPy's is accurate there too)
                       complex_expr="complex(math.expm1({0}.real) * math.cos({0}.imag) - "
                                    "2.0 * math.sin(0.5 * {0}.imag) ** 2, "
                                    "math.exp({0}.real) * math.sin({0}.imag))")
exp2_p, exp2 = unary("exp2", np.exp2, "math.pow({two}, {0})",
                     lambda t, x, out: mul(t, mul(out, math.log(2.0))),
                     inputs="inexact", complex_expr="_cx_exp2({0}, {ln2})")
log_p, log = unary("log", np.log, "math.log({0})", lambda t, x, out: div(t, x), inputs="inexact",
                   complex_expr="_cx_log({0})")
log1p_p, log1p = unary("log1p", np.log1p, "math.log1p({0})",
                       lambda t, x, out: div(t, add(x, 1.0)),
                       inputs="inexact", complex_expr="_cx_log1p({0}, {r1})")
log2_p, log2 = unary("log2", np.log2, "math.log2({0})",
                     lambda t, x, out: div(t, mul(x, math.log(2.0))),
                     inputs="inexact", complex_expr="_cx_log2({0})")
log10_p, log10 = unary("log10", np.log10, "math.log10({0})",
                       lambda t, x, out: div(t, mul(x, math.log(10.0))), inputs="inexact",
                       complex_expr="_cx_log10({0})")
sqrt_p, sqrt = unary("sqrt", np.sqrt, "math.sqrt({0})",
                     lambda t, x, out: div(t, mul(out, 2.0)), inputs="inexact",
                     complex_expr="_cx_sqrt({0})")
cbrt_p, cbrt = unary("cbrt", np.cbrt, "np.cbrt({0})",
                     lambda t, x, out: div(t, mul(_sq(out), 3.0)))
sin_p, sin = unary("sin", np.sin, "math.sin({0})", lambda t, x, out: mul(t, cos(x)),
                   inputs="inexact", complex_expr="_cx_sin({0})")
cos_p, cos = unary("cos", np.cos, "math.cos({0})", lambda t, x, out: mul(t, neg(sin(x))),
                   inputs="inexact", complex_expr="_cx_cos({0})")
tan_p, tan = unary("tan", np.tan, "math.tan({0})",
                   lambda t, x, out: mul(t, add(_sq(out), 1.0)), inputs="inexact",
                   complex_expr="_cx_tan({0})")
asin_p, asin = unary("asin", np.arcsin, "math.asin({0})",
                     lambda t, x, out: div(t, sqrt(sub(1.0, _sq(x)))), inputs="inexact",
                     complex_expr="_cx_asin({0})")
acos_p, acos = unary("acos", np.arccos, "math.acos({0})",
                     lambda t, x, out: neg(div(t, sqrt(sub(1.0, _sq(x))))), inputs="inexact",
                     complex_expr="_cx_acos({0})")
atan_p, atan = unary("atan", np.arctan, "math.atan({0})",
                     lambda t, x, out: div(t, add(_sq(x), 1.0)), inputs="inexact",
                     complex_expr="_cx_atan({0})")
sinh_p, sinh = unary("sinh", np.sinh, "math.sinh({0})", lambda t, x, out: mul(t, cosh(x)),
                     inputs="inexact", complex_expr="_cx_sinh({0})")
cosh_p, cosh = unary("cosh", np.cosh, "math.cosh({0})", lambda t, x, out: mul(t, sinh(x)),
                     inputs="inexact", complex_expr="_cx_cosh({0})")
tanh_p, tanh = unary("tanh", np.tanh, "math.tanh({0})",
                     lambda t, x, out: mul(t, sub(1.0, _sq(out))), inputs="inexact",
                     complex_expr="_cx_tanh({0})")
asinh_p, asinh = unary("asinh", np.arcsinh, "math.asinh({0})",
                       lambda t, x, out: div(t, sqrt(add(_sq(x), 1.0))), inputs="inexact",
                       complex_expr="_cx_asinh({0})")
acosh_p, acosh = unary("acosh", np.arccosh, "math.acosh({0})",
                       lambda t, x, out: div(t, mul(sqrt(sub(x, 1.0)), sqrt(add(x, 1.0)))),
                       inputs="inexact", complex_expr="_cx_acosh({0})")
atanh_p, atanh = unary("atanh", np.arctanh, "math.atanh({0})",
                       lambda t, x, out: div(t, sub(1.0, _sq(x))), inputs="inexact",
                       complex_expr="_cx_atanh({0})")
logistic_p, logistic = unary(
    "logistic", lambda x: np.exp(-np.logaddexp(0, -x)),
    "({one} / ({one} + math.exp(-{0})))",
    lambda t, x, out: mul(t, mul(out, sub(1.0, out))))
def _jvp_abs(t, x, out):
    if not dtypes.is_complex(_aval(x).dtype):
        return mul(t, sign(x))
    # d|z| = re(conj(z / |z|) dz): sign(0) = 0 gives 0 at z = 0 with no division, so the
    # transpose has no 0/0 either.
    return real(mul(conj(sign(x)), t))


abs_p, abs_ = unary("abs", np.abs, "abs({0})", _jvp_abs, inputs="number", output="real")
def _jvp_sign(t, x, out):
    if not dtypes.is_complex(_aval(x).dtype):
        return Zero(_aval(out).strip_weak())
    from .structural import select
    # s = z / |z| moves only across the circle: ds = (dz - s re(conj(s) dz)) / |z|, taken as
    # 0 at z = 0 (the divisor is made safe there, so the transpose has no 0/0).
    r = abs_(x)
    zero = eq(r, 0.0)
    safe = select(zero, 1.0, r)
    along = convert_like(real(mul(conj(out), t)), out)
    ds = div(sub(t, mul(out, along)), convert_like(safe, out))
    return select(zero, 0.0, ds)


sign_p, sign = unary("sign", np.sign, "np.sign({0})", _jvp_sign, inputs="number",
                     complex_expr="_cx_sign({0})")
floor_p, floor = unary("floor", np.floor, "np.floor({0})", "zero")
ceil_p, ceil = unary("ceil", np.ceil, "np.ceil({0})", "zero")
round_p, round_ = unary("round", np.round, "np.round({0})", "zero")
trunc_p, trunc = unary("trunc", np.trunc, "np.trunc({0})", "zero")
isnan_p, isnan = unary("isnan", np.isnan, "math.isnan({0})", inputs="inexact",
                       output="bool")
isfinite_p, isfinite = unary("isfinite", np.isfinite, "math.isfinite({0})", inputs="inexact",
                             output="bool")
signbit_p, signbit = unary("signbit", np.signbit, "np.signbit({0})", "zero", output="bool")
not_p, logical_not = unary("not", np.logical_not, "(not {0})", inputs="bool", output="bool")


def _integer_pow_impl(x, *, y):
    x = np.asarray(x)  # a Python scalar operand (eager grad of `x ** -2` at a float)
    with np.errstate(all="ignore"):
        out = np.power(x, y) if y >= 0 or not dtypes.is_int(x.dtype) else 1 / np.power(x, -y)
    return np.asarray(out).astype(np.asarray(x).dtype)


integer_pow_p = Primitive("integer_pow")
abstract_eval_rules[integer_pow_p] = lambda x, *, y: _elementwise_check_number(x, "integer_pow")
impl_rules[integer_pow_p] = _integer_pow_impl


def _elementwise_check_number(x, name):
    if dtypes.is_bool(x.dtype):
        raise TypeError(f"`{name}` does not accept bool operands")
    return ShapedArray(x.shape, x.dtype)


def integer_pow(x, y: int):
    return bind(integer_pow_p, x, y=int(y))


def _jvp_integer_pow(primals, tangents, *, y):
    (x,), (t,) = primals, tangents
    out = integer_pow(x, y)
    if y == 0:
        return out, Zero(_aval(out))
    deriv = mul(x, float(y)) if y == 2 else mul(integer_pow(x, y - 1), float(y))
    if y == 1:
        return out, t
    return out, mul(t, deriv)


jvp_rules[integer_pow_p] = _jvp_integer_pow


def _jvp_pow(tx, ty, x, y, out):
    from .structural import select
    zero = 0.0
    # d/dx x**y = y * x**(y-1), taken as 0 where y == 0 (so 0**0 has a finite derivative).
    dx = _only(tx, lambda t: mul(t, select(eq(y, zero), zero, mul(y, pow(x, sub(y, 1.0))))))
    # d/dy x**y = log(x) * x**y, taken as 0 where x == 0.
    dy = _only(ty, lambda t: mul(t, select(eq(x, zero), zero, mul(log(x), out))))
    return dx, dy


def _jvp_max(tx, ty, x, y, out):
    from .structural import select
    # Ties split the derivative evenly between both operands.
    one, half, zero = (np.asarray(v, _aval(out).dtype)[()] for v in (1.0, 0.5, 0.0))
    wx = select(gt(x, y), one, select(eq(x, y), half, zero))
    return _only(tx, lambda t: mul(t, wx)), _only(ty, lambda t: mul(t, sub(1.0, wx)))


def _jvp_min(tx, ty, x, y, out):
    from .structural import select
    one, half, zero = (np.asarray(v, _aval(out).dtype)[()] for v in (1.0, 0.5, 0.0))
    wx = select(lt(x, y), one, select(eq(x, y), half, zero))
    return _only(tx, lambda t: mul(t, wx)), _only(ty, lambda t: mul(t, sub(1.0, wx)))


def convert_like(w, ref):
    """`w` converted to the dtype of `ref`."""
    from .structural import convert
    dtype = _aval(ref).dtype
    return w if _aval(w).dtype == dtype else convert(w, dtype)


def _jvp_atan2(tx, ty, x, y, out):
    # out = atan2(x, y): d = (y dx - x dy) / (x^2 + y^2)
    den = add(_sq(x), _sq(y))
    return (_only(tx, lambda t: mul(t, div(y, den))),
            _only(ty, lambda t: mul(t, neg(div(x, den)))))


def _jvp_rem(tx, ty, x, y, out):
    # NumPy's mod: x - floor(x / y) * y
    return tx, _only(ty, lambda t: mul(t, neg(floor(div(x, y)))))


def _jvp_fmod(tx, ty, x, y, out):
    # C's fmod: x - trunc(x / y) * y
    return tx, _only(ty, lambda t: mul(t, neg(trunc(div(x, y)))))


def _jvp_hypot(tx, ty, x, y, out):
    return _only(tx, lambda t: mul(t, div(x, out))), _only(ty, lambda t: mul(t, div(y, out)))


def _jvp_logaddexp(tx, ty, x, y, out):
    # d/dx = exp(x - out) = logistic(x - y): the softmax weight of x, computed from the
    # operands' difference (not from the rounded result). Equal infinities share evenly.
    from .structural import select

    def weight(a, b):
        d = sub(a, b)
        return select(ne(d, d), 0.5, logistic(d))
    return (_only(tx, lambda t: mul(t, weight(x, y))),
            _only(ty, lambda t: mul(t, weight(y, x))))


def _pow_everywhere(x, y):
    """np.power as C's pow on every element, as the compiled loop computes it. NumPy's loop
    takes sqrt instead when the exponent is 0.5 with stride 0 (a scalar or a broadcast one),
    which differs at -0.0 and -inf; `tracejit.numpy.power` takes that shortcut itself, so
    that values, compiled code and float_power (which has no shortcut) agree."""
    y = np.asarray(y)
    if y.dtype.kind != "f" or not np.any(y == 0.5):
        return np.power(x, y)
    shape = np.broadcast_shapes(np.shape(x), y.shape)
    spread = [np.array(np.broadcast_to(v, shape), ndmin=1) for v in (x, y)]
    return np.power(*spread).reshape(shape)


pow_p, pow = binary("pow", _pow_everywhere, "({0} ** {1})", _jvp_pow, inputs="inexact",
                    complex_expr="_cx_pow({0}, {1}, {r1})")
logaddexp_p, logaddexp = binary(
    "logaddexp", np.logaddexp,
    "({0} + {1} if {0} == {1} and math.isinf({0}) else "
    "max({0}, {1}) + math.log1p(math.exp(-abs({0} - {1}))))",
    _jvp_logaddexp)
max_p, max_ = binary("max", np.maximum, "np.maximum({0}, {1})", _jvp_max, inputs="ordered")
min_p, min_ = binary("min", np.minimum, "np.minimum({0}, {1})", _jvp_min, inputs="ordered")
atan2_p, atan2 = binary("atan2", np.arctan2, "math.atan2({0}, {1})", _jvp_atan2)
rem_p, rem = binary("rem", np.mod, "np.mod({0}, {1})", _jvp_rem, inputs="real")
fmod_p, fmod = binary("fmod", np.fmod, "np.fmod({0}, {1})", _jvp_fmod, inputs="float")
floor_divide_p, floor_divide = binary("floor_divide", np.floor_divide, "({0} // {1})", "zero",
                                      inputs="real")
hypot_p, hypot = binary("hypot", np.hypot, "math.hypot({0}, {1})", _jvp_hypot)
nextafter_p, nextafter = binary("nextafter", np.nextafter, "np.nextafter({0}, {1})", "zero")

eq_p, eq = binary("eq", np.equal, "({0} == {1})", output="bool", inputs="any")
ne_p, ne = binary("ne", np.not_equal, "({0} != {1})", output="bool", inputs="any")
lt_p, lt = binary("lt", np.less, "({0} < {1})", output="bool", inputs="ordered")
le_p, le = binary("le", np.less_equal, "({0} <= {1})", output="bool", inputs="ordered")
gt_p, gt = binary("gt", np.greater, "({0} > {1})", output="bool", inputs="ordered")
ge_p, ge = binary("ge", np.greater_equal, "({0} >= {1})", output="bool", inputs="ordered")
and_p, and_ = binary("and", np.bitwise_and, "({0} & {1})", "zero", inputs="int")
or_p, or_ = binary("or", np.bitwise_or, "({0} | {1})", "zero", inputs="int")
xor_p, xor = binary("xor", np.bitwise_xor, "({0} ^ {1})", "zero", inputs="int")



# -- complex parts ----------------------------------------------------------------------------
# Transposes follow the pairing <a, b> = re(a * b) (no conjugate), so `grad` of a real
# function of complex z is df/dx - i df/dy, as in JAX.

real_p, real = unary("real", np.real, "{0}.real", "linear", inputs="complex", output="real")
imag_p, imag = unary("imag", np.imag, "{0}.imag", "linear", inputs="complex", output="real")
conj_p, conj = unary("conj", np.conjugate, "{0}.conjugate()", "linear", inputs="complex")
def _complex_numpy(x, y):
    """x + iy with the parts as given (x + 1j * y would make nan of 0 * inf)."""
    x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
    out = np.empty(x.shape, dtypes.complex_dtype(np.result_type(x, y)))
    out.real, out.imag = x, y
    return out


complex_p, complex_ = binary("complex", _complex_numpy, "complex({0}, {1})",
                             inputs="float", output="complex")


def _jvp_complex(tx, ty, x, y, out):
    return _only(tx, lambda t: complex_(t, 0.0)), _only(ty, lambda t: complex_(0.0, t))


jvp_rules[complex_p] = _binary_jvp_rule(complex_p, _jvp_complex)
transpose_rules[real_p] = lambda ct, x: [_only(ct, lambda c: complex_(c, 0.0))]
transpose_rules[imag_p] = lambda ct, x: [_only(ct, lambda c: complex_(0.0, neg(c)))]
transpose_rules[conj_p] = lambda ct, x: [_only(ct, conj)]


def _transpose_complex(ct, x, y):
    return [unbroadcast(_only(ct, real), x.aval) if is_undefined(x) else None,
            unbroadcast(_only(ct, lambda c: neg(imag(c))), y.aval) if is_undefined(y) else None]


transpose_rules[complex_p] = _transpose_complex
