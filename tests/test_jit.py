"""`tj.jit`: transforms under jit, static arguments, the in-memory and on-disk caches, the
lowered stages (IR, fusion plan, source), standalone generated modules, allocation, dumping,
disabling, and bad input. Compiled values are compared with the interpreter's and with hand
derivations; tests/test_jit_programs.py covers the primitives program by program.
"""

import json
import os
import re
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.compiler import build as build_mod
from tracejit.compiler import codegen as codegen_mod
from tracejit.compiler.plan import CallKernel, LoopKernel
from tracejit.ir import Var
from tracejit.tree_util import tree_flatten

# -- helpers (also used by test_jit_programs.py) ---------------------------------------------


def assert_close(actual, expected, rtol=1e-12, path="out"):
    """Same pytree structure; per leaf the same dtype and shape, integers and booleans equal,
    floats within `rtol` relative (with an absolute floor of rtol * max|expected| for entries
    that cancel to ~0) and NaN/inf in the same places."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (path, actual)
        for k in expected:
            assert_close(actual[k], expected[k], rtol, f"{path}[{k!r}]")
        return
    if isinstance(expected, (tuple, list)):
        assert type(actual) is type(expected) and len(actual) == len(expected), path
        for k, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, rtol, f"{path}[{k}]")
        return
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.dtype == e.dtype, f"{path}: dtype {a.dtype}, expected {e.dtype}"
    assert a.shape == e.shape, f"{path}: shape {a.shape}, expected {e.shape}"
    if e.dtype.kind in "biu":
        np.testing.assert_array_equal(a, e, err_msg=path)
        return
    finite = np.isfinite(e)
    np.testing.assert_array_equal(np.isfinite(a), finite, err_msg=f"{path}: non-finite")
    np.testing.assert_array_equal(a[~finite], e[~finite], err_msg=path)  # same NaN/inf
    scale = float(np.max(np.abs(e[finite]))) if finite.any() else 0.0
    np.testing.assert_allclose(a[finite], e[finite], rtol=rtol, atol=rtol * scale,
                               err_msg=path)


def fd_grad(f, x, h=1e-6):
    """Central finite differences of a scalar function of one float64 array (plain NumPy:
    `f` runs eagerly on arrays, no tracing)."""
    x = np.asarray(x, dtype=np.float64)
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (float(f(xp)) - float(f(xm))) / (2 * h)
    return g


@pytest.fixture
def compiles(monkeypatch):
    """Counts programs generated (`codegen.generate`) and modules built (`build.build`)."""
    counts = {"generate": 0, "build": 0}
    real_generate, real_build = codegen_mod.generate, build_mod.build

    def generate(*args, **kwargs):
        counts["generate"] += 1
        return real_generate(*args, **kwargs)

    def build(*args, **kwargs):
        counts["build"] += 1
        return real_build(*args, **kwargs)

    monkeypatch.setattr(codegen_mod, "generate", generate)
    monkeypatch.setattr(build_mod, "build", build)
    return counts


# -- the benchmark losses used throughout ----------------------------------------------------

def w1(x):
    return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))


def w1_grad_hand(x):
    t = np.tanh(x)
    return (1.0 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)


def w8(logits, labels):
    return tnp.mean(nn.logsumexp(logits, 1) - logits[tnp.arange(logits.shape[0]), labels])


def w8_grad_hand(logits, labels):
    n = logits.shape[0]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    g = e / e.sum(axis=1, keepdims=True)
    np.add.at(g, (np.arange(n), labels), -1.0)
    return g / n


W1_GRAD = tj.jit(tj.grad(w1))
W1_VALUE_AND_GRAD = tj.jit(tj.value_and_grad(w1))
W8_GRAD = tj.jit(tj.grad(w8))

X1 = np.random.default_rng(1).standard_normal(1000) * 2.0
LOGITS = np.random.default_rng(8).standard_normal((16, 10)) * 3.0
LABELS = np.array([0, 9, 9, 3, 0, 1, 2, 5, 5, 5, 7, 8, 4, 6, 9, 0])


def test_jit_grad_w1():
    g = W1_GRAD(X1)
    assert_close(g, tj.grad(w1)(X1))
    assert_close(g, w1_grad_hand(X1), rtol=1e-10)


def test_jit_value_and_grad_w1():
    v, g = W1_VALUE_AND_GRAD(X1)
    assert_close((v, g), tj.value_and_grad(w1)(X1))
    want = np.sum(np.tanh(X1) * np.sin(X1) + np.exp(-0.5 * X1 * X1))
    assert v == pytest.approx(want, rel=1e-12) and type(v) is np.float64
    assert_close(g, w1_grad_hand(X1), rtol=1e-10)


def test_jit_grad_w8_repeated_labels():
    g = W8_GRAD(LOGITS, LABELS)
    assert_close(g, tj.grad(w8)(LOGITS, LABELS))
    assert_close(g, w8_grad_hand(LOGITS, LABELS), rtol=1e-10)


# -- transforms compose with jit -------------------------------------------------------------

def f_xy(x, y):
    return tnp.sum(tnp.sin(x) * y + tnp.exp(0.3 * x))


def f_xy_grads(x, y):
    return np.cos(x) * y + 0.3 * np.exp(0.3 * x), np.sin(x)


XS, YS = np.linspace(-1.0, 2.0, 5), np.linspace(0.5, -0.5, 5)


def test_jit_value_and_grad_two_argnums():
    v, (gx, gy) = tj.jit(tj.value_and_grad(f_xy, argnums=(0, 1)))(XS, YS)
    assert_close((v, (gx, gy)), tj.value_and_grad(f_xy, argnums=(0, 1))(XS, YS))
    assert_close((gx, gy), f_xy_grads(XS, YS), rtol=1e-13)


def test_grad_of_jit_is_transparent(compiles):
    jf = tj.jit(f_xy)
    g = tj.grad(jf)(XS, YS)
    assert_close(g, f_xy_grads(XS, YS)[0], rtol=1e-13)
    # Under differentiation the jitted function records its IR: nothing is compiled.
    assert jf._compiled == {} and compiles == {"generate": 0, "build": 0}
    gy = tj.jit(tj.grad(jf, argnums=1))(XS, YS)  # ... also inside an outer jit
    assert_close(gy, f_xy_grads(XS, YS)[1], rtol=1e-13)
    assert jf._compiled == {} and compiles["build"] == 1


def test_jit_of_jit(compiles):
    inner = tj.jit(f_xy)
    outer = tj.jit(lambda x, y: inner(x, y) * 2.0)
    got = outer(XS, YS)
    assert_close(got, 2.0 * f_xy(XS, YS))
    assert inner._compiled == {} and compiles["build"] == 1  # one program: the inner inlined
    assert_close(tj.jit(inner)(XS, YS), f_xy(XS, YS))


def test_jit_hessian():
    def f(x, y):
        return tnp.sum(tnp.sin(x) * y) + tnp.sum(x) ** 2 + tnp.sum(x[:-1] * x[1:])
    x, y = XS[:4], YS[:4]
    h = tj.jit(tj.hessian(f))(x, y)
    want = np.diag(-np.sin(x) * y) + 2.0 + np.eye(4, k=1) + np.eye(4, k=-1)
    assert_close(h, tj.hessian(f)(x, y))
    assert_close(h, want, rtol=1e-13)


def test_jit_second_derivative_of_scalar_function():
    d2 = tj.jit(tj.grad(tj.grad(lambda t: tnp.sin(t) * t ** 3)))
    t = 0.7
    got = d2(t)
    assert got == pytest.approx(-np.sin(t) * t ** 3 + 6 * np.cos(t) * t ** 2
                                + 6 * np.sin(t) * t, rel=1e-13)
    assert np.ndim(got) == 0


def test_jit_jvp_and_vjp_wrappers():
    def g(x):
        return tnp.sin(x) * x

    def jvp_wrapper(x, t):
        return tj.jvp(g, (x,), (t,))

    def vjp_wrapper(x, ct):
        out, pullback = tj.vjp(g, x)
        return out, pullback(ct)[0]

    (out, tangent) = tj.jit(jvp_wrapper)(XS, YS)
    assert_close((out, tangent), jvp_wrapper(XS, YS))
    deriv = np.cos(XS) * XS + np.sin(XS)
    assert_close(tangent, deriv * YS, rtol=1e-13)
    out2, cot = tj.jit(vjp_wrapper)(XS, YS)
    assert_close((out2, cot), (np.sin(XS) * XS, deriv * YS), rtol=1e-13)


# -- static arguments ------------------------------------------------------------------------

def test_static_argnums_compile_once_per_value(compiles):
    traces = []

    def f(x, n):
        traces.append(n)
        return tnp.sum(x ** n) if n > 1 else tnp.sum(x)

    jf = tj.jit(f, static_argnums=1)
    x = np.array([1.0, 2.0, 3.0])
    assert jf(x, 2) == 14.0 and jf(x, 2) == 14.0
    assert jf(x, 3) == 36.0 and jf(x, 1) == 6.0 and jf(x, 3) == 36.0
    assert traces == [2, 3, 1] and compiles["generate"] == 3 and len(jf._compiled) == 3
    # A negative index names the same argument.
    jneg = tj.jit(f, static_argnums=-1)
    assert jneg(x, 2) == 14.0 and jneg(x, 3) == 36.0 and len(jneg._compiled) == 2


def test_static_argnames(compiles):
    traces = []

    def f(x, *, mode="sum", scale=1.0):
        traces.append(mode)
        return tnp.sum(x) * scale if mode == "sum" else tnp.max(x) * scale

    jf = tj.jit(f, static_argnames=("mode",))
    x = np.array([1.0, 5.0, 3.0])
    assert jf(x, mode="sum") == 9.0 and jf(x, mode="max") == 5.0
    assert jf(x, mode="sum", scale=2.0) == 18.0  # scale is dynamic (a Python float)
    assert jf(x, mode="max", scale=0.5) == 2.5 and jf(x, mode="max", scale=3.0) == 15.0
    assert traces == ["sum", "max", "sum", "max"]  # once per (mode, presence of scale)
    assert compiles["generate"] == 4


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}, np.array([1.0])], ids=type)
def test_unhashable_static_argument_is_a_clear_type_error(bad):
    jf = tj.jit(lambda x, n: x * 2.0, static_argnums=1)
    with pytest.raises(TypeError, match="static arguments of .* must be hashable"):
        jf(np.ones(2), bad)
    jk = tj.jit(lambda x, n=1: x * 2.0, static_argnames="n")
    with pytest.raises(TypeError, match="must be hashable"):
        jk(np.ones(2), n=bad)


# -- in-memory cache -------------------------------------------------------------------------

def test_same_signature_neither_retraces_nor_recompiles(compiles):
    traces = []

    def f(x, y):
        traces.append(1)
        return tnp.sin(x) * y

    jf = tj.jit(f)
    x, y = np.linspace(0.0, 1.0, 6).reshape(2, 3), np.ones((2, 3))
    first = jf(x, y)
    assert len(traces) == 1 and compiles == {"generate": 1, "build": 1}
    strided = np.linspace(0.0, 1.0, 12).reshape(2, 6)[:, ::2]
    readonly = x.copy()
    readonly.flags.writeable = False
    # Same shapes and dtypes, any layout: the fast path and the general path.
    for args in [(x, y), (x * 2.0, y), (np.asfortranarray(x), y), (strided, y), (readonly, y)]:
        assert_close(jf(*args), np.sin(args[0]) * args[1])
    assert_close(jf(x=x, y=y), first)  # keyword arguments: one more signature
    assert len(traces) == 2 and compiles["generate"] == 2
    # A new shape traces and compiles a new program; the old one is still cached.
    assert_close(jf(np.ones(4), np.ones(4)), np.sin(np.ones(4)))
    assert len(traces) == 3 and compiles["generate"] == 3
    assert_close(jf(x, y), first)
    assert len(traces) == 3 and compiles["generate"] == 3 and len(jf._compiled) == 3


def test_new_ndim_or_dtype_retraces(compiles):
    traces = []

    def f(x):
        traces.append(x.dtype)
        return x * 2

    jf = tj.jit(f)
    for x in [np.arange(3.0), np.arange(3.0).reshape(3, 1), np.arange(3), np.float32([1, 2]),
              np.array([True, False]), np.arange(3.0)]:
        assert_close(jf(x), x * 2)
    assert [str(d) for d in traces] == ["float64", "float64", "int64", "float32", "bool"]
    assert compiles["generate"] == 5 and len(jf._compiled) == 5


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad,dtype", [
    (np.array(["a", "b"]), "<U1"),
    (np.array([object(), 1], dtype=object), "object"), ("text", "<U4")])
def test_unsupported_arguments_are_type_errors(bad, dtype):
    jf = tj.jit(lambda x: x * 2)
    with pytest.raises(TypeError, match=f"dtype {dtype}.*static"):
        jf(bad)
    jg = tj.jit(lambda a, b: a * 2)
    with pytest.raises(TypeError, match=f"dtype {dtype}"):
        jg(np.ones(2), bad)
    assert jf._compiled == {} and jg._compiled == {}


# -- lower(): IR, plan, source ---------------------------------------------------------------

def _comps(kernel):
    return [c for st in kernel.stages for c in st.items]


def test_lower_prints_every_stage(capsys):
    low = W1_GRAD.lower(X1[:16])
    print(low.ir)
    print(low.plan)
    print(low.source)
    printed = capsys.readouterr().out
    text_ir, text_plan = str(low.ir), str(low.plan)
    assert printed == f"{text_ir}\n{text_plan}\n{low.source}\n"
    assert text_ir.startswith("ir w1(a: f64[16]) -> f64[16]") and "tanh a" in text_ir
    assert text_plan.startswith("plan w1(") and "kernel 0" in text_plan
    assert "@numba.njit(" in low.source and "def run(a):" in low.source
    assert "import tracejit" not in low.source and "from tracejit" not in low.source
    compile(low.source, "<generated>", "exec")  # valid Python
    assert repr(low.plan) == text_plan


def test_w1_gradient_is_one_loop_reading_x_writing_the_gradient():
    n = 1000
    low = W1_GRAD.lower(X1)
    plan, ir = low.plan, low.ir
    (x,) = ir.invars
    (g,) = ir.outs
    assert len(plan.kernels) == 1
    (kernel,) = plan.kernels
    assert isinstance(kernel, LoopKernel) and kernel.outer == (n,)
    assert len(kernel.stages) == 1 and kernel.stages[0].inner == ()
    (comp,) = _comps(kernel)
    assert comp.kind == "write" and comp.var is g
    assert plan.materialized == {g} and plan.stored == {g}
    names = plan.names
    # Reads only x: every value the loop reads from memory is x.
    lines = str(plan).splitlines()
    assert [ln.strip() for ln in lines if ln.strip().startswith("reads")] == [
        f"reads {names[x]}"]
    assert [ln.strip() for ln in lines if ln.strip().startswith("writes")][0].startswith(
        f"writes {names[g]}: f64[{n}]")
    assert sum("kernel" in ln for ln in lines) == 1 and f"loop over ({n})" in lines[1]
    # The source: one allocation (the gradient), one loop, indexed reads of x only.
    src = low.source
    assert src.count("np.empty(") == 1 and f"{names[g]} = np.empty(({n},)" in src
    body = src[src.index("def kernel("):src.index("def run(")]
    code = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert [ln.strip() for ln in code if ln.strip().startswith("for ")] == [
        f"for i0 in range({n}):"]
    indexed = set(re.findall(r"\b(\w+)\[", "\n".join(code)))
    assert indexed == {names[x], names[g]}, code  # reads x, writes g: no other array


def test_w8_gradient_is_one_row_loop_plus_a_small_scatter():
    n, c = LOGITS.shape
    low = W8_GRAD.lower(LOGITS, LABELS)
    plan = low.plan
    loops = [k for k in plan.kernels if isinstance(k, LoopKernel)]
    calls = [k for k in plan.kernels if isinstance(k, CallKernel)]
    assert len(loops) == 1 and len(calls) <= 1 and len(plan.kernels) == len(loops) + len(calls)
    (loop,) = loops
    assert loop.outer == (n,)  # the outer loop runs over rows
    assert all(st.inner == (c,) for st in loop.stages)  # every stage: one pass over a row
    assert {comp.mode for comp in _comps(loop)} <= {"row", "write"}
    assert any(comp.mode == "row" for comp in _comps(loop))
    for call in calls:  # the labels' -1/n, added into the softmax written by the loop
        eqn = call.comp.eqn
        assert eqn.prim.name == "scatter_add"
        updates = eqn.inputs[2]
        assert updates.aval.shape == (n,) and call.comp.var in plan.ir.outs
    heads = [ln.strip() for ln in str(plan).splitlines() if ln.strip().startswith("kernel")]
    assert heads[0] == f"kernel 0: loop over ({n})" and len(heads) == len(plan.kernels)
    assert all(h.startswith("kernel 1: call scatter_add") for h in heads[1:])
    allocations = [line for line in low.source.splitlines() if "np.empty(" in line]
    # the gradient (the scatter adds in place) and at most one row-sized scratch buffer
    assert sum("_row" not in line for line in allocations) == 1
    assert all(f"np.empty(({c},)" in line for line in allocations if "_row" in line)


# -- the generated module runs without tracejit ----------------------------------------------

def _package_dirs():
    import llvmlite
    import numba
    return sorted({os.path.dirname(os.path.dirname(m.__file__)) for m in (np, numba, llvmlite)})


def test_generated_module_runs_standalone(tmp_path):
    low = tj.jit(tj.value_and_grad(w8)).lower(LOGITS, LABELS)
    want_v, want_g = tj.jit(tj.value_and_grad(w8))(LOGITS, LABELS)
    (tmp_path / "program.py").write_text(low.source)
    np.save(tmp_path / "in0.npy", LOGITS)
    np.save(tmp_path / "in1.npy", LABELS)
    script = textwrap.dedent(f"""
        import sys
        sys.path.extend({_package_dirs()!r})
        try:
            import tracejit
        except ImportError:
            pass
        else:
            raise SystemExit("tracejit is importable: " + tracejit.__file__)
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import program
        value, grad = program.run(np.load("in0.npy"), np.load("in1.npy"))
        np.save("out0.npy", np.asarray(value))
        np.save("out1.npy", grad)
        print("ran", sorted(m for m in sys.modules if m.startswith("tracejit")))
    """)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.strip() == "ran []"
    value, grad = np.load(tmp_path / "out0.npy"), np.load(tmp_path / "out1.npy")
    np.testing.assert_array_equal(grad, want_g)  # the same code: the same bits
    assert float(value) == float(want_v)
    assert_close(value[()], tj.value_and_grad(w8)(LOGITS, LABELS)[0])
    assert_close(grad, w8_grad_hand(LOGITS, LABELS), rtol=1e-10)


# -- the on-disk module cache ----------------------------------------------------------------

CACHE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import tracejit as tj
    import tracejit.numpy as tnp

    def w1(x):
        return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))

    x = np.load(sys.argv[1])
    g = tj.jit(tj.grad(w1))
    t0 = time.perf_counter()
    out = g(x)
    t1 = time.perf_counter()
    np.save(sys.argv[2], out)
    print(json.dumps({"first_call_seconds": t1 - t0}))
""")


