"""Loop-body helpers of the special functions (`primitives/special.py`), as module text.

A special-function row spells its loop body as a call of a `_sf_<name>` helper; the code
generator pastes the definitions of the helpers a module uses (and what they need) after its
imports, so the module stays standalone: it needs numpy, numba, llvmlite and SciPy.

- `_sf_erfinv`, `_sf_gammaln`, `_sf_digamma`, `_sf_xlogy`, `_sf_xlog1py` call SciPy's own C
  implementations (`scipy.special.cython_special`, the code `scipy.special` runs), reached
  by a symbol registered with LLVM by name: calls stay cacheable on disk (an address baked
  into the code would not be), and compiled values equal the interpreter's. (`gammaln` is
  SciPy's rather than `math.lgamma`, which gives +inf at -inf where SciPy gives -inf, and
  which Numba computes in single precision for float32.)
- `_sf_cerf`, `_sf_cerfc`, `_sf_cdigamma` call SciPy's complex entries (`double complex
  f(double complex, int)`, by value). Numba's `ExternalFunction` cannot declare a complex
  argument, so a small intrinsic declares the symbol as C compilers do for this ABI, `{double,
  double} f(double, double, i32)`, and splits and joins the parts: on x86-64 System V (Linux,
  macOS) that is how a `double complex` travels (the parts in xmm0/xmm1 both ways). Values
  equal SciPy's bit for bit (tests/test_complex_special.py; 200 000 random points and the
  nan/inf parts). Elsewhere (Windows passes it by reference; AArch64 should match but is
  untested) the preamble refuses with a clear error rather than risk a wrong convention.
- `_sf_polygamma(n, x)` (whole n >= 1) is a loop of its own, since SciPy offers no C entry
  for it: the recurrence psi_n(x) = psi_n(x + 1) + (-1)^(n+1) n! / x^(n+1) moves x up to
  at least 20 + n, then the asymptotic series with Bernoulli numbers B_2..B_20. It agrees with
  `scipy.special.polygamma` to about 1e-15 relative for n <= 10 (tests/test_special.py); the
  loop takes |x| steps for negative x, so below -1e4 it calls the complex twin's reflection.
- `_sf_cpolygamma(n, z)` is its complex twin (SciPy has no complex polygamma; digamma's
  derivatives need it): the same recurrence and series for Re z >= 0, and for Re z < 0
  the reflection psi_n(z) = (-1)^n psi_n(1 - z) - pi^(n+1) cot^(n)(pi z), the cotangent's
  derivative from q = exp(+-2i pi z) series when |Im z| > 1/4, else as a polynomial in cot.
  Poles give nan + nan j, as SciPy's complex psi does. Checked against mpmath
  (tests/test_complex_special.py: within 5e-15 relative for n = 1, 2, 3, 5 over all four
  quadrants, near the poles and the axes, |z| up to 1e8). `complex_polygamma` is the
  interpreter's implementation: the same steps on whole NumPy arrays.
"""

from __future__ import annotations

import math
import platform
import sys
from collections.abc import Iterable

import numpy as np

# helper -> (cython_special entry, number of float64 arguments)
_CYTHON = {
    "_sf_erfinv": ("__pyx_fuse_0erfinv", 1),
    "_sf_digamma": ("__pyx_fuse_1psi", 1),
    "_sf_xlogy": ("__pyx_fuse_1xlogy", 2),
    "_sf_xlog1py": ("__pyx_fuse_1xlog1py", 2),
    "_sf_gammaln": ("gammaln", 1),
}

# helper -> cython_special entry taking and returning one double complex
_CYTHON_COMPLEX = {
    "_sf_cerf": "__pyx_fuse_0erf",
    "_sf_cerfc": "__pyx_fuse_0erfc",
    "_sf_cdigamma": "__pyx_fuse_0psi",
}

_CYTHON_RUNTIME = '''\
import llvmlite.binding as _sf_llvm
from numba.extending import get_cython_function_address as _sf_address


def _sf_external(entry, nargs):
    """A SciPy special function as a Numba external function: its C entry point
    (`double f(double..., int skip_dispatch)`) registered with LLVM under a name."""
    symbol = "tracejit_sf_" + entry
    _sf_llvm.add_symbol(symbol, _sf_address("scipy.special.cython_special", entry))
    f64 = numba.types.float64
    return numba.types.ExternalFunction(symbol, f64(*([f64] * nargs), numba.types.intc))
'''

