"""Loop-body helpers of complex elementwise functions, as module text: NumPy's results.

NumPy's complex loops call the C library's complex functions (glibc's `csin`, `cexp`, ...,
which follow C99 Annex G for infinities, NaNs and signed zeros) or its own code (division,
sign, power's integer exponents, log1p, log2/log10/exp2 as scaled log/exp; reciprocal is
composed from the parts in `tracejit/numpy/_ufuncs.py`). Numba's `cmath` and complex
operators differ on those special values (nan parts where NumPy has infinities, lost signs
of zero, ZeroDivisionError), so a complex row spells its loop body as a call of a
`_cx_<name>` helper, and the code generator pastes the definitions of the helpers a module
calls after its imports (`preamble`), as it does for the special functions
(`compiler/special.py`). Thin wrappers are inlined (`inline='always'`); the others compile
once per module, which costs ~0.05-0.1 s each the first time.

Each helper handles the special values first and evaluates finite operands with the usual
formulas, scaled where an intermediate would overflow or lose a subnormal. The
transcendental ones compute in float64 (a complex64 operand's parts are widened with
`np.float64`, since Numba's `float()` keeps float32; the generator narrows the result), so
complex64 results are float64 results rounded: within NumPy's float32 error of NumPy's.
Division, integer powers, sign and log1p compute in the operand's precision (a typed `one`
argument keeps float64 constants out), since there NumPy's float32 arithmetic decides
special values (1 / tiny overflows to inf, |z| rounds or overflows). Finite results agree
with NumPy's to a few ulps, special values exactly, but for what depends on the platform
(`tests/test_complex_special_values.py` says which; `scripts/complex_sweep.py` prints every
difference). Real loops never call these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# name -> (source, helpers it calls)
_HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _helper(name: str, needs: tuple[str, ...] = ()):
    def register(source: str) -> str:
        _HELPERS[name] = (source, needs)
        return source
    return register


def _on_parts(name: str) -> None:
    """Register `name(z)` as `name_parts` of z's float64 real and imaginary parts."""
    _helper(name, (name + "_parts",))(
        "@numba.njit(inline='always')\n"
        f"def {name}(z):\n"
        f"    return {name}_parts(np.float64(z.real), np.float64(z.imag))\n")


_helper("_cx_consts")('''\
_CX_LN2 = 0.6931471805599453
_CX_LOG2E = 1.4426950408889634
_CX_LOG10E = 0.4342944819032518
_CX_BIG = 4.49423283715579e+307  # DBL_MAX / 4: above it, |z| may overflow
_CX_TINY = 2.2250738585072014e-308  # DBL_MIN
_CX_UP = 18014398509481984.0  # 2**54: scales subnormal parts to normal ones
''')

_helper("_cx_mul_c99")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_mul_c99(a, b):
    """C's complex multiply (C99 Annex G): a product whose formula gives nan in both parts
    but has an infinite factor is an infinity."""
    ar, ai = np.float64(a.real), np.float64(a.imag)
    br, bi = np.float64(b.real), np.float64(b.imag)
    re = ar * br - ai * bi
    im = ar * bi + ai * br
    if not (math.isnan(re) and math.isnan(im)):
        return complex(re, im)
    again = False
    if math.isinf(ar) or math.isinf(ai):
        ar = math.copysign(1.0 if math.isinf(ar) else 0.0, ar)
        ai = math.copysign(1.0 if math.isinf(ai) else 0.0, ai)
        br = math.copysign(0.0, br) if math.isnan(br) else br
        bi = math.copysign(0.0, bi) if math.isnan(bi) else bi
        again = True
    if math.isinf(br) or math.isinf(bi):
        br = math.copysign(1.0 if math.isinf(br) else 0.0, br)
        bi = math.copysign(1.0 if math.isinf(bi) else 0.0, bi)
        ar = math.copysign(0.0, ar) if math.isnan(ar) else ar
        ai = math.copysign(0.0, ai) if math.isnan(ai) else ai
        again = True
    if not again and (math.isinf(ar * br) or math.isinf(ai * bi) or math.isinf(ar * bi)
                      or math.isinf(ai * br)):
        ar = math.copysign(0.0, ar) if math.isnan(ar) else ar
        ai = math.copysign(0.0, ai) if math.isnan(ai) else ai
        br = math.copysign(0.0, br) if math.isnan(br) else br
        bi = math.copysign(0.0, bi) if math.isnan(bi) else bi
        again = True
    if again:
        re = math.inf * (ar * br - ai * bi)
        im = math.inf * (ar * bi + ai * br)
    return complex(re, im)
