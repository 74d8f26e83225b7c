"""Special functions as elementwise rows (the table of `elementwise.py`, one row each).

The NumPy implementations are SciPy's (`scipy.special`). In compiled loops real `erf` and
`erfc` are `math` calls; `erfinv`, `lgamma`, `digamma`, `xlogy`/`xlog1py` and complex `erf`,
`erfc`, `digamma` call SciPy's own C implementations (`scipy.special.cython_special`), and
`polygamma` is a loop of its own (`compiler/special.py` holds those helpers), so compiled
and interpreted values agree.

`erf`, `erfc`, `digamma` and `polygamma` take complex operands too (complex64 computes in
complex128 and rounds back, as float32 does in float64). They are holomorphic, so the rules
below serve both: the JVP is f'(z) t. SciPy has no complex polygamma; its interpreter
implementation is `compiler.special.complex_polygamma`, the compiled helper's algorithm.

Derivatives are built from the rows themselves, so every function differentiates to any
order: erf' = 2/sqrt(pi) exp(-x^2), erfinv' = sqrt(pi)/2 exp(erfinv(x)^2),
lgamma' = digamma, digamma' = polygamma(1, .), polygamma(n, .)' = polygamma(n + 1, .).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special as sps

from ..compiler.special import complex_polygamma
from ..transforms.jvp import is_zero
from .elementwise import binary, div, exp, log, log1p, mul, neg, unary

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(math.pi) / 2.0


def _sq(x):
    return mul(x, x)


erf_p, erf = unary("erf", sps.erf, "math.erf({0})",
                   lambda t, x, out: mul(t, mul(exp(neg(_sq(x))), _TWO_OVER_SQRT_PI)),
                   inputs="inexact", complex_expr="_sf_cerf({0})")
erfc_p, erfc = unary("erfc", sps.erfc, "math.erfc({0})",
                     lambda t, x, out: mul(t, mul(exp(neg(_sq(x))), -_TWO_OVER_SQRT_PI)),
                     inputs="inexact", complex_expr="_sf_cerfc({0})")
erfinv_p, erfinv = unary("erfinv", sps.erfinv, "_sf_erfinv({0})",
                         lambda t, x, out: mul(t, mul(exp(_sq(out)), _SQRT_PI_OVER_TWO)))
lgamma_p, lgamma = unary("lgamma", sps.gammaln, "_sf_gammaln({0})",
                         lambda t, x, out: mul(t, digamma(x)))
digamma_p, digamma = unary("digamma", sps.digamma, "_sf_digamma({0})",
                           lambda t, x, out: mul(t, polygamma(1.0, x)),
                           inputs="inexact", complex_expr="_sf_cdigamma({0})")


def _jvp_polygamma(tn, tx, n, x, out):
    if not is_zero(tn):
        raise TypeError("polygamma is not differentiable in its order n (an integer)")
    return tn, (tx if is_zero(tx) else mul(tx, polygamma(n + 1.0, x)))


def _jvp_xlogy(tx, ty, x, y, out):
    return (tx if is_zero(tx) else mul(tx, log(y)),
            ty if is_zero(ty) else mul(ty, div(x, y)))


def _jvp_xlog1py(tx, ty, x, y, out):
    return (tx if is_zero(tx) else mul(tx, log1p(y)),
            ty if is_zero(ty) else mul(ty, div(x, y + 1.0)))


def _polygamma_impl(n, x):
    if np.iscomplexobj(n) or np.iscomplexobj(x):
        return complex_polygamma(n, x)
    return sps.polygamma(n, x)


# The order n is an operand of x's dtype holding a whole number >= 1 (the front end checks
# it and sends n = 0 to digamma); complex x comes only from digamma's derivatives.
polygamma_p, polygamma = binary("polygamma", _polygamma_impl, "_sf_polygamma({0}, {1})",
                                _jvp_polygamma, inputs="inexact",
                                complex_expr="_sf_cpolygamma({0}, {1})")
xlogy_p, xlogy = binary("xlogy", sps.xlogy, "_sf_xlogy({0}, {1})", _jvp_xlogy)
xlog1py_p, xlog1py = binary("xlog1py", sps.xlog1py, "_sf_xlog1py({0}, {1})", _jvp_xlog1py)
