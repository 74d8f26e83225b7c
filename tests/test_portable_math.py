"""The portable vector math (compiler/portable_math.py): pure-arithmetic sin, cos, exp, expm1,
tanh, log and log1p that LLVM vectorizes without libmvec.

The portable platform is what macOS, Windows, musl and aarch64 get; here it is selected
explicitly (`TRACEJIT_VECTOR_MATH=portable` in the environment, or the platform object), so
these tests run on every machine. Modules are written in the code generator's style with the
helpers of tests/test_vecmath.py and compiled once per module.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest
from test_vecmath import (
    DTYPES,
    inputs,
    module_source,
    numpy_ref,
    pad64,
    run_kernel,
    same_value,
    specials,
    ulp_error,
    write_module,
)

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.compiler import portable_math as pm
from tracejit.compiler import vecmath as vm

PORTABLE = vm.detect(environ={vm.ENV_VAR: "portable"})
FNS = list(pm.FUNCTIONS)
# Measured over 2**20 inputs per function (docs/vector-math.md); float32 against NumPy's
# float64 result rounded, since the helpers compute in float64 and round once.
MAX_ULP = {64: 3, 32: 1}
LIBM = re.compile(r"call\w*\s+(sin|cos|exp|expm1|tanh|log|log1p)f?(@PLT)?\b")


@pytest.fixture(scope="module")
def portable_module(tmp_path_factory):
    d = tmp_path_factory.mktemp("portable")
    mod = write_module(d, "tj_portable_all",
                       module_source(FNS, platform=PORTABLE, cache=True, w1=True))
    mod.directory = d
    return mod


def kernel_asm(dispatcher) -> str:
    return "".join(dispatcher.inspect_asm(sig) for sig in dispatcher.signatures)


# -- the platform and its spellings -----------------------------------------------------------

def test_portable_platform_spellings():
    assert PORTABLE.mode == "portable" and not PORTABLE.variants
    assert vm.call("sin", "f64", ["x"], PORTABLE) == "pm_sin_f64(x)"
    assert vm.call("arctan2", "f32", ["a", "b"], PORTABLE) == "math.atan2(a, b)"  # no helper
    assert vm.call("log1p", np.float32, ["x"], PORTABLE) == "pm_log1p_f32(x)"
    assert vm.call("exp", np.float16, ["x"], PORTABLE) == "math.exp(x)"
    text = vm.preamble([("tanh", 32)], PORTABLE)
    # tanh_f32 needs tanh_f64, which needs expm1_f64; nothing else is pasted
    assert "def _pm_expm1_f64" in text and "def _pm_tanh_f64" in text
    assert "def pm_tanh_f32" in text and "_pm_sin" not in text and "_vm(" not in text
    assert vm.preamble([("atan2", 64)], PORTABLE) == ""
    assert vm.describe(PORTABLE).startswith("portable pure-arithmetic helpers for cos_f32")
    with pytest.raises(KeyError):
        pm.helper_name("atan2", 64)


def test_libmvec_platforms_fill_gaps_with_portable_helpers():
    """A libmvec without a function (glibc before 2.35 has no expm1, tanh or log1p variants)
    gets the portable helper for it instead of a scalar call that would keep the whole loop
    scalar."""
    if not vm.target().variants:
        pytest.skip(f"no libmvec here: {vm.describe()}")
    here = vm.target()
    old = vm.Platform("libmvec-old", here.isas,
                      {k: v for k, v in here.variants.items()
                       if k[0] in ("sin", "cos", "exp", "log", "pow")},
                      portable=frozenset(vm._ALL_PORTABLE - {
                          k for k in here.variants if k[0] in ("sin", "cos", "exp", "log")}))
    assert vm.call("tanh", "f64", ["x"], old) == "pm_tanh_f64(x)"
    assert vm.call("sin", "f64", ["x"], old) == "vm_sin_f64(x)"
    assert not here.portable or all(k not in here.variants for k in here.portable)


def test_generated_source_differs_by_mode():
    """The helpers are part of the module's text, so a cached module of one mode never
    serves another."""
    used = [("exp", 64)]
    texts = {vm.preamble(used, p) for p in (PORTABLE, vm.SCALAR, vm.target())}
    assert len(texts) == (3 if vm.target().variants else 2)


# -- accuracy -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [64, 32])
def test_agrees_with_numpy(portable_module, bits):
    rng = np.random.default_rng(100 + bits)
    xs, ys = {}, {}
    for fn in FNS:
        xs[fn], ys[fn] = inputs(fn, bits, 1 << 14, rng)
    got = run_kernel(portable_module, FNS, bits, xs, ys)
    worst = {fn: ulp_error(got[fn], numpy_ref(fn, 64, xs[fn], ys[fn]), bits).max()
             for fn in FNS}
    assert all(e <= MAX_ULP[bits] for e in worst.values()), worst


@pytest.mark.parametrize("bits", [64, 32])
def test_special_values(portable_module, bits):
    """+-0, +-inf, nan, and where NumPy's result is 0, +-inf or nan: the same value, sign
    included; elsewhere on the specials (subnormals, range edges) within the ulp bound."""
    s = specials(bits)
    n = len(pad64(s))
    xs = {fn: np.resize(s, n) for fn in FNS}
    ones = {fn: np.ones(n, DTYPES[bits]) for fn in FNS}
    got = run_kernel(portable_module, FNS, bits, xs, ones)
    for fn in FNS:
        x, g = xs[fn], got[fn]
        ref = numpy_ref(fn, bits, x, ones[fn])
        exact = ~np.isfinite(x) | (x == 0) | ~np.isfinite(ref) | (ref == 0)
        wrong = exact & ~same_value(g, ref)
        assert not wrong.any(), (fn, bits, [(x[i], g[i], ref[i]) for i in np.nonzero(wrong)[0]])
        err = ulp_error(g, numpy_ref(fn, 64, x, ones[fn]), bits)
        assert err[~exact].max(initial=0) <= MAX_ULP[bits] + 1, (fn, bits)


def test_trig_of_huge_and_hard_arguments(portable_module):
    """sin and cos reduce every finite argument exactly (Payne and Hanek's method): on the
    doubles closest to multiples of pi/2 and on arguments up to the largest double they are
    within an ulp of the true value (mpmath at 3000 bits; glibc's cos is 8 ulp off on the
    first of these)."""
    mpmath = pytest.importorskip("mpmath")
    hard = [6381956970095103.0 * 2.0 ** 797, 5319367401028070.0 * 2.0 ** 257,
            8248251512623010.0 * 2.0 ** -48, 1e22, 2.0 ** 60, 2.0 ** 1023, 1.7976931348623157e308,
            7.0 * math.pi / 2 * (1 + 2 ** -52), 1e5 * math.pi, 0.7853981633974483,
            0.7853981633974484, 2.356194490192345, 355.0, 103993.0, 2.0 ** 54, 2.0 ** 55 - 1]
    rng = np.random.default_rng(9)
    x = np.concatenate([hard, -np.array(hard), 2.0 ** rng.uniform(-1, 1023, 500)])
    n = len(pad64(x))
    xs = {fn: np.resize(x, n) for fn in FNS}
    got = run_kernel(portable_module, FNS, 64, xs, {fn: np.ones(n) for fn in FNS})
    with mpmath.workprec(3000):
        true = {fn: np.array([float(getattr(mpmath, fn)(mpmath.mpf(v))) for v in x])
                for fn in ("sin", "cos")}
    for fn, ref in true.items():
        err = ulp_error(got[fn][:len(x)], ref, 64)
        assert err.max() <= 1, (fn, xs[fn][np.argmax(err)], err.max())


def test_float32_trig_over_every_exponent(portable_module):
    """float32 sin and cos (their own two-chunk reduction) are correctly rounded from the
    float64 result on float32 values of every exponent (a stride through all bit patterns;
    a one-off sweep of 460 million values found at most 0.5 ulp)."""
    bits = np.arange(0, 0x7F800000, 2039, dtype=np.uint32)
    x = np.concatenate([bits.view(np.float32), -bits[::7].view(np.float32)])
    n = len(pad64(x))
    xs = {fn: np.resize(x, n) for fn in FNS}
    got = run_kernel(portable_module, FNS, 32, xs, {fn: np.ones(n, np.float32) for fn in FNS})
    for fn in ("sin", "cos"):
        ref = numpy_ref(fn, 64, xs[fn], xs[fn])
        assert ulp_error(got[fn], ref, 32).max() <= 0.5 + 1e-6, fn


# -- vectorized loops ---------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [64, 32])
def test_loops_vectorize_without_libm_calls(portable_module, bits):
    """Every portable function's loop is vector code with no call of the scalar libm function
    left in it, and W1's gradient loop (four functions) is one vector loop."""
    x = np.linspace(-3.0, 3.0, 4099).astype(DTYPES[bits])
    g = np.empty_like(x)
    w1 = getattr(portable_module, f"w1_f{bits}")
    w1(x, g)
    t = np.tanh(x.astype(np.float64))
    x64 = x.astype(np.float64)
    ref = (1 - t * t) * np.sin(x64) + t * np.cos(x64) - x64 * np.exp(-x64 * x64 / 2)
    np.testing.assert_allclose(g, ref, rtol=0, atol=8 * np.finfo(DTYPES[bits]).eps)
    for f in (getattr(portable_module, f"kernel_f{bits}"), w1):
        asm = kernel_asm(f)
        assert not LIBM.search(asm), LIBM.search(asm).group(0)
        assert re.search(r"\bv?(mul|fmadd\d*)pd\b", asm)  # packed float64 arithmetic


def test_parallel_loops(tmp_path):
    """prange loops call the helpers too (each compiled in the parallel kernel's module)."""
    fns = ["sin", "exp", "log1p"]
    mod = write_module(tmp_path, "tj_portable_par",
                       module_source(fns, platform=PORTABLE, parallel=True))
    rng = np.random.default_rng(4)
    xs, ys = {}, {}
    for fn in fns:
        xs[fn], ys[fn] = inputs(fn, 64, 8192, rng)
    got = run_kernel(mod, fns, 64, xs, ys)
    for fn in fns:
        assert ulp_error(got[fn], numpy_ref(fn, 64, xs[fn], ys[fn]), 64).max() <= MAX_ULP[64]


_CACHED = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import tj_portable_all as m
x = np.load(sys.argv[1] + "/x.npy")
out = np.empty_like(x)
m.kernel_f64(x, x, out)
hits = sum(m.kernel_f64.stats.cache_hits.values())
print(hits, bool((out == np.load(sys.argv[1] + "/want.npy")).all()))
"""


def test_cached_machine_code_loads_in_a_new_process(portable_module):
    d = portable_module.directory
    x = np.tile(np.linspace(0.1, 5.0, 256), (len(FNS), 1))
    want = np.empty_like(x)
    portable_module.kernel_f64(x, x, want)
    np.save(d / "x.npy", x)
    np.save(d / "want.npy", want)
    proc = subprocess.run([sys.executable, "-c", _CACHED, str(d)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    hits, same = proc.stdout.split()
    assert int(hits) >= 1 and same == "True", proc.stdout


# -- through jit ----------------------------------------------------------------------------------

def _programs(x):
    return {"sin": tnp.sin(x), "cos": tnp.cos(x), "exp": tnp.exp(x), "tanh": tnp.tanh(x),
            "log": tnp.log(tnp.abs(x)), "log1p": tnp.log1p(tnp.abs(x)),
            "expm1": tnp.expm1(x), "atan2": tnp.arctan2(x, 2.0)}


@pytest.mark.parametrize("fastmath", [False, True])
def test_jit_in_portable_mode(monkeypatch, fastmath):
    """A jitted program on the portable platform calls the helpers and matches NumPy. With
    fastmath the helpers keep their own rounding steps (they compile without its flags), so
    finite results stay within the bound; infinities and nans are outside fastmath's
    contract ('nnan', 'ninf')."""
    monkeypatch.setattr(vm, "target", lambda platform=None: PORTABLE)
    x = np.concatenate([np.linspace(-30.0, 30.0, 1001), [0.0, -0.0, np.inf, -np.inf, np.nan,
                                                        1e300, -1e-310]])
    f = tj.jit(_programs, fastmath=fastmath)
    src = f.lower(x).source
    assert "pm_sin_f64(" in src and "_vm(" not in src and "math.atan2(" in src
    got = f(x)
    with np.errstate(all="ignore"):
        want = {"sin": np.sin(x), "cos": np.cos(x), "exp": np.exp(x), "tanh": np.tanh(x),
                "log": np.log(np.abs(x)), "log1p": np.log1p(np.abs(x)), "expm1": np.expm1(x),
                "atan2": np.arctan2(x, 2.0)}
    for k, w in want.items():
        special = ~np.isfinite(x) | (x == 0) | ~np.isfinite(w)
        if not fastmath:
            assert same_value(got[k][special], w[special]).all(), k
        assert ulp_error(got[k][~special], w[~special], 64).max() <= MAX_ULP[64], k


def test_jit_gradient_in_portable_mode(monkeypatch):
    monkeypatch.setattr(vm, "target", lambda platform=None: PORTABLE)

    def loss(x):
        return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x) + tnp.log1p(x * x))

    x = np.linspace(-4.0, 4.0, 513)
    g = tj.jit(tj.grad(loss))(x)
    t = np.tanh(x)
    hand = ((1 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)
            + 2 * x / (1 + x * x))
    np.testing.assert_allclose(g, hand, rtol=0, atol=1e-14)
    h = 1e-6  # and central differences, independently of the hand derivation
    fd = np.array([(loss(x + h * e) - loss(x - h * e)) / (2 * h)
                   for e in np.eye(x.size)[::64]])
    np.testing.assert_allclose(g[::64], fd, atol=1e-7)


# -- measurements (run on purpose: python tests/test_portable_math.py accuracy | bench) -------

def measure_accuracy(n: int = 1 << 20) -> None:
    """Max ulp error of the portable helpers per function and dtype over `n` inputs from
    test_vecmath's ranges: float64 against long double, float32 against NumPy's float64."""
    import tempfile
    from pathlib import Path

    from test_vecmath import _U, RANGES, _reference
    with tempfile.TemporaryDirectory() as d:
        mod = write_module(Path(d), "tj_portable_acc",
                           module_source(FNS, platform=PORTABLE))
        rng = np.random.default_rng(2026)
        print("| function | range, float64 | f64 portable | range, float32 | f32 portable |")
        print("| --- | --- | --- | --- | --- |")
        rows = {}
        for bits in (64, 32):
            xs, ys = {}, {}
            for fn in FNS:
                xs[fn], ys[fn] = inputs(fn, bits, n, rng)
            got = run_kernel(mod, FNS, bits, xs, ys)
            for fn in FNS:
                ref = _reference(fn, bits, xs[fn], ys[fn])
                rows.setdefault(fn, []).append(ulp_error(got[fn], ref, bits).max())

        def rng_text(fn, k):
            return "; ".join(f"{kind} [{lo:g}, {hi:g}]" for kind, lo, hi in _U[RANGES[fn]][k])
        for fn in FNS:
            print(f"| {fn} | {rng_text(fn, 0)} | {rows[fn][0]:.2f} | {rng_text(fn, 1)} | "
                  f"{rows[fn][1]:.2f} |")


def measure_speed(n: int = 10 ** 6, runs: int = 31) -> None:
    """Loops of `n` calls of each function, and W1's gradient loop, through the portable
    helpers and through scalar libm, alternating in one process (medians and minima)."""
    import tempfile
    from pathlib import Path

    from test_vecmath import _timed

    print("| loop | dtype | portable, median / min ms | libm, median / min ms | speedup |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(1)
        for fn in FNS + ["W1"]:
            mods = {name: write_module(Path(d), f"tj_{name}_{fn}", module_source(
                        [] if fn == "W1" else [fn], platform=p, w1=fn == "W1"))
                    for name, p in (("portable", PORTABLE), ("libm", vm.SCALAR))}
            for bits in (64, 32):
                dt = DTYPES[bits]
                x = rng.uniform(-5.0, 5.0, n).astype(dt)
                if fn.startswith("log"):
                    x = np.abs(x) + dt(0.1)
                if fn == "W1":
                    args = (x, np.empty_like(x))
                    fs = {k: getattr(m, f"w1_f{bits}") for k, m in mods.items()}
                else:
                    args = (x[None], x[None], np.empty((1, n), dt))
                    fs = {k: getattr(m, f"kernel_f{bits}") for k, m in mods.items()}
                for f in fs.values():  # compile outside the timing
                    f(*args)
                t = _timed(fs, *args, repeat=runs)
                (pm_, pmin), (lm, lmin) = ((1e3 * a, 1e3 * b) for a, b in
                                           (t["portable"], t["libm"]))
                print(f"| {fn} | f{bits} | {pm_:.2f} / {pmin:.2f} | {lm:.2f} / {lmin:.2f} | "
                      f"{lm / pm_:.1f}x |")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "accuracy":
        measure_accuracy()
    elif what == "bench":
        measure_speed()
    else:
        sys.exit("usage: python tests/test_portable_math.py accuracy | bench")