_CYTHON_COMPLEX_RUNTIME = '''\
from llvmlite import ir as _sf_ir
from numba.core import cgutils as _sf_cgutils
from numba.extending import intrinsic as _sf_intrinsic


def _sf_complex_external(entry):
    """A SciPy complex special function (`double complex f(double complex, int)`) as a
    Numba intrinsic on complex128: declared as C compilers lower it on x86-64 System V,
    `{double, double} f(double, double, i32)`, the parts split and joined around the call."""
    symbol = "tracejit_sf_" + entry
    _sf_llvm.add_symbol(symbol, _sf_address("scipy.special.cython_special", entry))
    c128 = numba.types.complex128

    @_sf_intrinsic
    def call(typingctx, z):
        if z != c128:
            return None

        def codegen(context, builder, signature, args):
            f64 = _sf_ir.DoubleType()
            fnty = _sf_ir.FunctionType(_sf_ir.LiteralStructType([f64, f64]),
                                       [f64, f64, _sf_ir.IntType(32)])
            fn = _sf_cgutils.get_or_insert_function(builder.module, fnty, symbol)
            arg = context.make_complex(builder, c128, args[0])
            res = builder.call(fn, [arg.real, arg.imag, _sf_ir.Constant(_sf_ir.IntType(32), 0)])
            out = context.make_complex(builder, c128)
            out.real = builder.extract_value(res, 0)
            out.imag = builder.extract_value(res, 1)
            return out._getvalue()
        return c128(c128), codegen
    return call
'''

_BERNOULLI = '''\
_SF_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6,
                 -3617.0 / 510, 43867.0 / 798, -174611.0 / 330)
'''

_POLYGAMMA = '''\
@numba.njit(cache=True)
def _sf_polygamma(n, x):
    """polygamma(n, x) for whole n >= 1 (float64)."""
    n = float(n)
    x = float(x)
    if math.isnan(x) or n < 1 or n != math.floor(n):
        return math.nan
    sign = 1.0 if int(n) % 2 == 1 else -1.0  # (-1)**(n + 1)
    if x == math.inf:
        return sign * 0.0
    if x <= 0 and x == math.floor(x):  # the poles (and -inf), as SciPy gives them
        return sign * math.inf
    if x < -1e4:  # the recurrence would take |x| steps: the complex twin's reflection
        return _sf_cpolygamma(n, complex(x, 0.0)).real
    fact = math.gamma(n + 1.0)  # n!
    total = 0.0
    while x < 20.0 + n:
        total += fact / x ** (n + 1.0)
        x += 1.0
    # (n-1)!/x^n + n!/(2 x^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! x^(2k+n))
    series = fact / n / x ** n + fact / (2.0 * x ** (n + 1.0))
    coef = fact / n  # (2k + n - 1)! / (2k)!, at k = 0
    term = 1.0 / x ** n
    for k in range(1, 11):
        coef *= (2.0 * k + n - 2.0) * (2.0 * k + n - 1.0) / ((2.0 * k - 1.0) * (2.0 * k))
        term /= x * x
        series += _SF_BERNOULLI[k - 1] * coef * term
    return sign * (total + series)
'''


