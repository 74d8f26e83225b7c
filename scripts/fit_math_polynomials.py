"""Derive the constants of tracejit's portable vector math (tracejit/compiler/portable_math.py).

Each polynomial is a least-squares fit at Chebyshev nodes, computed with mpmath at 200 bits
and rounded to float64; over an interval this small that is within a few percent of the
minimax error, and the printed maximum error says how far below float64's epsilon it is.
The split constants (ln 2 with trailing zeros, so k * LN2_HI is exact) are roundings of the
true value at 200 bits. Run `python scripts/fit_math_polynomials.py` (needs mpmath) and paste
its output over the constants block of portable_math.py.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.prec = 200


def fit(g, lo, hi, degree, nodes=400):
    """Coefficients c[0..degree] of the polynomial closest to g on [lo, hi] in least squares
    at `nodes` Chebyshev points, and its maximum error there (relative to |g|)."""
    xs = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (2 * j + 1) / (2 * nodes))
          for j in range(nodes)]
    a = mp.matrix([[x ** i for i in range(degree + 1)] for x in xs])
    b = mp.matrix([g(x) for x in xs])
    c = mp.lu_solve(a.T * a, a.T * b)
    coeffs = [float(c[i]) for i in range(degree + 1)]  # as the float64 code will use them
    grid = [lo + (hi - lo) * mp.mpf(j) / 4000 for j in range(4001)]
    err = max(abs(sum(mp.mpf(ci) * x ** i for i, ci in enumerate(coeffs)) - g(x))
              / max(abs(g(x)), mp.mpf(10) ** -30) for x in grid)
    return coeffs, float(err)


def split(v, bits):
    """v rounded to `bits` significant bits."""
    e = mp.floor(mp.log(abs(v), 2))
    scale = mp.mpf(2) ** (bits - 1 - e)
    return mp.nint(v * scale) / scale


def main() -> None:
    mp.mp.prec = 1400  # 2/pi's bits below need this much; the fits are cheap at any precision
    ln2 = mp.log(2)
    hi = split(ln2, 42)  # |k| <= 2**11 keeps k * LN2_HI exact
    print(f"_PM_LN2_HI = {float(hi)!r}")
    print(f"_PM_LN2_LO = {float(ln2 - hi)!r}")
    print(f"_PM_LOG2E = {float(1 / ln2)!r}")

    # exp(r) = 1 + r + r**2 * E(r) and expm1(r) = r + r**2 * E(r) on |r| <= ln2 / 2.
    h = ln2 / 2 * (1 + mp.mpf(2) ** -20)  # the reduced argument's rounding overshoot

    def e_of(r):
        if abs(r) < mp.mpf(10) ** -15:  # the series: 200 bits cancel below this
            return mp.mpf(1) / 2 + r / 6 + r ** 2 / 24
        return (mp.exp(r) - 1 - r) / r ** 2
    coeffs, err = fit(e_of, -h, h, 10)
    print(f"# E(r), degree 10: max relative error of E {err:.2e}; r**2 E(r) <= 0.12 exp(r)")
    print(f"_PM_EXP = {tuple(coeffs)!r}")

    # log(1 + f) = f - (f**2/2 - s * (f**2/2 + z * L(z))), s = f / (2 + f), z = s**2, for
    # 1 + f in [sqrt(1/2), sqrt(2)): z <= ((sqrt 2 - 1) / (sqrt 2 + 1))**2.
    zmax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * (1 + mp.mpf(2) ** -20)

    def l_of(z):  # (2 atanh(s) - 2 s) / (s z), a series in z: 2/3 + 2z/5 + ...
        if z < mp.mpf(10) ** -15:
            return mp.mpf(2) / 3 + 2 * z / 5 + 2 * z ** 2 / 7
        s = mp.sqrt(z)
        return (2 * mp.atanh(s) - 2 * s) / (s * z)
    coeffs, err = fit(l_of, mp.mpf(0), zmax, 7)
    print(f"# L(z), degree 7: max relative error of L {err:.2e}; s z L(z) <= 0.004 log(1+f)")
    print(f"_PM_LOG = {tuple(coeffs)!r}")

    # sin(r) = r + r**3 S(r**2) and cos(r) = 1 - r**2/2 + r**4 C(r**2) for |r| <= pi/4 (the
    # reduced argument may overshoot pi/4 by rounding: 2**-40 of margin).
    zmax = (mp.pi / 4) ** 2 * (1 + mp.mpf(2) ** -40)

    def s_of(z):  # (sin r - r) / r**3 = -1/6 + z/120 - ...
        if z < mp.mpf(10) ** -15:
            return -mp.mpf(1) / 6 + z / 120 - z ** 2 / 5040
        r = mp.sqrt(z)
        return (mp.sin(r) - r) / r ** 3

    def c_of(z):  # (cos r - 1 + r**2/2) / r**4 = 1/24 - z/720 + ...
        if z < mp.mpf(10) ** -15:
            return mp.mpf(1) / 24 - z / 720 + z ** 2 / 40320
        return (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z ** 2
    coeffs, err = fit(s_of, mp.mpf(0), zmax, 6)
    print(f"# S(z), degree 6: max relative error of S {err:.2e}; r**3 S <= 0.11 sin(r)")
    print(f"_PM_SIN = {tuple(coeffs)!r}")
    coeffs, err = fit(c_of, mp.mpf(0), zmax, 6)
    print(f"# C(z), degree 6: max relative error of C {err:.2e}; r**4 C <= 0.02 cos(r)")
    print(f"_PM_COS = {tuple(coeffs)!r}")

    # pi/2 as a double-double, and 2/pi to 1216 bits for the argument reduction's table.
    pio2 = mp.pi / 2
    print(f"_PM_PIO2_HI = {float(pio2)!r}")
    print(f"_PM_PIO2_LO = {float(pio2 - mp.mpf(float(pio2)))!r}")
    bits = int(mp.floor(2 / mp.pi * mp.mpf(2) ** 1216))
    text = f"{bits:0304x}"
    print("_PM_2OPI_BITS = 1216  # 2/pi = 0x0.<hex digits below>")
    print("_PM_2OPI_HEX = (")
    for i in range(0, len(text), 76):
        print(f'    "{text[i:i + 76]}"')
    print(")")


if __name__ == "__main__":
    main()