''')

_helper("_cx_div")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_div(a, b, one):
    """NumPy's complex division (Smith's method; a zero divisor gives inf/nan parts), in
    the operands' precision (`one` is typed as their parts: complex64's 1 / tiny
    overflows as NumPy's does)."""
    ar, ai, br, bi = a.real, a.imag, b.real, b.imag
    abr, abi = abs(br), abs(bi)
    if abr >= abi:
        if abr == 0 and abi == 0:
            return complex(ar / abr, ai / abr)
        rat = bi / br
        scl = one / (br + bi * rat)
        return complex((ar + ai * rat) * scl, (ai - ar * rat) * scl)
    rat = br / bi
    scl = one / (bi + br * rat)
    return complex((ar * rat + ai) * scl, (ai * rat - ar) * scl)
''')

_helper("_cx_sign")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_sign(z):
    """NumPy 2's complex sign z / |z|, in z's precision (as NumPy's, |z| of complex64 may
    overflow or round): 0 at 0, a unit along an infinite part, nan for two infinite parts
    or a nan."""
    x, y = z.real, z.imag
    h = math.hypot(x, y)
    if math.isnan(h):
        return complex(math.nan, math.nan)
    if math.isinf(h):
        if math.isinf(x):
            if math.isinf(y):
                return complex(math.nan, math.nan)
            return complex(math.copysign(1.0, x), 0.0)
        return complex(0.0, math.copysign(1.0, y))
    if h == 0:
        return complex(0.0, 0.0)
    return complex(x / h, y / h)
''')

_helper("_cx_exp_parts", ("_cx_consts",))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_exp_parts(x, y):
    """exp(x + iy) (C99 Annex G)."""
    if math.isnan(x):
        return complex(x, y) if y == 0.0 else complex(math.nan, math.nan)
    if math.isinf(x):
        if x > 0.0:
            if y == 0.0:
                return complex(x, y)
            if math.isfinite(y):
                return complex(x * math.cos(y), x * math.sin(y))
            return complex(x, math.nan)
        if math.isfinite(y):
            return complex(math.copysign(0.0, math.cos(y)), math.copysign(0.0, math.sin(y)))
        return complex(0.0, math.copysign(0.0, y))
    if not math.isfinite(y):
        return complex(math.nan, math.nan)
    if y == 0.0:
        return complex(math.exp(x), y)
    c, s = math.cos(y), math.sin(y)
    if x > 709.0:  # exp(x) overflows, exp(x) cos y may not
        h = math.exp(0.5 * x)
        return complex(h * c * h, h * s * h)
    e = math.exp(x)
    return complex(e * c, e * s)
''')

_on_parts("_cx_exp")

_helper("_cx_exp2", ("_cx_exp_parts",))('''\
@numba.njit(inline='always')
def _cx_exp2(z, ln2):
    """NumPy's exp2: exp of z's parts each times log 2, the products rounded to z's
    precision (`ln2` is typed as z's parts)."""
    return _cx_exp_parts(np.float64(z.real * ln2), np.float64(z.imag * ln2))
''')

_helper("_cx_log_abs", ("_cx_consts",))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_log_abs(x, y):
    """log |x + iy| for finite, not both zero x, y: scaled where |z| overflows or is
    subnormal, through log1p near |z| = 1."""
    ax, ay = abs(x), abs(y)
    if ax > _CX_BIG or ay > _CX_BIG:
        return math.log(math.hypot(0.5 * ax, 0.5 * ay)) + _CX_LN2
    if ax < _CX_TINY and ay < _CX_TINY:
        return math.log(math.hypot(ax * _CX_UP, ay * _CX_UP)) - 54.0 * _CX_LN2
    h = math.hypot(ax, ay)
    if 0.71 <= h <= 1.73:
        big, small = (ax, ay) if ax > ay else (ay, ax)
        return 0.5 * math.log1p((big - 1.0) * (big + 1.0) + small * small)
    return math.log(h)
''')

_helper("_cx_log_parts", ("_cx_log_abs",))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_log_parts(x, y):
    """log(x + iy) (C99 Annex G)."""
    if math.isinf(x) or math.isinf(y):
        return complex(math.inf, math.atan2(y, x))
    if math.isnan(x) or math.isnan(y):
        return complex(math.nan, math.nan)
    if x == 0.0 and y == 0.0:
        return complex(-math.inf, math.atan2(y, x))
    return complex(_cx_log_abs(x, y), math.atan2(y, x))
''')