_CPOLYGAMMA = '''\
@numba.njit(cache=True)
def _sf_cpolygamma(n, z):
    """polygamma(n, z) for whole n >= 1 and complex z (complex128)."""
    n = float(n.real)
    x = float(z.real)
    y = float(z.imag)
    if math.isnan(x) or math.isnan(y) or n < 1 or n != math.floor(n):
        return complex(math.nan, math.nan)
    if math.isinf(y) or x == math.inf:
        return complex(0.0, 0.0)
    if x == -math.inf or (y == 0.0 and x <= 0.0 and x == math.floor(x)):
        return complex(math.nan, math.nan)  # no limit; the poles, as SciPy's complex psi
    m = int(n)
    sign = 1.0 if m % 2 == 1 else -1.0  # (-1)**(n + 1)
    fact = math.gamma(n + 1.0)  # n!
    reflected = x < 0.0
    cot_part = complex(0.0, 0.0)
    if reflected:
        # psi_n(z) = (-1)^n psi_n(1 - z) - pi^(n+1) cot^(n)(pi z); cot has period pi, so
        # the real part is reduced to [-1/2, 1/2] first (exactly)
        r = x - math.floor(x + 0.5)
        if abs(y) > 0.25:
            # cot^(n)(w) = -2is sum_k>=1 (2isk)^n q^k, q = exp(2isw), s = sign(Im w), |q| < 0.21
            s = 1.0 if y > 0 else -1.0
            q = cmath.exp(complex(-2.0 * math.pi * s * y, 2.0 * math.pi * s * r))
            total = complex(0.0, 0.0)
            qk = q
            for k in range(1, 400):
                base = complex(0.0, 2.0 * s * k)
                term = qk
                for _ in range(m):
                    term = term * base
                total += term
                if k > m and abs(term) <= 1e-18 * abs(total):
                    break
                qk = qk * q
            deriv = complex(0.0, -2.0 * s) * total
        else:
            # cot^(n)(w) = P_n(cot w): P_0(c) = c, P_(k+1)(c) = -(1 + c^2) P_k'(c); near
            # r = +-1/2, where cot is 0, cot(pi r) = -tan(pi (r -+ 1/2)), r -+ 1/2 exact
            if abs(r) <= 0.25:
                c = 1.0 / cmath.tan(complex(math.pi * r, math.pi * y))
            else:
                half = 0.5 if r > 0 else -0.5
                c = -cmath.tan(complex(math.pi * (r - half), math.pi * y))
            coef = np.zeros(m + 2)
            coef[1] = 1.0
            for k in range(m):
                new = np.zeros(m + 2)
                for j in range(1, k + 2):
                    new[j - 1] -= j * coef[j]
                    new[j + 1] -= j * coef[j]
                coef = new
            deriv = complex(0.0, 0.0)
            for j in range(m + 1, -1, -1):
                deriv = deriv * c + coef[j]
        cot_part = -(math.pi ** (n + 1.0)) * deriv
        x, y = 1.0 - x, -y
    zz = complex(x, y)
    total = complex(0.0, 0.0)
    while zz.real < 20.0 + n:
        inv = 1.0 / zz
        term = complex(fact, 0.0)
        for _ in range(m + 1):
            term = term * inv
        total += term
        zz += 1.0
    # (n-1)!/z^n + n!/(2 z^(n+1)) + sum_k B_2k (2k+n-1)!/((2k)! z^(2k+n)), in powers of 1/z
    inv = 1.0 / zz
    inv2 = inv * inv
    power = complex(1.0, 0.0)
    for _ in range(m):
        power = power * inv  # 1/z^n
    series = (fact / n) * power + (fact / 2.0) * (power * inv)
    coef = fact / n  # (2k + n - 1)! / (2k)!, at k = 0
    for k in range(1, 11):
        coef *= (2.0 * k + n - 2.0) * (2.0 * k + n - 1.0) / ((2.0 * k - 1.0) * (2.0 * k))
        power = power * inv2
        series += (_SF_BERNOULLI[k - 1] * coef) * power
    value = sign * (total + series)
    if reflected:
        return -sign * value + cot_part
    return value
'''


def _bernoulli_2k() -> tuple:
    namespace: dict = {}
    exec(_BERNOULLI, namespace)  # the module text's own table (B_2 .. B_20)
    return namespace["_SF_BERNOULLI"]


_BERNOULLI_2K = _bernoulli_2k()


def complex_polygamma(n, z) -> np.ndarray:
    """The interpreter's complex polygamma (arrays in, complex128 out): `_sf_cpolygamma`'s
    algorithm, step for step, on whole arrays."""
    n = np.real(np.asarray(n)).astype(np.float64)
    z = np.asarray(z).astype(np.complex128)
    n, z = np.broadcast_arrays(n, z)
    out = np.full(z.shape, complex(math.nan, math.nan))
    with np.errstate(all="ignore"):
        for order in np.unique(n[np.isfinite(n)]):
            if order >= 1 and order == math.floor(order):
                at = n == order
                out[at] = _complex_polygamma_of_order(int(order), z[at])
    return out


