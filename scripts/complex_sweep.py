"""Sweep complex elementwise functions over special values: NumPy against `tj.jit` (and the
eager/traced path) on a grid of parts (0, -0, ±1, ±inf, nan, tiny, huge), complex64 and
complex128. Prints every mismatch, grouped by function.

    PYTHONPATH=. python scripts/complex_sweep.py [--dtype complex128] [--show 5] [--eager]

Equality is NaN-aware per part; zeros must agree in sign; finite values agree to a few
ulps (`--rtol`), or are counted as inaccurate.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import time

import numpy as np

import tracejit as tj
import tracejit.numpy as tnp

UNARY = ["sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
         "arcsinh", "arccosh", "arctanh", "exp", "expm1", "exp2", "log", "log1p", "log2",
         "log10", "sqrt", "negative", "absolute", "sign", "rint", "square", "reciprocal",
         "conjugate", "isnan", "isfinite", "isinf", "real", "imag", "angle", "positive"]
BINARY = ["add", "subtract", "multiply", "divide", "power", "float_power", "maximum",
          "minimum", "fmax", "fmin", "equal", "not_equal", "less", "less_equal", "greater",
          "greater_equal"]
POWERS = [-3, -2, -1, 0, 1, 2, 3, 5, 0.5]  # concrete exponents (integer_pow and friends)


def parts(dtype):
    real = np.finfo(np.dtype(dtype).char.lower()).dtype
    fi = np.finfo(real)
    return np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, fi.tiny, -fi.tiny,
                     fi.smallest_subnormal, fi.max, -fi.max, 0.5, 2.0, 3.0], real)


def grid(dtype):
    p = parts(dtype)
    re, im = np.meshgrid(p, p, indexing="ij")
    z = np.empty(re.size, dtype)
    z.real, z.imag = re.ravel(), im.ravel()
    return z


def same(a, b, rtol, atol=0.0):
    """Elementwise (exact, close): per part, both nan, or equal with the same sign of zero;
    or finite, of one sign and within `rtol` relative or `atol` (subnormal rounding)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        ea, ca = same(np.real(a), np.real(b), rtol, atol)
        eb, cb = same(np.imag(a), np.imag(b), rtol, atol)
        # finite values also count as close within rtol of the larger modulus (a part
        # far below the modulus is rounding noise, its sign too), unless both are 0
        with np.errstate(all="ignore"):
            scale = np.maximum(np.abs(a), np.abs(b)).astype(np.float64)
            d = np.abs(a.astype(np.complex128) - b.astype(np.complex128))
        near = np.isfinite(a) & np.isfinite(b) & (scale > 0) & (d <= rtol * scale)
        return ea & eb, ((ca | ea) & (cb | eb)) | near
    if a.dtype.kind == "b" or b.dtype.kind == "b" or a.dtype.kind in "iu":
        e = a == b
        return e, e
    a, b = a.astype(np.float64), b.astype(np.float64)
    nan = np.isnan(a) & np.isnan(b)
    exact = nan | ((a == b) & (np.signbit(a) == np.signbit(b)))
    with np.errstate(all="ignore"):
        close = np.isfinite(a) & np.isfinite(b) & ((np.abs(a - b) <= rtol * np.maximum(
            np.abs(a), np.abs(b))) | (np.abs(a - b) <= atol)) & (np.signbit(a) == np.signbit(b))
    return exact, close


def _results(xp, z, a, b):
    """Every function of the sweep on the grid, through the namespace `xp` (NumPy or
    tracejit.numpy)."""
    out = {}
    for name in UNARY:
        out[name] = getattr(xp, name)(z)
    for name in BINARY:
        out[name] = getattr(xp, name)(a, b)
    for e in POWERS:
        out[f"power_{e}"] = xp.power(z, e)
    out["sort"] = xp.sort(z, kind="stable")
    out["argsort"] = xp.argsort(z, kind="stable")
    for name in ("argmax", "argmin", "max", "min"):
        out[name] = getattr(xp, name)(z)
    return out


def program(z, a, b):
    return _results(tnp, z, a, b)


def reference(z, a, b):
    with np.errstate(all="ignore"):
        return _results(np, z, a, b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="complex128,complex64")
    ap.add_argument("--show", type=int, default=6)
    ap.add_argument("--rtol", type=float, default=None)
    ap.add_argument("--eager", action="store_true", help="check the eager path too")
    ap.add_argument("--only", default=None, help="comma-separated output names")
    ap.add_argument("--skip", default="", help="comma-separated functions left out")
    args = ap.parse_args()
    for name in args.skip.split(","):
        for table in (UNARY, BINARY):
            if name in table:
                table.remove(name)
    for dtype in args.dtype.split(","):
        dtype = np.dtype(dtype)
        rtol = args.rtol or (16 * np.finfo(dtype).eps)
        atol = 2 * np.finfo(dtype).smallest_subnormal
        z = grid(dtype)
        pairs = np.array(list(itertools.product(grid(dtype)[::1], repeat=2)))
        a, b = pairs[:, 0].copy(), pairs[:, 1].copy()
        ref = reference(z, a, b)
        t0 = time.perf_counter()
        got = tj.jit(program)(z, a, b)
        print(f"== {dtype}: compiled in {time.perf_counter() - t0:.1f} s")
        runs = [("jit", got)]
        if args.eager:
            runs.append(("eager", program(z, a, b)))
        for label, res in runs:
            for name in ref:
                if args.only and name not in args.only.split(","):
                    continue
                r, g = ref[name], np.asarray(res[name])
                if np.asarray(r).dtype != g.dtype:
                    print(f"{label} {name}: dtype {g.dtype} (NumPy {np.asarray(r).dtype})")
                exact, close = same(r, g, rtol, atol)
                exact, close = np.atleast_1d(exact), np.atleast_1d(close)
                bad = ~exact & ~close
                inexact = ~exact & close
                if not bad.any() and not inexact.any():
                    continue
                ins = (z if name in UNARY or name.startswith("power_") else
                       np.stack([a, b], axis=-1) if name in BINARY else None)
                print(f"{label} {name}: {bad.sum()} wrong, {inexact.sum()} inexact "
                      f"of {bad.size}")
                shown = collections.Counter()
                for i in np.flatnonzero(bad)[:args.show]:
                    arg = "" if ins is None or np.ndim(r) == 0 else f"{ins[i]} -> "
                    print(f"    {arg}{np.atleast_1d(g)[i]} (NumPy {np.atleast_1d(r)[i]})")
                    shown[name] += 1


if __name__ == "__main__":
    main()