_on_parts("_cx_log")

_helper("_cx_log2", ("_cx_log",))('''\
@numba.njit(inline='always')
def _cx_log2(z):
    """NumPy's log2: log's parts each times log2(e)."""
    w = _cx_log(z)
    return complex(w.real * _CX_LOG2E, w.imag * _CX_LOG2E)
''')

_helper("_cx_log10", ("_cx_log",))('''\
@numba.njit(inline='always')
def _cx_log10(z):
    """NumPy's log10: log's parts each times log10(e)."""
    w = _cx_log(z)
    return complex(w.real * _CX_LOG10E, w.imag * _CX_LOG10E)
''')

_helper("_cx_log1p")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_log1p(z, one):
    """NumPy's log1p: log |1 + z| + i arg(1 + z) in z's precision (`one` typed as its
    parts), with z's own imaginary part (its sign of zero kept on the branch cut). As
    NumPy's, it is not accurate for tiny |z| (log(1 + x) with 1 + x rounded) and is
    infinite where |1 + z| overflows."""
    x, y = z.real + one, z.imag
    return complex(math.log(math.hypot(x, y)), math.atan2(y, x))
''')

_helper("_cx_sqrt_parts", ("_cx_consts",))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_sqrt_parts(x, y):
    """sqrt(x + iy) (C99 Annex G), scaled for huge and subnormal parts."""
    if math.isinf(y):
        return complex(math.inf, y)
    if math.isnan(x):
        return complex(x, math.nan)
    if math.isinf(x):
        if x > 0.0:
            return complex(x, y if math.isnan(y) else math.copysign(0.0, y))
        return complex(math.nan if math.isnan(y) else 0.0, math.copysign(math.inf, y))
    if math.isnan(y):
        return complex(math.nan, math.nan)
    if x == 0.0 and y == 0.0:
        return complex(0.0, y)
    scale = 1.0
    if abs(x) > _CX_BIG or abs(y) > _CX_BIG:
        x, y, scale = 0.25 * x, 0.25 * y, 2.0
    elif abs(x) < 4.0 * _CX_TINY and abs(y) < 4.0 * _CX_TINY:
        x, y, scale = x * _CX_UP * _CX_UP, y * _CX_UP * _CX_UP, 1.0 / _CX_UP
    t = math.sqrt(0.5 * (abs(x) + math.hypot(x, y)))
    if x >= 0.0:
        return complex(scale * t, scale * (0.5 * (y / t)))
    return complex(scale * (0.5 * (abs(y) / t)), scale * math.copysign(t, y))
''')

_on_parts("_cx_sqrt")

_helper("_cx_sinh_parts")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_sinh_parts(x, y):
    """sinh(x + iy) (C99 Annex G)."""
    if math.isfinite(x) and math.isfinite(y):
        if y == 0.0:
            return complex(math.sinh(x), y)
        c, s = math.cos(y), math.sin(y)
        if abs(x) > 709.0:  # cosh x overflows, cosh(x) sin y may not
            h = 0.5 * math.exp(0.5 * abs(x))
            return complex(math.copysign(2.0, x) * (h * c * h), 2.0 * (h * s * h))
        return complex(math.sinh(x) * c, math.cosh(x) * s)
    if math.isinf(x):
        if y == 0.0:
            return complex(x, y)
        if math.isfinite(y):
            return complex(x * math.cos(y), math.inf * math.sin(y))
        return complex(math.inf, math.nan)
    if x == 0.0:
        return complex(x, math.nan)
    if math.isnan(x) and y == 0.0:
        return complex(x, y)
    return complex(math.nan, math.nan)
''')

_helper("_cx_cosh_parts")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_cosh_parts(x, y):
    """cosh(x + iy) (C99 Annex G)."""
    if math.isfinite(x) and math.isfinite(y):
        if y == 0.0:
            return complex(math.cosh(x), math.copysign(0.0, x) * y)
        c, s = math.cos(y), math.sin(y)
        if abs(x) > 709.0:
            h = 0.5 * math.exp(0.5 * abs(x))
            return complex(2.0 * (h * c * h), math.copysign(2.0, x) * (h * s * h))
        return complex(math.cosh(x) * c, math.sinh(x) * s)
    if math.isinf(x):
        if y == 0.0:
            return complex(math.inf, math.copysign(0.0, x) * y)
        if math.isfinite(y):
            return complex(math.inf * math.cos(y), x * math.sin(y))
        return complex(math.inf, math.nan)
    if x == 0.0:
        return complex(math.nan, 0.0)
    if math.isnan(x) and y == 0.0:
        return complex(x, y)
    return complex(math.nan, math.nan)
''')

