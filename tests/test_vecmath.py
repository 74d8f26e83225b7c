"""The vector math layer: generated loops that call libmvec agree with NumPy.

The code generator does not call `tracejit.compiler.vecmath` yet, so these tests write their
own generated-style modules (the layer's preamble plus its call spellings), import them from
a temporary directory and compare with NumPy. Compiles are batched (one kernel per dtype with
one loop per function) to keep the file fast.

Run as a script, this file also holds the measurements quoted in docs/vector-math.md:
`python tests/test_vecmath.py accuracy | bench | prange`.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tracejit.compiler import vecmath as vm

HERE = vm.target()
VECTOR = bool(HERE.variants)
needs_libmvec = pytest.mark.skipif(not VECTOR, reason=f"no vector math here: {HERE.reason}")
FNS = vm.FUNCTIONS
ARITY = {fn: vm._TABLE[fn][1] for fn in FNS}
DTYPES = {64: np.float64, 32: np.float32}

NUMPY = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "exp2": np.exp2,
         "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
         "log1p": np.log1p, "pow": np.power, "tanh": np.tanh, "sinh": np.sinh,
         "cosh": np.cosh, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
         "atan2": np.arctan2, "asinh": np.arcsinh, "acosh": np.arccosh,
         "atanh": np.arctanh, "cbrt": np.cbrt, "hypot": np.hypot,
         "erf": np.vectorize(math.erf, otypes=[np.float64])}  # NumPy has no erf ufunc


def numpy_ref(fn: str, bits: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What NumPy gives for `fn` on these `bits`-bit inputs."""
    dt = DTYPES[bits]
    with np.errstate(all="ignore"):
        args = (x.astype(dt), y.astype(dt))[:ARITY[fn]]
        return NUMPY[fn](*args).astype(dt)


# -- inputs -----------------------------------------------------------------------------------
# Per function, components sampled equally: ("u", lo, hi) uniform; ("lu", lo, hi) magnitude
# 10**uniform(lo, hi) with a random sign; ("lu+", ...) the same, positive. (float64, float32).
_U = {
    "trig": ([("u", -50, 50), ("lu", -300, 300)], [("u", -50, 50), ("lu", -37, 38)]),
    "exp": ([("u", -745.2, 709.8)], [("u", -104, 88.8)]),
    "exp2": ([("u", -1075, 1024.5)], [("u", -150, 128.5)]),
    "expm1": ([("u", -40, 709.7), ("lu", -300, 0)], [("u", -20, 88.7), ("lu", -37, 0)]),
    "log": ([("lu+", -323.5, 308.2), ("u", 0.5, 2)], [("lu+", -44.8, 38.5), ("u", 0.5, 2)]),
    "log1p": ([("u", -1, 1), ("lu+", -300, 300)], [("u", -1, 1), ("lu+", -37, 38)]),
    "pow": ([("lu+", -10, 10)], [("lu+", -4, 4)]),
    "pow_y": ([("u", -30, 30)], [("u", -9, 9)]),
    "tanh": ([("u", -20, 20), ("lu", -300, 3)], [("u", -10, 10), ("lu", -37, 2)]),
    "hyp": ([("u", -710.5, 710.5), ("lu", -300, 0)], [("u", -89.5, 89.5), ("lu", -37, 0)]),
    "unit": ([("u", -1, 1), ("lu", -300, 0)], [("u", -1, 1), ("lu", -37, 0)]),
    "wide": ([("lu", -300, 300), ("u", -10, 10)], [("lu", -37, 38), ("u", -10, 10)]),
    "acosh": ([("u", 1, 10), ("lu+", 0, 300)], [("u", 1, 10), ("lu+", 0, 38)]),
    "cbrt": ([("lu", -323.5, 308)], [("lu", -44.8, 38)]),
    "pair": ([("lu", -150, 150)], [("lu", -18, 18)]),
    "hypot": ([("lu", -300, 300)], [("lu", -37, 37)]),
    "erf": ([("u", -6, 6), ("lu", -300, 0)], [("u", -4, 4), ("lu", -37, 0)]),
}
RANGES = {"sin": "trig", "cos": "trig", "tan": "trig", "exp": "exp", "exp2": "exp2",
          "expm1": "expm1", "log": "log", "log2": "log", "log10": "log", "log1p": "log1p",
          "pow": "pow", "tanh": "tanh", "sinh": "hyp", "cosh": "hyp", "asin": "unit",
          "acos": "unit", "atan": "wide", "atan2": "pair", "asinh": "wide", "acosh": "acosh",
          "atanh": "unit", "cbrt": "cbrt", "hypot": "hypot", "erf": "erf"}