def _complex_polygamma_of_order(m: int, z: np.ndarray) -> np.ndarray:
    n = float(m)
    x, y = z.real.copy(), z.imag.copy()
    out = np.full(z.shape, complex(math.nan, math.nan))
    known = np.isnan(x) | np.isnan(y)
    zero = ~known & (np.isinf(y) | (x == math.inf))
    out[zero] = 0.0
    known |= zero | (x == -math.inf) | ((y == 0.0) & (x <= 0.0) & (x == np.floor(x)))
    ok = ~known
    x, y = x[ok], y[ok]
    sign = 1.0 if m % 2 == 1 else -1.0
    fact = math.gamma(n + 1.0)
    reflected = x < 0.0
    cot_part = np.zeros(x.shape, np.complex128)
    r = x - np.floor(x + 0.5)
    far = reflected & (np.abs(y) > 0.25)
    if far.any():  # the q-series of cot^(n)
        s = np.where(y[far] > 0, 1.0, -1.0)
        q = np.exp(-2.0 * math.pi * s * y[far] + 1j * (2.0 * math.pi * s * r[far]))
        total = np.zeros(q.shape, np.complex128)
        qk = q.copy()
        active = np.ones(q.shape, bool)
        for k in range(1, 400):
            base = 1j * (2.0 * s * k)
            term = qk.copy()
            for _ in range(m):
                term = term * base
            total = np.where(active, total + term, total)
            if k > m:
                active &= ~(np.abs(term) <= 1e-18 * np.abs(total))
                if not active.any():
                    break
            qk = qk * q
        cot_part[far] = -(math.pi ** (n + 1.0)) * (-2j * s * total)
    near = reflected & ~far
    if near.any():  # the polynomial in cot
        rn, yn = r[near], y[near]
        half = np.where(rn > 0, 0.5, -0.5)
        c = np.where(np.abs(rn) <= 0.25, 1.0 / np.tan(math.pi * rn + 1j * (math.pi * yn)),
                     -np.tan(math.pi * (rn - half) + 1j * (math.pi * yn)))
        coef = np.zeros(m + 2)
        coef[1] = 1.0
        for k in range(m):
            new = np.zeros(m + 2)
            for j in range(1, k + 2):
                new[j - 1] -= j * coef[j]
                new[j + 1] -= j * coef[j]
            coef = new
        deriv = np.zeros(c.shape, np.complex128)
        for j in range(m + 1, -1, -1):
            deriv = deriv * c + coef[j]
        cot_part[near] = -(math.pi ** (n + 1.0)) * deriv
    x = np.where(reflected, 1.0 - x, x)
    y = np.where(reflected, -y, y)
    zz = x + 1j * y
    total = np.zeros(zz.shape, np.complex128)
    while True:
        low = zz.real < 20.0 + n
        if not low.any():
            break
        inv = 1.0 / zz[low]
        term = np.full(inv.shape, complex(fact, 0.0))
        for _ in range(m + 1):
            term = term * inv
        total[low] += term
        zz[low] += 1.0
    inv = 1.0 / zz
    inv2 = inv * inv
    power = np.ones(zz.shape, np.complex128)
    for _ in range(m):
        power = power * inv
    series = (fact / n) * power + (fact / 2.0) * (power * inv)
    coef_k = fact / n
    for k in range(1, 11):
        coef_k *= (2.0 * k + n - 2.0) * (2.0 * k + n - 1.0) / ((2.0 * k - 1.0) * (2.0 * k))
        power = power * inv2
        series = series + (_BERNOULLI_2K[k - 1] * coef_k) * power
    value = sign * (total + series)
    out[ok] = np.where(reflected, -sign * value + cot_part, value)
    return out


def preamble(used: Iterable[str]) -> list[str]:
    """Source lines defining the helpers named in `used` (an empty list for none)."""
    used = sorted(set(used))
    lines: list[str] = []
    cython = [name for name in used if name in _CYTHON]
    complex_ = [name for name in used if name in _CYTHON_COMPLEX]
    if complex_ and not complex_abi_supported():
        names = ", ".join(_CYTHON_COMPLEX[name].removeprefix("__pyx_fuse_0") for name in complex_)
        raise NotImplementedError(
            f"compiled complex {names} call SciPy's C functions with the System V calling "
            f"convention of `double complex`, which this platform ({platform.system()} "
            f"{platform.machine()}) does not use; evaluate them without jit "
            f"(tracejit.disable_jit())")
    if cython or complex_:
        lines += _CYTHON_RUNTIME.splitlines() + [""]
    if complex_:
        lines += _CYTHON_COMPLEX_RUNTIME.splitlines() + [""]
    for name in cython:
        entry, nargs = _CYTHON[name]
        args = ", ".join(f"x{i}" for i in range(nargs))
        lines += [f"{name}_c = _sf_external({entry!r}, {nargs})", "", "",
                  "@numba.njit(cache=True)", f"def {name}({args}):",
                  f"    return {name}_c({args}, 0)", "", ""]
    for name in complex_:
        lines += [f"{name}_c = _sf_complex_external({_CYTHON_COMPLEX[name]!r})", "", "",
                  "@numba.njit(cache=True)", f"def {name}(z):",
                  f"    return {name}_c(np.complex128(z))", "", ""]
    if "_sf_polygamma" in used or "_sf_cpolygamma" in used:
        lines += _BERNOULLI.splitlines() + ["", ""]
    if "_sf_polygamma" in used:
        lines += _POLYGAMMA.splitlines() + ["", ""]
    if "_sf_polygamma" in used or "_sf_cpolygamma" in used:  # the first calls the second
        lines += ["import cmath", ""] + _CPOLYGAMMA.splitlines() + ["", ""]
    known = set(_CYTHON) | set(_CYTHON_COMPLEX) | {"_sf_polygamma", "_sf_cpolygamma"}
    unknown = [name for name in used if name not in known]
    if unknown:
        raise KeyError(f"no special-function helper {unknown}")
    return lines


def complex_abi_supported() -> bool:
    """Whether `double complex` travels as two doubles in registers, the convention
    `_sf_complex_external` declares: x86-64 System V, the one verified (not Windows)."""
    machine = platform.machine().lower()
    return sys.platform != "win32" and machine in ("x86_64", "amd64")