_helper("_cx_tanh_parts")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_tanh_parts(x, y):
    """tanh(x + iy) (C99 Annex G)."""
    if math.isinf(x):
        if math.isfinite(y):
            return complex(math.copysign(1.0, x), math.copysign(0.0, math.sin(y) * math.cos(y)))
        return complex(math.copysign(1.0, x), math.copysign(0.0, y))
    if math.isnan(x):
        return complex(x, y) if y == 0.0 else complex(math.nan, math.nan)
    if not math.isfinite(y):
        return complex(x, math.nan) if x == 0.0 else complex(math.nan, math.nan)
    if y == 0.0:
        return complex(math.tanh(x), y)
    if abs(x) > 22.0:  # tanh x is +-1 to double precision
        e = math.exp(-2.0 * abs(x))
        return complex(math.copysign(1.0, x), 4.0 * math.sin(y) * math.cos(y) * e)
    s = math.sinh(x)
    c = math.cos(y)
    den = s * s + c * c
    return complex(s * math.sqrt(1.0 + s * s) / den, math.sin(y) * c / den)
''')

for _name, _body in (("sinh", "_cx_sinh_parts(x, y)"), ("cosh", "_cx_cosh_parts(x, y)"),
                     ("tanh", "_cx_tanh_parts(x, y)")):
    _helper(f"_cx_{_name}", (f"_cx_{_name}_parts",))(f'''\
@numba.njit(inline='always')
def _cx_{_name}(z):
    x, y = np.float64(z.real), np.float64(z.imag)
    return {_body}
''')

# sin z = -i sinh(iz), cos z = cosh(iz), tan z = -i tanh(iz)
_helper("_cx_sin", ("_cx_sinh_parts",))('''\
@numba.njit(inline='always')
def _cx_sin(z):
    x, y = np.float64(z.real), np.float64(z.imag)
    if math.isinf(y) and not math.isfinite(x):
        return complex(math.nan, math.inf)
    w = _cx_sinh_parts(-y, x)
    return complex(w.imag, -w.real)
''')

_helper("_cx_cos", ("_cx_cosh_parts",))('''\
@numba.njit(inline='always')
def _cx_cos(z):
    return _cx_cosh_parts(-np.float64(z.imag), np.float64(z.real))
''')

_helper("_cx_tan", ("_cx_tanh_parts",))('''\
@numba.njit(inline='always')
def _cx_tan(z):
    w = _cx_tanh_parts(-np.float64(z.imag), np.float64(z.real))
    return complex(w.imag, -w.real)
''')

_helper("_cx_asinh_parts", ("_cx_sqrt_parts", "_cx_log_abs"))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_asinh_parts(x, y):
    """asinh(x + iy) (C99 Annex G; Kahan's formula for moderate |z|)."""
    if math.isnan(x):
        if y == 0.0:
            return complex(x, y)
        if math.isinf(y):
            return complex(math.inf, math.nan)
        return complex(math.nan, math.nan)
    if math.isnan(y):
        if math.isinf(x):
            return complex(x, math.nan)
        return complex(math.nan, math.nan)
    if max(abs(x), abs(y)) < 1e-9:  # asinh z = z - z^3/6 + ...
        return complex(x, y)
    if max(abs(x), abs(y)) > 1e150:  # asinh z = log 2z + O(1/z^2), also for infinities
        if math.isinf(x) or math.isinf(y):
            re = math.inf
        else:
            re = _cx_log_abs(x, y) + _CX_LN2
        return complex(math.copysign(re, x), math.atan2(y, abs(x)))
    s1 = _cx_sqrt_parts(1.0 + y, -x)
    s2 = _cx_sqrt_parts(1.0 - y, x)
    return complex(math.asinh(s1.real * s2.imag - s2.real * s1.imag),
                   math.atan2(y, s1.real * s2.real - s1.imag * s2.imag))
''')

_on_parts("_cx_asinh")

_helper("_cx_asin", ("_cx_asinh_parts",))('''\
@numba.njit(inline='always')
def _cx_asin(z):
    """asin z = -i asinh(iz)."""
    x, y = np.float64(z.real), np.float64(z.imag)
    if math.isinf(x) and math.isnan(y):
        return complex(math.nan, math.inf)
    w = _cx_asinh_parts(-y, x)
    return complex(w.imag, -w.real)
''')

