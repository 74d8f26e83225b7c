"""Loop-body helpers of the special functions (`primitives/special.py`), as module text.

A special-function row spells its loop body as a call of a `_sf_<name>` helper; the code
generator pastes the definitions of the helpers a module uses (and what they need) after its
imports, so the module stays standalone: it needs numpy, numba, llvmlite and SciPy.

- `_sf_erfinv`, `_sf_digamma`, `_sf_xlogy`, `_sf_xlog1py` call SciPy's own C
  implementations (`scipy.special.cython_special`, the code `scipy.special` runs), reached
  by a symbol registered with LLVM by name: calls stay cacheable on disk (an address baked
  into the code would not be), and compiled values equal the interpreter's.
- `_sf_polygamma(n, x)` (whole n >= 1) is a loop of its own, since SciPy offers no C entry
  for it: the recurrence psi_n(x) = psi_n(x + 1) + (-1)^(n+1) n! / x^(n+1) moves x up to
  at least 20 + n, then the asymptotic series with Bernoulli numbers B_2..B_20. It agrees with
  `scipy.special.polygamma` to about 1e-15 relative for n <= 10 (tests/test_special.py); the
  loop takes |x| steps for negative x.
"""

from __future__ import annotations

from collections.abc import Iterable

# helper -> (cython_special entry, number of float64 arguments)
_CYTHON = {
    "_sf_erfinv": ("__pyx_fuse_0erfinv", 1),
    "_sf_digamma": ("__pyx_fuse_1psi", 1),
    "_sf_xlogy": ("__pyx_fuse_1xlogy", 2),
    "_sf_xlog1py": ("__pyx_fuse_1xlog1py", 2),
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

_POLYGAMMA = '''\
_SF_BERNOULLI = (1.0 / 6, -1.0 / 30, 1.0 / 42, -1.0 / 30, 5.0 / 66, -691.0 / 2730, 7.0 / 6,
                 -3617.0 / 510, 43867.0 / 798, -174611.0 / 330)


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


def preamble(used: Iterable[str]) -> list[str]:
    """Source lines defining the helpers named in `used` (an empty list for none)."""
    used = sorted(set(used))
    lines: list[str] = []
    cython = [name for name in used if name in _CYTHON]
    if cython:
        lines += _CYTHON_RUNTIME.splitlines() + [""]
        for name in cython:
            entry, nargs = _CYTHON[name]
            args = ", ".join(f"x{i}" for i in range(nargs))
            lines += [f"{name}_c = _sf_external({entry!r}, {nargs})", "", "",
                      "@numba.njit(cache=True)", f"def {name}({args}):",
                      f"    return {name}_c({args}, 0)", "", ""]
    if "_sf_polygamma" in used:
        lines += _POLYGAMMA.splitlines() + ["", ""]
    unknown = [name for name in used if name not in _CYTHON and name != "_sf_polygamma"]
    if unknown:
        raise KeyError(f"no special-function helper {unknown}")
    return lines