@pytest.fixture
def cache_env(tmp_path):
    """A private, not yet existing TRACEJIT_CACHE_DIR, for the cache tests only (the other
    tests use the default cache)."""
    root = tmp_path
    cache = root / "cache"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACEJIT_") or k == "TRACEJIT_VECTOR_MATH"}  # same math mode
    env["TRACEJIT_CACHE_DIR"] = str(cache)
    x = X1[:64]
    np.save(root / "x.npy", x)
    return root, cache, env, x


def _run_cache_script(root, env, tag):
    out = root / f"out_{tag}.npy"
    proc = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, str(root / "x.npy"), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def test_disk_cache_compiles_once_and_is_reused(cache_env, record_property):
    root, cache, env, x = cache_env
    source = W1_GRAD.lower(x).source
    expected = f"tj_{build_mod.source_key(source)}.py"
    assert not cache.exists()
    cold, out1 = _run_cache_script(root, env, "cold")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700  # created private
    modules = sorted(p.name for p in cache.glob("tj_*.py"))
    assert modules == [expected], modules
    assert not list(cache.glob(".tj_*"))  # no temporary files left behind
    path = cache / expected
    text = path.read_text()
    assert text.splitlines()[0].startswith("# sha256: ") and text.endswith(source)
    mtime = path.stat().st_mtime_ns
    warm, out2 = _run_cache_script(root, env, "warm")
    assert path.stat().st_mtime_ns == mtime and path.read_text() == text  # not rewritten
    assert sorted(p.name for p in cache.glob("tj_*.py")) == [expected]
    record_property("cold_first_call_seconds", cold["first_call_seconds"])
    record_property("warm_first_call_seconds", warm["first_call_seconds"])
    np.testing.assert_array_equal(out1, out2)
    assert_close(out1, w1_grad_hand(x), rtol=1e-10)