_helper("_cx_acos", ("_cx_sqrt_parts", "_cx_log_abs"))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_acos(z):
    """acos(x + iy) (C99 Annex G; Kahan's formula for moderate |z|)."""
    x, y = np.float64(z.real), np.float64(z.imag)
    if math.isnan(x):
        if math.isinf(y):
            return complex(math.nan, -y)
        return complex(math.nan, math.nan)
    if math.isnan(y):
        if math.isinf(x):
            return complex(math.nan, -math.inf)
        if x == 0.0:
            return complex(0.5 * math.pi, math.nan)
        return complex(math.nan, math.nan)
    if max(abs(x), abs(y)) < 1e-9:  # acos z = pi/2 - z + O(z^3)
        return complex(0.5 * math.pi - x, -y)
    if max(abs(x), abs(y)) > 1e150:
        if math.isinf(x) or math.isinf(y):
            im = math.inf
        else:
            im = _cx_log_abs(x, y) + _CX_LN2
        return complex(math.atan2(abs(y), x), -math.copysign(im, y))
    s1 = _cx_sqrt_parts(1.0 - x, -y)
    s2 = _cx_sqrt_parts(1.0 + x, y)
    return complex(2.0 * math.atan2(s1.real, s2.real),
                   math.asinh(s2.real * s1.imag - s2.imag * s1.real))
''')

_helper("_cx_acosh", ("_cx_sqrt_parts", "_cx_log_abs"))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_acosh(z):
    """acosh(x + iy) (C99 Annex G; Kahan's formula for moderate |z|)."""
    x, y = np.float64(z.real), np.float64(z.imag)
    if math.isnan(x):
        if math.isinf(y):
            return complex(math.inf, math.nan)
        return complex(math.nan, math.nan)
    if math.isnan(y):
        if math.isinf(x):
            return complex(math.inf, math.nan)
        if x == 0.0:
            return complex(math.nan, 0.5 * math.pi)
        return complex(math.nan, math.nan)
    if max(abs(x), abs(y)) < 1e-9:  # acosh z = i acos z = i (pi/2 - z) (Im z >= 0)
        return complex(abs(y), math.copysign(0.5 * math.pi - x, y))
    if max(abs(x), abs(y)) > 1e150:
        if math.isinf(x) or math.isinf(y):
            re = math.inf
        else:
            re = _cx_log_abs(x, y) + _CX_LN2
        return complex(re, math.atan2(y, x))
    s1 = _cx_sqrt_parts(x - 1.0, y)
    s2 = _cx_sqrt_parts(x + 1.0, y)
    return complex(math.asinh(s1.real * s2.real + s1.imag * s2.imag),
                   2.0 * math.atan2(s1.imag, s2.real))
''')

_helper("_cx_atanh_parts", ("_cx_consts",))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_atanh_parts(x, y):
    """atanh(x + iy) (C99 Annex G): odd, so computed for x >= 0."""
    if math.isnan(x):
        if math.isinf(y):
            return complex(math.copysign(0.0, x), math.copysign(0.5 * math.pi, y))
        return complex(math.nan, math.nan)
    if math.isnan(y):
        if math.isinf(x):
            return complex(math.copysign(0.0, x), math.nan)
        if x == 0.0:
            return complex(x, math.nan)
        return complex(math.nan, math.nan)
    ax = abs(x)
    if ax < 1e-9 and abs(y) < 1e-9:  # atanh z = z + z^3/3 + ...
        return complex(x, y)
    if ax > 1e150 or abs(y) > 1e150:  # atanh z = 1/z + i pi/2 + O(1/z^3)
        if math.isinf(ax) or math.isinf(y):
            re = 0.0
        else:
            h = math.hypot(0.5 * ax, 0.5 * y)
            re = (0.25 * ax / h) / h
        return complex(math.copysign(re, x), math.copysign(0.5 * math.pi, y))
    if ax == 1.0 and y == 0.0:
        return complex(math.copysign(math.inf, x), y)
    ay = abs(y)
    if ax == 1.0 and ay < 1e-100:  # (1 - ax)^2 + y^2 underflows: re = log(2 / |y|) / 2
        return complex(math.copysign(0.5 * (_CX_LN2 - math.log(ay)), x),
                       math.copysign(0.25 * math.pi, y))
    # re = log1p(4 ax / ((1 - ax)^2 + y^2)) / 4, im = atan2(2y, (1 - ax)(1 + ax) - y^2) / 2
    d = (1.0 - ax) * (1.0 - ax) + ay * ay
    re = 0.25 * math.log1p(4.0 * ax / d)
    im = 0.5 * math.atan2(2.0 * y, (1.0 - ax) * (1.0 + ax) - ay * ay)
    return complex(math.copysign(re, x), im)
