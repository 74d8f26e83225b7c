"""Write docs/numpy-coverage.md: what tracejit.numpy covers of NumPy, read off the code.

    python scripts/numpy_coverage.py            # rewrite the table
    python scripts/numpy_coverage.py --check    # exit 1 if the table is out of date

Every public function of `numpy`, `numpy.linalg`, `numpy.fft` and the `scipy.special`
functions tracejit offers is looked up in tracejit. A function tracejit has is probed: the
first of a fixed list of argument sets that NumPy accepts is given to both, and the row
says whether tracejit's value agrees with NumPy's, whether `grad` of the sum of its float
outputs with respect to the first argument runs, and whether `jit` lowers it to generated
loop code. Functions left out on purpose are listed with the reason (`LEFT_OUT`); the rest
are "not supported". tests/test_numpy_coverage.py fails when the file is out of date.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "numpy-coverage.md"

# Why a NumPy function is not offered, by what it is for. Names, not patterns, so a new
# NumPy function shows up as "not supported" until someone decides.
_REASONS = {
    "files and buffers: reading and writing data happens outside traced code": [
        "load", "loadtxt", "save", "savetxt", "savez", "savez_compressed", "genfromtxt",
        "fromfile", "frombuffer", "fromregex", "fromstring", "fromiter", "from_dlpack",
        "packbits", "unpackbits", "memmap", "getbufsize", "setbufsize"],
    "printing and formatting": [
        "array2string", "array_repr", "array_str", "base_repr", "binary_repr",
        "format_float_positional", "format_float_scientific", "get_printoptions",
        "set_printoptions", "printoptions", "typename", "info", "show_config",
        "show_runtime", "get_include", "test"],
    "dates and times: no datetime64 in traced code": [
        "busday_count", "busday_offset", "is_busday", "datetime_as_string", "datetime_data",
        "isnat"],
    "floating-point error state: a process setting, not array math": [
        "geterr", "seterr", "geterrcall", "seterrcall", "errstate"],
    "dtype and type introspection: use NumPy's own on the static dtypes": [
        "can_cast", "common_type", "min_scalar_type", "mintypecode", "promote_types",
        "isdtype", "issubdtype", "iterable", "isscalar", "isfortran", "may_share_memory",
        "shares_memory", "require", "asmatrix", "bmat", "nested_iters"],
    "in-place updates: traced arrays are values (use .at[...].set)": [
        "copyto", "fill_diagonal", "place", "put", "putmask", "put_along_axis"],
    "Python callbacks per element: write the function with tracejit.numpy instead": [
        "frompyfunc", "vectorize", "apply_along_axis", "apply_over_axes"],
    "output shape depends on the values: not traceable with static shapes": [
        "argwhere", "flatnonzero", "extract", "compress", "trim_zeros", "intersect1d",
        "setdiff1d", "setxor1d", "union1d", "unique_all", "unique_counts",
        "unique_inverse", "unique_values", "roots", "histogram_bin_edges"],
}
LEFT_OUT = {name: why for why, names in _REASONS.items() for name in names}

# Result dtypes that differ from NumPy's on purpose, with the reason.
DTYPE_BY_DESIGN = {
    "eig": "complex results always: a traced dtype cannot depend on the values (as JAX, "
           "and NumPy from 2.5)",
    "eigvals": "complex results always: a traced dtype cannot depend on the values (as JAX, "
               "and NumPy from 2.5)",
}

SPECIAL = ["erf", "erfc", "erfinv", "gammaln", "digamma", "psi", "polygamma", "xlogy",
           "xlog1py", "expit", "logit", "logsumexp", "softmax", "log_softmax"]


def _probe_args():
    """Argument sets tried in order: the first NumPy accepts is the probe."""
    x = np.array([0.3, 0.7, 0.2, 0.9])
    y = np.array([0.5, 0.1, 0.8, 0.4])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    m = a @ a.T + 3 * np.eye(3)
    i = np.array([2, 0, 1, 3])
    t = rng.standard_normal((2, 2, 4))
    return [(x,), (m,), (x, y), (m, m), (x, 2), (x, 1), (m, 1), (m, 2), (x, y, x),
            ((x, y),), ([x, y],), (x, i), (x > 0.5,), (i,), (4,), (3, 3), (0.0, 1.0, 5),
            (x, x > 0.5), (x > 0.5, x, y), (m, x[:3]), (x, 0, 1), (2, x), (x, np.float32),
            (m, 0, 1), (x, (2, 2)), (t, 2), ("i,i->", x, y),
            (m, np.argsort(m, axis=1), 1), (x, [x > 0.5], [1.0, 2.0])]


def _public(module) -> list[str]:
    names = getattr(module, "__all__", None) or dir(module)
    out = []
    for n in names:
        if n.startswith("_"):
            continue
        obj = getattr(module, n, None)
        if callable(obj) and not isinstance(obj, type):
            out.append(n)
    return sorted(set(out))


def _leaves(out) -> list[np.ndarray]:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _leaves(o)]
    return [np.asarray(out)]


def _agrees(got, want) -> bool:
    g, w = _leaves(got), _leaves(want)
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            if not np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True):
                return False
        elif not np.array_equal(a, b):
            return False
    return True


def _probe(tfn, nfn) -> tuple[str, str, str, str, tuple | None]:
    """(value, grad, jit, note, probe arguments) for one function."""
    import tracejit as tj
    import tracejit.numpy as tnp
    for args in _probe_args():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                want = nfn(*args)
        except Exception:
            continue
        try:
            with np.errstate(all="ignore"):
                got = tfn(*args)
        except NotImplementedError as e:
            return "no", "", "", str(e).split(". ")[0].split(": ", 1)[-1], None
        except Exception:
            continue
        value = "yes" if _agrees(got, want) or _uninitialized(tfn, got, want) else "differs"
        notes = []
        floats = [k for k, x in enumerate(_leaves(got)) if x.dtype.kind in "fc"]
        # arrays are traced; everything else (counts, axes, shifts, dtypes) is static, as a
        # user would close over it
        traced = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)]

        def call(*arrays, args=args, traced=tuple(traced)):
            full = list(args)
            for k, a in zip(traced, arrays):
                full[k] = a
            return tfn(*full)
        arrays = [args[k] for k in traced]
        if not floats or not traced or traced[0] != 0 or args[0].dtype.kind != "f":
            grad = "—"
        else:
            def loss(*arrays, floats=tuple(floats)):
                outs = _leaves_traced(call(*arrays))
                return sum(tnp.sum(tnp.real(outs[k])) for k in floats)
            try:
                with np.errstate(all="ignore"):
                    g = tj.grad(loss)(*arrays)
                grad = "yes" if np.shape(g) == args[0].shape else "no"
            except Exception as e:
                grad, notes = "no", notes + [_why(e)]
        if not traced:
            jit = "—"  # nothing to trace: the result is a constant of the program
        else:
            try:
                tj.jit(call).lower(*arrays).source  # noqa: B018
                jit = "yes"
            except Exception as e:
                jit, notes = "no", notes + [_why(e)]
        note = "; ".join(dict.fromkeys(notes))
        return value, grad, jit, (f"on `{_show(args)}`: {note}" if note else ""), args
    return "?", "", "", "no probe argument set fits", None


def _as_kind(a, kind):
    """A float64 probe array as float32, or as complex128 with imaginary parts (Hermitian
    ones for square matrices, so positive definite probes stay positive definite)."""
    if kind == "float32":
        return a.astype(np.float32)
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        return a + 0.1j * (np.tril(np.ones_like(a), -1) - np.triu(np.ones_like(a), 1))
    return a + 0.25j * np.flip(a)


def _probe_kind(tfn, nfn, args, kind) -> tuple[str, str]:
    """(cell, note) for the probe's float64 arrays given as float32 or complex128: `yes`
    when tracejit's value agrees with NumPy's in value and dtype, `grad` (of the real parts,
    by the first argument) runs and `jit` lowers; `—` when the probe has no float array or
    NumPy refuses the dtype; else what failed first."""
    import tracejit as tj
    import tracejit.numpy as tnp
    cast = [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype == np.float64]
    if not cast:
        return "—", ""
    full = [_as_kind(a, kind) if k in cast else a for k, a in enumerate(args)]
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            want = nfn(*full)
    except Exception:
        return "—", ""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = tfn(*full)
    except Exception as e:
        return "no", f"{kind}: {_why(e)}"
    if _uninitialized(tfn, got, want):
        return "yes", ""
    g, w = _leaves(got), _leaves(want)
    if len(g) != len(w) or any(a.shape != b.shape for a, b in zip(g, w)):
        return "differs", ""
    name = getattr(tfn, "__name__", "")
    if any(a.dtype != b.dtype for a, b in zip(g, w)) and name in DTYPE_BY_DESIGN:
        return "by design", f"{kind}: {DTYPE_BY_DESIGN[name]}"
    if any(a.dtype != b.dtype for a, b in zip(g, w)):
        return "dtype", f"{kind}: {', '.join(str(a.dtype) for a in g)} where NumPy gives " \
                        f"{', '.join(str(b.dtype) for b in w)}"
    rtol, atol = (2e-5, 1e-6) if kind == "float32" else (1e-6, 1e-9)
    for a, b in zip(g, w):
        if a.dtype.kind in "fc" and not np.allclose(a, b, rtol=rtol, atol=atol,
                                                    equal_nan=True):
            return "differs", ""
        if a.dtype.kind not in "fc" and not np.array_equal(a, b):
            return "differs", ""
    traced = [k for k, a in enumerate(full) if isinstance(a, np.ndarray)]

    def call(*arrays):
        xs = list(full)
        for k, a in zip(traced, arrays):
            xs[k] = a
        return tfn(*xs)
    arrays = [full[k] for k in traced]
    floats = [k for k, x in enumerate(g) if x.dtype.kind in "fc"]
    if floats and traced[0] == 0 and 0 in cast:
        def loss(*arrays):
            outs = _leaves_traced(call(*arrays))
            return sum(tnp.sum(tnp.real(outs[k])) for k in floats)
        try:
            with np.errstate(all="ignore"):
                grad = tj.grad(loss)(*arrays)
            if np.shape(grad) != np.shape(full[0]) or np.asarray(grad).dtype != full[0].dtype:
                return "no grad", f"{kind}: the gradient is {np.asarray(grad).dtype}" \
                                  f"{list(np.shape(grad))}"
        except Exception as e:
            return "no grad", f"{kind} grad: {_why(e)}"
    try:
        tj.jit(call).lower(*arrays).source  # noqa: B018
    except Exception as e:
        return "no jit", f"{kind} jit: {_why(e)}"
    return "yes", ""


def _why(e: Exception) -> str:
    """The first sentence of an error, for the note column."""
    text = str(e).replace("|", "/").replace("\n", " ")
    text = text.split(". ")[0]
    text = text.split(" at <")[0].split(" at /")[0]
    return text[:110]


def _show(args) -> str:
    def one(a):
        if isinstance(a, np.ndarray):
            return f"{a.dtype}{list(a.shape)}"
        if isinstance(a, (tuple, list)):
            return "(" + ", ".join(one(x) for x in a) + ")"
        return getattr(a, "__name__", repr(a))
    return ", ".join(one(a) for a in args)


def _uninitialized(tfn, got, want) -> bool:
    """`empty` and `empty_like` promise only a shape and a dtype."""
    if getattr(tfn, "__name__", "") not in ("empty", "empty_like"):
        return False
    g, w = np.asarray(got), np.asarray(want)
    return g.shape == w.shape and g.dtype == w.dtype


def _leaves_traced(out) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _leaves_traced(o)]
    return [out]


def _section(title: str, nmod, tmod, names, prefix: str) -> list[str]:
    lines = [f"## {title}", "", "| function | value | grad | jit | float32 | complex | note |",
             "| --- | :---: | :---: | :---: | :---: | :---: | --- |"]
    counts = {"supported": 0, "not supported": 0, "left out": 0}
    for n in names:
        nfn = getattr(nmod, n, None)
        tfn = getattr(tmod, n, None) if tmod is not None else None
        if n in LEFT_OUT and tfn is None:
            lines.append(f"| `{prefix}{n}` | left out | | | | | {LEFT_OUT[n]} |")
            counts["left out"] += 1
        elif tfn is None or nfn is None:
            lines.append(f"| `{prefix}{n}` | no | | | | | not supported |")
            counts["not supported"] += 1
        else:
            value, grad, jit, note, args = _probe(tfn, nfn)
            counts["supported" if value not in ("no", "?") else "not supported"] += 1
            kinds = [_probe_kind(tfn, nfn, args, k) if args is not None else ("", "")
                     for k in ("float32", "complex")]
            note = "; ".join(x for x in [note] + [k[1] for k in kinds] if x)
            lines.append(f"| `{prefix}{n}` | {value} | {grad} | {jit} | {kinds[0][0]} | "
                         f"{kinds[1][0]} | {note} |")
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    return lines[:2] + [f"{len(names)} functions: {summary}.", ""] + lines[2:] + [""]


def versions_line() -> str:
    """The NumPy and SciPy the table was written against: their public functions are the
    rows, so another version gives another table."""
    import scipy
    return f"Written against NumPy {np.__version__} and SciPy {scipy.__version__}."


def render() -> str:
    import scipy.special as ss

    import tracejit.numpy as tnp
    import tracejit.scipy.special as tss
    tfft = getattr(tnp, "fft", None)
    out = ["# NumPy coverage", "",
           "Written by `python scripts/numpy_coverage.py` from the code; "
           "tests/test_numpy_coverage.py fails when it is out of date. Do not edit by hand.",
           "", versions_line(), "",
           "Each function tracejit has is probed with the first of a fixed list of argument "
           "sets that NumPy accepts (`_probe_args` in the script). **value**: tracejit's "
           "result on the probe agrees with NumPy's (`differs`: it does not, a bug); **grad**: "
           "`tracejit.grad` of the sum of its float outputs (real parts of complex ones) with "
           "respect to the first argument runs (— when there is no float output or first "
           "argument to differentiate); **jit**: `tracejit.jit` lowers it to generated loop code. "
           "**float32**, **complex**: the probe's float64 arrays as float32, or as complex128 "
           "with imaginary parts: `yes` when the value agrees with NumPy's in value and dtype, "
           "grad runs and jit lowers (— where the probe has no float array or NumPy refuses "
           "the dtype; else `dtype`, `differs`, `no grad`, `no jit` or `no`, with the reason "
           "in the note). "
           "Derivatives and compiled values are checked against finite differences and "
           "NumPy in the test suite, not here.", ""]
    out += _section("numpy", np, tnp, [n for n in _public(np) if n not in ("linalg", "fft")],
                    "np.")
    out += _section("numpy.linalg", np.linalg, tnp.linalg, _public(np.linalg), "np.linalg.")
    out += _section("numpy.fft", np.fft, tfft, _public(np.fft), "np.fft.")
    special = sorted(set(SPECIAL) | set(tss.__all__))
    out += _section("scipy.special (the functions tracejit offers or was asked for)", ss, tss,
                    special, "scipy.special.")
    return "\n".join(out).rstrip() + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the table is stale")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not TABLE.exists() or TABLE.read_text() != text:
            print(f"{TABLE} is out of date: run python scripts/numpy_coverage.py")
            return 1
        return 0
    TABLE.write_text(text)
    print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