SECOND = {"pow": "pow_y", "atan2": "pair", "hypot": "hypot"}


def _sample(parts, bits: int, n: int, rng) -> np.ndarray:
    chunks = []
    for j, (kind, lo, hi) in enumerate(parts):
        m = n // len(parts) + (j < n % len(parts))
        if kind == "u":
            chunks.append(rng.uniform(lo, hi, m))
        else:
            mag = 10.0 ** rng.uniform(lo, hi, m)
            chunks.append(mag if kind == "lu+" else mag * rng.choice([-1.0, 1.0], m))
    with np.errstate(over="ignore"):
        return rng.permutation(np.concatenate(chunks)).astype(DTYPES[bits])


def inputs(fn: str, bits: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """`n` wide-range inputs (x, y) for `fn`; y is ones for unary functions."""
    k = 0 if bits == 64 else 1
    x = _sample(_U[RANGES[fn]][k], bits, n, rng)
    y = _sample(_U[SECOND[fn]][k], bits, n, rng) if fn in SECOND else np.ones(n, DTYPES[bits])
    return x, y


def specials(bits: int) -> np.ndarray:
    """Zeros, infinities, nan, denormals, range edges and exp's overflow/underflow edges."""
    fi = np.finfo(DTYPES[bits])
    v = [0.0, np.inf, np.nan, float(fi.smallest_subnormal), float(fi.tiny), float(fi.tiny) / 3,
         float(fi.max), 1.0, 0.5, 2.0, 3.0, 8.0, 27.0, 10.0, 0.9999999, 1.0000001, 1e-20, 1e20]
    if bits == 64:
        v += [709.78, 709.79, 745.13, 745.2, 710.4, 710.5, 1023.9, 1024.0, 1074.0, 1075.0,
              1e300, 1e-300]
    else:
        v += [88.72, 88.73, 103.97, 104.0, 87.3, 89.4, 89.5, 127.9, 128.0, 149.0, 150.0,
              1e30, 1e-30]
    v = np.array(v, DTYPES[bits])
    return np.concatenate([v, -v])


def ulp_error(got: np.ndarray, ref: np.ndarray, bits: int) -> np.ndarray:
    """|got - ref| in units of the last place of `ref` in the `bits`-bit type (0 where both
    are the same value, inf where one is non-finite and the other is not)."""
    dt = DTYPES[bits]
    with np.errstate(all="ignore"):
        near = ref.astype(dt)  # a reference beyond the type's range counts as its inf
        g = got.astype(np.longdouble)
        r = np.where(np.isfinite(near), ref.astype(np.longdouble), near)
        unit = np.spacing(np.abs(near)).astype(np.longdouble)
        err = np.abs(g - r) / unit
    same = (g == r) | (np.isnan(g) & np.isnan(r))
    err[same] = 0
    err[~same & ~(np.isfinite(g) & np.isfinite(r))] = np.inf
    return err.astype(np.float64)


def same_value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: equal including the sign of zero, or both nan."""
    return ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))


# -- generated-style modules ------------------------------------------------------------------

def module_source(fns, platform: vm.Platform | None = None, cache: bool = False,
                  w1: bool = False, parallel: bool = False, fastmath: bool = False) -> str:
    """A module in the code generator's style: kernel_f64 / kernel_f32 (X, Y, OUT) run
    one loop per function of `fns`, reading row k of X (and Y) and writing row k of OUT;
    `w1` adds the W1 gradient loop w1_f64 / w1_f32 (x, g)."""
    r = vm.MathRenderer(platform)
    body: list[str] = []
    rng_ = "numba.prange" if parallel else "range"
    deco = (f"@numba.njit(cache={cache}, error_model='numpy', fastmath={fastmath}"
            + (", parallel=True)" if parallel else ")"))
    for bits in (64, 32):
        d = f"f{bits}"
        body += ["", "", deco, f"def kernel_{d}(X, Y, OUT):", "    n = X.shape[1]"]
        for k, fn in enumerate(fns):
            args = [f"X[{k}, i]", f"Y[{k}, i]"][:ARITY[fn]]
            body += [f"    for i in {rng_}(n):  # {fn}",
                     f"        OUT[{k}, i] = {r.call(fn, d, args)}"]
        if w1:
            c = repr if bits == 64 else (lambda v: f"np.float32({v!r})")
            body += ["", "", deco, f"def w1_{d}(x, g):",
                     "    # g = (1 - tanh(x)^2) sin(x) + tanh(x) cos(x) - x exp(-x^2 / 2)",
                     f"    for i in {rng_}(x.shape[0]):",
                     "        xi = x[i]",
                     f"        t = {r.call('tanh', d, ['xi'])}",
                     f"        g[i] = (({c(1.0)} - t * t) * {r.call('sin', d, ['xi'])}"
                     f" + t * {r.call('cos', d, ['xi'])}",
                     f"                - xi * {r.call('exp', d, [f'-xi * xi / {c(2.0)}'])})"]
    head = ['"""Generated-style test module."""', "", "import math", "", "import numba",
            "import numpy as np", ""]
    pre = r.preamble()
    return "\n".join(head + ([pre] if pre else []) + body) + "\n"


def write_module(directory: Path, name: str, source: str):
    """Write `source` as directory/name.py and import it (as the jit's module cache does)."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # Numba's cache records the module by name
    spec.loader.exec_module(mod)
    return mod


def run_kernel(mod, fns, bits: int, xs: dict, ys: dict) -> dict:
    """Apply kernel_f<bits> to per-function inputs (equal lengths); results per function."""
    dt = DTYPES[bits]
    X = np.stack([xs[fn] for fn in fns]).astype(dt)
    Y = np.stack([ys[fn] for fn in fns]).astype(dt)
    out = np.empty_like(X)
    getattr(mod, f"kernel_f{bits}")(X, Y, out)
    return dict(zip(fns, out))


def vector_symbols(dispatcher) -> set[str]:
    """The libmvec vector functions the compiled machine code calls."""
    asm = "".join(dispatcher.inspect_asm(sig) for sig in dispatcher.signatures)
    return set(re.findall(r"\b_ZGV[bcde]N\d+v+_\w+", asm))


def pad64(a: np.ndarray) -> np.ndarray:
    """Repeat `a` up to a multiple of 64 elements: every element then lies in the vector
    body of the loop, not in its scalar remainder."""
    return np.resize(a, -(-len(a) // 64) * 64)


# -- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vector_module(tmp_path_factory):
    """All functions, both dtypes, plus W1, compiled once with the detected platform (on
    disk with Numba's cache, so another process can load the machine code)."""
    if not VECTOR:
        pytest.skip(f"no vector math here: {HERE.reason}")
    d = tmp_path_factory.mktemp("vecmath")
    mod = write_module(d, "tj_vecmath_all", module_source(FNS, cache=True, w1=True))
    mod.directory = d
    return mod


# -- detection and spelling -------------------------------------------------------------------

def test_mode_matches_the_cpu():
    from tracejit.compiler.vecmath import target_features
    feats = target_features()
    if not VECTOR:
        assert vm.mode() in ("scalar", "portable") and HERE.reason
        return
    assert HERE.isas[0] == "b"
    assert ("d" in HERE.isas) == ("avx2" in feats)
    assert ("e" in HERE.isas) == ("avx512f" in feats)
    assert vm.mode() == {"b": "libmvec-sse4", "d": "libmvec-avx2", "e": "libmvec-avx512"}[
        HERE.isas[-1]]
    offered = {s for syms in HERE.variants.values() for s in syms}
    assert all(s[4] in HERE.isas for s in offered)
    assert vm.describe().startswith("glibc libmvec")


@needs_libmvec
def test_variants_follow_cpu_features():
    sse = vm.detect(features=set())
    avx2 = vm.detect(features={"avx2"})
    avx512 = vm.detect(features={"avx2", "avx512f"})
    assert (sse.mode, avx2.mode, avx512.mode) == \
        ("libmvec-sse4", "libmvec-avx2", "libmvec-avx512")
    assert sse.symbols("sin", "f64") == ("_ZGVbN2v_sin",)
    assert avx2.symbols("sin", np.float32) == ("_ZGVbN4v_sinf", "_ZGVdN8v_sinf")
    assert avx512.symbols("pow", np.float64)[-1] == "_ZGVeN8vv_pow"
    # The variants named are the cache key: each ISA set gives different module source.
    used = [("sin", "f64"), ("tanh", "f32")]
    texts = {vm.preamble(used, p) for p in (sse, avx2, avx512)}
    assert len(texts) == 3 and vm.preamble(used, vm.SCALAR) == ""


def test_scalar_forced_by_environment():
    p = vm.detect(environ={"TRACEJIT_VECTOR_MATH": "0"})
    assert p.mode == "scalar" and "TRACEJIT_VECTOR_MATH" in p.reason
    assert vm.call("sin", "f64", ["x"], p) == "math.sin(x)"
    assert vm.call("exp2", "f32", ["x"], p) == "math.pow(np.float32(2.0), x)"  # stays f32
    assert vm.call("pow", np.float64, ["a", "b"], p) == "(a ** b)"
    assert vm.preamble([("sin", "f64")], p) == ""
    assert vm.describe(p).startswith("scalar libm calls")


@needs_libmvec
def test_call_spelling():
    assert vm.call("sin", np.float64, ["x[i]"]) == "vm_sin_f64(x[i])"
    assert vm.call("arctan2", "f64", ["a", "b"]) == "vm_atan2_f64(a, b)"
    assert vm.intrinsic_name("arcsinh", np.float32) == "vm_asinh_f32"
    # Variants not used although libmvec has them: the scalar spelling of the table.
    assert vm.call("log10", "f64", ["x"]) == "math.log10(x)"
    assert vm.call("cbrt", "f32", ["x"]) == "np.cbrt(x)"
    assert vm.call("atan2", "f32", ["a", "b"]) == "math.atan2(a, b)"
    r = vm.MathRenderer()
    r.call("sin", "f64", ["x"])
    r.call("cbrt", "f64", ["x"])
    assert r.preamble() == vm.preamble([("sin", "f64")])
    assert "vm_sin_f64 = _vm(" in r.preamble() and "vm_cbrt" not in r.preamble()


def test_call_errors():
    assert vm.covers("arcsin") and vm.covers("tanh") and not vm.covers("sqrt")
    with pytest.raises(KeyError):
        vm.call("sqrt", "f64", ["x"])
    with pytest.raises(TypeError):
        vm.call("pow", "f64", ["x"])
    assert vm.call("sin", np.float16, ["x"]) == "math.sin(x)"  # only f64/f32 have variants
    with pytest.raises(TypeError):
        vm.intrinsic_name("sin", np.int64)


@needs_libmvec
def test_generated_module_imports_only_its_runtime():
    src = module_source(FNS)
    tops = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            tops.add(node.module.split(".")[0])
    assert tops == {"math", "numba", "numpy", "llvmlite"}
    assert "tracejit" not in src


# -- compiled loops ---------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [64, 32])
def test_vector_calls_in_machine_code(vector_module, bits):
    rng = np.random.default_rng(1)
    xs, ys = zip(*(inputs(fn, bits, 256, rng) for fn in FNS))
    run_kernel(vector_module, FNS, bits, dict(zip(FNS, xs)), dict(zip(FNS, ys)))
    called = vector_symbols(getattr(vector_module, f"kernel_f{bits}"))
    for fn in FNS:
        syms = HERE.symbols(fn, bits)
        assert not syms or called & set(syms), f"{fn} f{bits}: no vector call in the loop"
    assert all(s[4] in HERE.isas for s in called)  # nothing this CPU cannot run


@pytest.mark.parametrize("bits", [64, 32])
def test_agrees_with_numpy_within_4_ulp(vector_module, bits):
    """float64 against NumPy; float32 against NumPy's float64 result (NumPy's own float32
    log is up to 2.7 ulp off, which would eat most of the budget)."""
    rng = np.random.default_rng(bits)
    n = 4096
    xs, ys = {}, {}
    for fn in FNS:
        xs[fn], ys[fn] = inputs(fn, bits, n, rng)
    got = run_kernel(vector_module, FNS, bits, xs, ys)
    worst = {}
    for fn in FNS:
        ref = numpy_ref(fn, 64, xs[fn], ys[fn])
        worst[fn] = ulp_error(got[fn], ref, bits).max()
    bad = {fn: e for fn, e in worst.items() if not e <= 4}
    assert not bad, f"more than 4 ulp from NumPy (f{bits}): {bad}"


@pytest.mark.parametrize("bits", [64, 32])
def test_special_values(vector_module, bits):
    """On ±0, ±inf, nan and where NumPy's result is 0, ±inf or nan: the same value, sign
    included. Elsewhere on the specials (denormals, range edges): within 4 ulp."""
    s = specials(bits)
    gx, gy = (g.ravel() for g in np.meshgrid(s, s))
    xs, ys = {}, {}
    for fn in FNS:
        x, y = (gx, gy) if ARITY[fn] == 2 else (s, np.ones_like(s))
        xs[fn], ys[fn] = x, y
    n = max(len(pad64(v)) for v in xs.values())
    xs = {fn: np.resize(v, n) for fn, v in xs.items()}
    ys = {fn: np.resize(v, n) for fn, v in ys.items()}
    got = run_kernel(vector_module, FNS, bits, xs, ys)
    for fn in FNS:
        x, y, g = xs[fn], ys[fn], got[fn]
        ref = numpy_ref(fn, bits, x, y)
        exact = ~np.isfinite(x) | (x == 0) | ~np.isfinite(ref) | (ref == 0)
        if ARITY[fn] == 2:
            exact |= ~np.isfinite(y) | (y == 0)
        wrong = exact & ~same_value(g, ref)
        assert not wrong.any(), (fn, bits, [(x[i], y[i], g[i], ref[i])
                                            for i in np.nonzero(wrong)[0][:5]])
        err = ulp_error(g, ref, bits)
        far = ~exact & ((err > 4) | (np.signbit(g) != np.signbit(ref)))
        assert not far.any(), (fn, bits, [(x[i], y[i], g[i], ref[i])
                                          for i in np.nonzero(far)[0][:5]])


@pytest.mark.parametrize("bits", [64, 32])
def test_integer_valued_results_exact(vector_module, bits):
    """Results NumPy gives exactly stay exact: exp2 of integers, pow with integer results,
    hypot of Pythagorean triples, log2 of powers of two, log10 of powers of ten, atan2 on
    axes and diagonals, cbrt of (negative) cubes."""
    dt = DTYPES[bits]
    lo, hi = (-1074, 1023) if bits == 64 else (-149, 127)
    b, e = (g.ravel().astype(float) for g in np.meshgrid(np.arange(-20, 21), np.arange(0, 40)))
    b, e = b[np.abs(b) ** e < 2.0 ** (53 if bits == 64 else 24)], \
        e[np.abs(b) ** e < 2.0 ** (53 if bits == 64 else 24)]
    a, c = (g.ravel() for g in np.meshgrid(np.arange(1, 120.), np.arange(1, 120.)))
    triple = np.hypot(a, c) == np.round(np.hypot(a, c))
    q = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, np.inf, -np.inf])
    qy, qx = (g.ravel() for g in np.meshgrid(q, q))
    k = np.arange(-200.0, 201.0)
    ten = 10.0 ** np.arange(0, 23 if bits == 64 else 11)
    cases = {
        "exp2": (np.arange(lo, hi + 1.0), None),
        "pow": (np.concatenate([b, np.full(200, 2.0), np.arange(0.0, 400.0) ** 2]),
                np.concatenate([e, np.arange(-100.0, 100.0), np.full(400, 0.5)])),
        "hypot": (np.concatenate([a[triple], -a[triple], k]),
                  np.concatenate([c[triple], c[triple], np.zeros_like(k)])),
        "log2": (2.0 ** np.arange(lo, hi + 1.0), None),
        "log10": (np.concatenate([ten, 1.0 / ten[:1]]), None),
        "atan2": (qy, qx),
        "cbrt": (k ** 3, None),
        "exp": (np.array([0.0, -0.0]), None),
        "log": (np.array([1.0]), None),
    }
    exact = {"exp2": np.ldexp(1.0, np.arange(lo, hi + 1)), "log2": np.arange(lo, hi + 1.0),
             "log10": np.concatenate([np.arange(len(ten), dtype=float), [0.0]]),
             "atan2": np.arctan2(qy, qx)}  # multiples of pi/4, correctly rounded to float32
    if bits == 32:
        # float64 cbrt is glibc's on every path (vecmath._SCALAR_ONLY), exact on 61% of
        # cubes; NumPy's depends on the CPU it dispatches for. Its float32 cbrt is exact.
        exact["cbrt"] = k
    else:
        cases["cbrt"] = (np.array([v for v in k ** 3 if math.cbrt(v) == round(math.cbrt(v))]),
                         None)
        exact["cbrt"] = np.cbrt(cases["cbrt"][0]).round()
    fns = list(cases)
    n = max(len(pad64(v)) for v, _ in cases.values())
    xs = {fn: np.resize(np.asarray(v, dt), n) for fn, (v, _) in cases.items()}
    ys = {fn: np.resize(np.asarray(np.ones(1) if w is None else w, dt), n)
          for fn, (_, w) in cases.items()}
    allx = {fn: xs.get(fn, np.ones(n, dt)) for fn in FNS}
    ally = {fn: ys.get(fn, np.ones(n, dt)) for fn in FNS}
    got = run_kernel(vector_module, FNS, bits, allx, ally)
    for fn in fns:
        ref = numpy_ref(fn, bits, xs[fn], ys[fn])
        # NumPy's own SIMD loops are not always exact here (its float32 exp2(127) on AVX-512
        # hosts is 2**127 + 1 ulp): the true value is also right.
        wrong = ~same_value(got[fn], ref)
        if fn in exact:
            wrong &= ~same_value(got[fn], np.resize(np.asarray(exact[fn], dt), n))
        assert not wrong.any(), (fn, bits, [(xs[fn][i], ys[fn][i], got[fn][i], ref[i])
                                            for i in np.nonzero(wrong)[0][:5]])


@pytest.mark.parametrize("bits", [64, 32])
def test_w1_loop_vectorizes(vector_module, bits):
    """The fused gradient loop (four transcendentals and arithmetic) calls vector variants
    and matches NumPy to rounding."""
    dt = DTYPES[bits]
    x = np.linspace(-4, 4, 4099, dtype=dt)
    g = np.empty_like(x)
    f = getattr(vector_module, f"w1_f{bits}")
    f(x, g)
    t = np.tanh(x)
    ref = (1 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-x * x / 2)
    np.testing.assert_allclose(g, ref, rtol=0, atol=8 * np.finfo(dt).eps)
    called = vector_symbols(f)
    for fn in ("sin", "cos", "tanh", "exp"):
        assert called & set(HERE.symbols(fn, bits)), fn


def test_scalar_fallback_compiles_to_libm_calls(tmp_path):
    fns = ["sin", "tanh", "pow", "atan2"]
    src = module_source(fns, platform=vm.SCALAR)
    assert "vm_" not in src and "libmvec" not in src and "math.sin(X[0, i])" in src
    mod = write_module(tmp_path, "tj_vecmath_scalar", src)
    rng = np.random.default_rng(3)
    for bits in (64, 32):
        xs, ys = {}, {}
        for fn in fns:
            xs[fn], ys[fn] = inputs(fn, bits, 512, rng)
        got = run_kernel(mod, fns, bits, xs, ys)
        for fn in fns:
            err = ulp_error(got[fn], numpy_ref(fn, bits, xs[fn], ys[fn]), bits)
            assert err.max() <= 4, (fn, bits, err.max())
        assert not vector_symbols(getattr(mod, f"kernel_f{bits}"))


@needs_libmvec
def test_fastmath_keeps_vector_calls(tmp_path):
    """Numba's fastmath flags on a log() call would let LLVM turn it into llvm.log, which
    has no vector variants; the intrinsics keep their calls flag-free."""
    fns = ["log", "log2", "exp"]
    mod = write_module(tmp_path, "tj_vecmath_fast", module_source(fns, fastmath=True))
    rng = np.random.default_rng(7)
    for bits in (64, 32):
        xs, ys = {}, {}
        for fn in fns:
            xs[fn], ys[fn] = inputs(fn, bits, 512, rng)
        got = run_kernel(mod, fns, bits, xs, ys)
        called = vector_symbols(getattr(mod, f"kernel_f{bits}"))
        for fn in fns:
            assert called & set(HERE.symbols(fn, bits)), (fn, bits)
            assert ulp_error(got[fn], numpy_ref(fn, 64, xs[fn], ys[fn]), bits).max() <= 4


_CACHED = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import tj_vecmath_all as m
X, Y, want = (np.load(f"{sys.argv[1]}/{k}.npy") for k in ("X", "Y", "want"))
out = np.empty_like(X)
m.kernel_f64(X, Y, out)
hits = sum(m.kernel_f64.stats.cache_hits.values())
same = bool(((out == want) | (np.isnan(out) & np.isnan(want))).all())
print(hits, same)
"""


def test_cached_machine_code_loads_in_a_new_process(vector_module):
    """A new process that imports the module runs the machine code from Numba's disk cache
    (the preamble loads libmvec before that code is linked) with identical results."""
    rng = np.random.default_rng(5)
    xs, ys = zip(*(inputs(fn, 64, 64, rng) for fn in FNS))
    X, Y = np.stack(xs), np.stack(ys)
    want = np.empty_like(X)
    vector_module.kernel_f64(X, Y, want)
    d = vector_module.directory
    for k, v in (("X", X), ("Y", Y), ("want", want)):
        np.save(d / f"{k}.npy", v)
    proc = subprocess.run([sys.executable, "-c", _CACHED, str(d)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    hits, same = proc.stdout.split()
    assert int(hits) >= 1 and same == "True", proc.stdout


_OTHER_CPU = """
import re, sys, numpy as np
sys.path.insert(0, sys.argv[1])
import tj_vecmath_small as m
x = np.linspace(-3, 3, 1000)
out = np.empty((1, 1000))
m.kernel_f64(x[None], x[None], out)
asm = m.kernel_f64.inspect_asm(m.kernel_f64.signatures[0])
print(" ".join(sorted(set(re.findall(r"_ZGV[bcde]N[0-9]+v+_[a-z0-9]+", asm)))))
print(float(np.abs(out[0] - np.sin(x)).max()))
"""


@pytest.mark.skipif("d" not in HERE.isas, reason="needs a CPU with AVX2")
def test_module_degrades_on_a_cpu_without_its_isa(tmp_path):
    """A module written for AVX2 that runs where Numba targets no AVX2 (here simulated with
    NUMBA_CPU_FEATURES) uses only the SSE variants: never an illegal instruction."""
    (tmp_path / "tj_vecmath_small.py").write_text(module_source(["sin"]))
    from numba.core import codegen
    feats = ",".join("-" + f[1:] if f.startswith("+avx") else f
                     for f in codegen.get_host_cpu_features().split(","))
    env = dict(os.environ, NUMBA_CPU_FEATURES=feats)
    proc = subprocess.run([sys.executable, "-c", _OTHER_CPU, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    syms, err = proc.stdout.splitlines()
    assert "_ZGVdN4v_sin" in (tmp_path / "tj_vecmath_small.py").read_text()
    assert syms == "_ZGVbN2v_sin" and float(err) < 1e-15


# -- measurements (run on purpose: python tests/test_vecmath.py accuracy|bench|prange) -----

def _reference(fn: str, bits: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Higher-precision result: long double for float64 (mpmath for erf), float64 for
    float32."""
    if bits == 32:
        return numpy_ref(fn, 64, x, y)
    if fn == "erf":
        import mpmath
        mpmath.mp.prec = 80
        return np.array([np.longdouble(str(mpmath.erf(mpmath.mpf(float(v))))) for v in x])
    with np.errstate(all="ignore"):
        args = (x.astype(np.longdouble), y.astype(np.longdouble))[:ARITY[fn]]
        return NUMPY[fn](*args)


def measure_accuracy(n: int = 1 << 20) -> None:
    """Max ulp error of libmvec (every variant, including those we leave unused) and of
    scalar libm, per function and dtype, over `n` wide-range inputs."""
    import tempfile
    every = vm.Platform("libmvec-all", HERE.isas, {
        (fn, bits): tuple(vm._vector_symbol(fn, bits, isa, lanes)
                          for isa, _, lanes in vm._ISAS if isa in HERE.isas)
        for fn in FNS for bits in (64, 32)})
    d = Path(tempfile.mkdtemp())
    vec = write_module(d, "acc_vec", module_source(FNS, every))
    sca = write_module(d, "acc_scalar", module_source(FNS, vm.SCALAR))
    print(f"mode {vm.mode()}; {n} inputs per function and dtype; max ulp error")
    print("| function | range (float64) | f64 libmvec | f64 libm | range (float32) "
          "| f32 libmvec | f32 libm |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = {fn: [] for fn in FNS}
    for bits in (64, 32):
        rng = np.random.default_rng(bits)
        xs, ys = {}, {}
        for fn in FNS:
            m = min(n, 1 << 16) if (fn == "erf" and bits == 64) else n
            xs[fn], ys[fn] = inputs(fn, bits, m, rng)
        for fn in FNS:  # one function at a time: inputs differ in length
            one = {k: (xs[fn] if k == fn else np.ones_like(xs[fn])) for k in FNS}
            two = {k: (ys[fn] if k == fn else np.ones_like(xs[fn])) for k in FNS}
            ref = _reference(fn, bits, xs[fn], ys[fn])
            for mod in (vec, sca):
                got = run_kernel(mod, FNS, bits, one, two)[fn]
                fin = np.isfinite(ref.astype(DTYPES[bits]))
                err = ulp_error(got[fin], ref[fin], bits)
                rows[fn].append(f"{err.max():.2f}")
            k = 0 if bits == 64 else 1
            parts = _U[RANGES[fn]][k] + (_U[SECOND[fn]][k] if fn in SECOND else [])
            rows[fn].insert(len(rows[fn]) - 2, "; ".join(f"{t} [{lo}, {hi}]"
                                                        for t, lo, hi in parts))
    for fn in FNS:
        mark = "".join("*" if (fn, b) in vm._SCALAR_ONLY else "" for b in (64, 32))
        print(f"| {fn}{' (' + mark + ')' if mark else ''} | " + " | ".join(rows[fn]) + " |")


def _timed(fs: dict, *args, repeat: int) -> dict:
    """Median and min seconds per function; runs alternate between the functions so that
    load from other processes hits them alike."""
    ts: dict = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            t = time.perf_counter()
            f(*args)
            ts[k].append(time.perf_counter() - t)
    return {k: (statistics.median(v), min(v)) for k, v in ts.items()}


def measure_w1(parallel: bool = False) -> None:
    """W1 gradient loop, scalar libm vs vector math, in one process: compile time and the
    median / min of 11 (n = 1e6) or 5 (n = 1e7) alternating runs, float64 and float32."""
    import tempfile
    d = Path(tempfile.mkdtemp())
    warm = write_module(d, "w1_warm", module_source(["sin"], vm.SCALAR))  # Numba's first
    warm.kernel_f64(np.ones((1, 8)), np.ones((1, 8)), np.empty((1, 8)))  # compile is slow
    mods = {}
    print(f"mode {vm.mode()}; parallel={parallel}; loadavg {os.getloadavg()[0]:.2f}")
    for label, plat in (("scalar", vm.SCALAR), ("vector", None)):
        t = time.perf_counter()
        mods[label] = write_module(d, f"w1_{label}", module_source([], plat, w1=True,
                                                                   parallel=parallel))
        imp = time.perf_counter() - t
        for bits in (64, 32):
            x = np.linspace(-4, 4, 1000, dtype=DTYPES[bits])
            f = getattr(mods[label], f"w1_f{bits}")
            t = time.perf_counter()
            f(x, np.empty_like(x))
            print(f"{label} f{bits}: module import {imp * 1e3:.1f} ms, compile "
                  f"{time.perf_counter() - t:.2f} s, calls {sorted(vector_symbols(f))}")
    print("| n | dtype | scalar libm median / min ms | vector median / min ms | speedup "
          "(medians) |")
    print("| --- | --- | --- | --- | --- |")
    for n in (10**6, 10**7):
        for bits in (64, 32):
            x = np.linspace(-4, 4, n, dtype=DTYPES[bits])
            g = np.empty_like(x)
            res = _timed({label: getattr(m, f"w1_f{bits}") for label, m in mods.items()},
                         x, g, repeat=11 if n == 10**6 else 5)
            (s, smin), (v, vmin) = res["scalar"], res["vector"]
            print(f"| 1e{len(str(n)) - 1} | f{bits} | {s * 1e3:.1f} / {smin * 1e3:.1f} | "
                  f"{v * 1e3:.2f} / {vmin * 1e3:.2f} | {s / v:.1f}x |")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "accuracy"
    if what == "accuracy":
        measure_accuracy(int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 20)
    elif what in ("bench", "prange"):
        measure_w1(parallel=what == "prange")
    else:
        sys.exit("usage: python tests/test_vecmath.py accuracy [n] | bench | prange")