''')

_on_parts("_cx_atanh")

_helper("_cx_atan", ("_cx_atanh_parts",))('''\
@numba.njit(inline='always')
def _cx_atan(z):
    """atan z = -i atanh(iz)."""
    w = _cx_atanh_parts(-np.float64(z.imag), np.float64(z.real))
    return complex(w.imag, -w.real)
''')

_helper("_cx_ipow")('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_ipow(z, n, one):
    """NumPy's z ** n for a whole n with |n| < 100, in z's precision (`one` typed as its
    parts): 1 for n = 0, 0 for a zero base and n > 0, nan+nanj for a zero base and n < 0;
    else repeated squaring with NumPy's multiply (the plain formula), and its division
    for n < 0."""
    zero = one - one
    if n == 0:
        return complex(one, zero)
    x, y = z.real, z.imag
    if x == 0 and y == 0:
        return complex(zero, zero) if n > 0 else complex(math.nan, math.nan)
    if n == 1:
        return complex(x, y)
    if n == 2:
        return complex(x * x - y * y, x * y + y * x)
    if n == 3:
        sr, si = x * x - y * y, x * y + y * x
        return complex(x * sr - y * si, x * si + y * sr)
    k = -n if n < 0 else n
    ar, ai = one, zero
    pr, pi = x, y
    mask = 1
    while True:
        if k & mask:
            ar, ai = ar * pr - ai * pi, ar * pi + ai * pr
        mask <<= 1
        if k < mask:
            break
        pr, pi = pr * pr - pi * pi, pr * pi + pi * pr
    if n > 0:
        return complex(ar, ai)
    # 1 / (ar + i ai), NumPy's division
    if abs(ar) >= abs(ai):
        if ar == 0 and ai == 0:
            return complex(one / abs(ar), zero / abs(ar))
        rat = ai / ar
        scl = one / (ar + ai * rat)
        return complex(scl, -rat * scl)
    rat = ar / ai
    scl = one / (ai + ar * rat)
    return complex(rat * scl, -scl)
''')

_helper("_cx_pow", ("_cx_ipow", "_cx_exp_parts", "_cx_log", "_cx_mul_c99"))('''\
@numba.njit(cache=True, error_model='numpy')
def _cx_pow(a, b, one):
    """NumPy's a ** b: the whole exponents of `_cx_ipow`, else exp(b log a) with C's
    complex multiply (the C library's cpow)."""
    br, bi = np.float64(b.real), np.float64(b.imag)
    if br == 0.0 and bi == 0.0:
        return complex(1.0, 0.0)
    if a.real == 0.0 and a.imag == 0.0:
        return complex(0.0, 0.0) if br > 0.0 else complex(math.nan, math.nan)
    if bi == 0.0 and -100.0 < br < 100.0 and br == math.floor(br):
        return _cx_ipow(a, int(br), one)
    w = _cx_mul_c99(b, _cx_log(a))
    return _cx_exp_parts(w.real, w.imag)
''')

_CALL = re.compile(r"\b_cx_\w+")

# Helpers that compute in the operand's precision; the others compute in float64, so the
# generator passes them complex128 operands (one compiled specialization per helper).
NATIVE = frozenset({"_cx_div", "_cx_sign", "_cx_log1p", "_cx_exp2", "_cx_ipow", "_cx_pow"})


def widens(expr: str) -> bool:
    """Whether the helpers `expr` calls take complex128 operands."""
    return all(name not in NATIVE for name in used_in(expr))


def used_in(expr: str) -> list[str]:
    """The helpers an expression calls."""
    return _CALL.findall(expr)


def preamble(used: Iterable[str]) -> list[str]:
    """Source lines defining the helpers named in `used` and those they call, callees first
    (an empty list for none)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in _HELPERS:
            raise KeyError(f"no complex helper {name!r}")
        for dep in _HELPERS[name][1]:
            visit(dep)
        order.append(name)

    for name in sorted(set(used)):
        visit(name)
    if any(name != "_cx_consts" for name in order) and "_cx_consts" not in order:
        order.insert(0, "_cx_consts")
    lines: list[str] = []
    for name in order:
        lines += _HELPERS[name][0].splitlines() + ["", ""]
    return lines