@pytest.mark.parametrize("consistent_hash", [False, True], ids=["stale-hash", "new-hash"])
def test_tampered_cached_module_is_rewritten_not_run(cache_env, consistent_hash):
    root, cache, env, x = cache_env
    source = W1_GRAD.lower(x).source
    path = cache / f"tj_{build_mod.source_key(source)}.py"
    os.makedirs(cache, mode=0o700)
    assert build_mod.write_module(source, str(cache)) == str(path)  # what a first run writes
    good = path.read_text()
    marker, body = good.split("\n", 1)
    evil = body.replace("import math\n", "import math\nraise SystemExit(97)\n", 1)
    assert evil != body
    if consistent_hash:  # the marker matches the tampered content
        import hashlib
        marker = "# sha256: " + hashlib.sha256(evil.encode()).hexdigest()
    path.write_text(marker + "\n" + evil)
    _, out = _run_cache_script(root, env, f"tampered_{consistent_hash}")
    assert path.read_text() == good  # rewritten from the program's own source
    assert_close(out, w1_grad_hand(x), rtol=1e-10)


def test_cache_dir_is_created_private(tmp_path, monkeypatch):
    target = tmp_path / "nested" / "cache"
    monkeypatch.setenv("TRACEJIT_CACHE_DIR", str(target))
    assert build_mod.cache_dir() == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    path = build_mod.write_module("x = 1\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- allocation ------------------------------------------------------------------------------

@pytest.fixture
def nrt_allocations():
    """NRT allocation counter; the count Numba adds per array argument it unboxes (one MemInfo
    wrapping the caller's buffer) is measured on a kernel that only reads its argument."""
    import numba
    from numba.core.runtime import _nrt_python, rtsys

    @numba.njit
    def reads(a):
        return a[0]

    reads(np.zeros(3))
    was_enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()

    def allocations(fn, *args):
        before = rtsys.get_allocation_stats().alloc
        result = fn(*args)
        return rtsys.get_allocation_stats().alloc - before, result

    per_argument, _ = allocations(reads, np.zeros(3))
    yield allocations, per_argument
    if not was_enabled:
        _nrt_python.memsys_disable_stats()


def test_w1_gradient_allocates_exactly_one_array(nrt_allocations):
    allocations, per_argument = nrt_allocations
    assert per_argument in (0, 1)
    W1_GRAD(X1)  # compiled, and the dispatch fast path primed
    count, g = allocations(W1_GRAD, X1)
    assert count - per_argument == 1  # the gradient, nothing else
    assert_close(g, w1_grad_hand(X1), rtol=1e-10)
    # The same through the general path (a strided view: copied by NumPy, not Numba).
    strided = np.repeat(X1, 2)[::2]
    count, g = allocations(W1_GRAD, strided)
    assert count - per_argument == 1
    assert_close(g, w1_grad_hand(X1), rtol=1e-10)


def test_w8_gradient_allocates_the_gradient_and_one_scratch_row(nrt_allocations):
    allocations, per_argument = nrt_allocations
    W8_GRAD(LOGITS, LABELS)
    count, g = allocations(W8_GRAD, LOGITS, LABELS)
    n_array_args = 2  # logits and labels (the row index `arange(n)` is an iota, not an array)
    # the gradient and one scratch row (exp of a row, kept for the write pass), once per call
    assert count - n_array_args * per_argument == 2
    assert_close(g, w8_grad_hand(LOGITS, LABELS), rtol=1e-10)


# -- dumping and disabling -------------------------------------------------------------------

def test_dump_dir_writes_ir_plan_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DUMP_DIR", str(tmp_path / "dump"))
    jf = tj.jit(tj.grad(w1))  # a new jitted function: its program is built (and dumped)
    assert_close(jf(X1), W1_GRAD(X1))
    low = jf.lower(X1)
    files = sorted(p.name for p in (tmp_path / "dump").iterdir())
    stem = "w1_" + os.path.basename(low.path)[3:11]
    assert files == [stem + ".ir.txt", stem + ".plan.svg", stem + ".plan.txt", stem + ".py"], \
        files
    assert (tmp_path / "dump" / (stem + ".ir.txt")).read_text() == str(low.ir)
    assert (tmp_path / "dump" / (stem + ".plan.txt")).read_text() == str(low.plan)
    assert (tmp_path / "dump" / (stem + ".py")).read_text() == low.source


def test_disable_jit_context_interprets(compiles):
    jf = tj.jit(tj.value_and_grad(f_xy, argnums=(0, 1)))
    with tj.disable_jit():
        interpreted = jf(XS, YS)
        assert jf._compiled == {} and compiles["build"] == 0
    compiled = jf(XS, YS)
    assert compiles["build"] == 1
    assert_close(compiled, interpreted)
    assert_close(compiled[1], f_xy_grads(XS, YS), rtol=1e-13)
    with tj.disable_jit():  # a compiled signature is not used while disabled either
        assert_close(jf(XS * 2.0, YS), tj.value_and_grad(f_xy, argnums=(0, 1))(XS * 2.0, YS))


def test_disable_jit_environment_variable(tmp_path):
    empty_cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACEJIT_") or k == "TRACEJIT_VECTOR_MATH"}  # same math mode
    env.update(TRACEJIT_DISABLE_JIT="1", TRACEJIT_CACHE_DIR=str(empty_cache))
    np.save(tmp_path / "x.npy", X1)
    out = tmp_path / "g.npy"
    proc = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, str(tmp_path / "x.npy"),
                           str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert not empty_cache.exists() or not list(empty_cache.glob("tj_*.py"))  # nothing built
    assert_close(np.load(out), W1_GRAD(X1))


# -- outputs ---------------------------------------------------------------------------------

def test_outputs_do_not_alias_program_constants():
    jf = tj.jit(lambda x: (np.ones(3), x * 2.0))
    first, _ = jf(np.arange(3.0))
    first[0] = 99.0  # a caller writing into an output ...
    again, _ = jf(np.arange(3.0))
    assert_close(again, np.ones(3))  # ... does not change the next call's result


def test_jitted_callable_keeps_name_and_docs():
    def documented(x):
        """Doubles."""
        return x * 2.0

    jf = tj.jit(documented)
    assert jf.__name__ == "documented" and jf.__doc__ == "Doubles."
    assert_close(jf(np.ones(2)), np.full(2, 2.0))


def _flat(tree):
    return tree_flatten(tree)[0]


def test_lowered_compile_runs_flat_inputs():
    low = W1_VALUE_AND_GRAD.lower(X1[:16])
    outs = low.compile()([X1[:16]])
    assert_close(outs, _flat(tj.value_and_grad(w1)(X1[:16])))
    assert all(isinstance(v, Var) for v in low.ir.invars)


# -- parallel=True ---------------------------------------------------------------------------

def _rows_and_totals(x):
    return {"softmax": nn.softmax(x, axis=1), "total": tnp.sum(tnp.sin(x)),
            "row_max": tnp.max(x, axis=1), "lse": nn.logsumexp(x, axis=1)}


def test_parallel_loops_match_the_interpreter():
    """Above the size threshold the outer loop is a prange (a scalar sum is reduced across
    threads); the values stay those of the interpreter."""
    x = np.random.default_rng(3).standard_normal(20000)
    jvg = tj.jit(tj.value_and_grad(w1), parallel=True)
    assert "numba.prange(" in jvg.lower(x).source
    v, g = jvg(x)
    assert_close((v, g), tj.value_and_grad(w1)(x))
    assert_close(g, w1_grad_hand(x), rtol=1e-10)
    m = np.random.default_rng(4).standard_normal((128, 160))
    jrows = tj.jit(_rows_and_totals, parallel=True)
    assert "numba.prange(" in jrows.lower(m).source
    assert_close(jrows(m), _rows_and_totals(m))


def test_big_arrays_ask_for_huge_pages_small_ones_do_not():
    """A kernel's own big allocations are madvised onto huge pages (Numba's allocator leaves
    them on 4 KiB pages, whose faults cost more than the loop that fills them)."""
    from tracejit.compiler import codegen

    def f(x):
        return tnp.sin(x) * 2.0

    big = np.linspace(-3, 3, (codegen.HUGE_PAGE_MIN_BYTES // 8) + 1000)
    g = tj.jit(f, parallel=False)
    src_big, src_small = g.lower(big).source, g.lower(big[:1000]).source
    assert "_huge_pages(" not in src_small
    if codegen.huge_pages_available():
        assert "_huge_pages(" in src_big
    np.testing.assert_allclose(g(big), np.sin(big) * 2.0, rtol=1e-15, atol=0)
