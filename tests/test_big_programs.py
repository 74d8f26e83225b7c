"""Big programs: unrolled Python loops compile as runs of kernels sharing compiled functions.

A program of many kernels is split into runs, each compiled as one Numba function that a
Python driver calls in turn; the repeated steps of an unrolled loop print equal code, so one
compiled function serves every step. Results must equal the interpreter's, gradients the
finite differences', and compile work must not grow with the number of repeated steps.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from numba.core import event

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.compiler import plan as plan_mod

RNG = np.random.default_rng(20261203)
B, H = 4, 8


def rnn_loss(steps):
    def loss(Wh, Wx, xs):
        h = tnp.zeros((B, H))
        for t in range(steps):
            h = tnp.tanh(h @ Wh + xs[t] @ Wx)
        return tnp.sum(h ** 2)
    return loss


def unrolled_loss(steps):
    def loss(p, x):
        for _ in range(steps):
            x = x + 0.01 * tnp.tanh(p[0] * x + p[1]) - 0.001 * x ** 3
        return tnp.sum(x ** 2)
    return loss


def _compiles(fn):
    """Run `fn`, counting the Numba compilations it starts."""
    with event.install_recorder("numba:compile") as rec:
        out = fn()
    return out, sum(1 for ev in rec.buffer if ev[1].is_start)


def _fd_directional(f, args, argnum, direction, eps=1e-6):
    plus = list(args)
    minus = list(args)
    plus[argnum] = args[argnum] + eps * direction
    minus[argnum] = args[argnum] - eps * direction
    return (f(*plus) - f(*minus)) / (2 * eps)


WH = RNG.standard_normal((H, H)) * 0.3
WX = RNG.standard_normal((H, H)) * 0.3
XS = RNG.standard_normal((12, B, H))


def test_unrolled_rnn_is_split_and_shares_functions():
    loss = rnn_loss(12)
    g = tj.jit(tj.grad(loss, argnums=(0, 1)))
    low = g.lower(WH, WX, XS)
    assert len(low.plan.segments) > 12  # one run per step, forward and backward
    distinct = len(low.generated.segments)
    assert distinct <= 6, distinct
    gh, gx = g(WH, WX, XS)
    want_h, want_x = tj.grad(loss, argnums=(0, 1))(WH, WX, XS)
    np.testing.assert_allclose(gh, want_h, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(gx, want_x, rtol=1e-11, atol=1e-14)
    d = RNG.standard_normal((H, H))
    np.testing.assert_allclose(np.sum(gh * d), _fd_directional(loss, (WH, WX, XS), 0, d),
                               rtol=1e-6)


def test_more_steps_compile_nothing_new():
    """13 steps after 12: the step functions are the ones compiled already."""
    tj.jit(tj.grad(rnn_loss(12), argnums=(0, 1)))(WH, WX, XS)
    xs = RNG.standard_normal((13, B, H))
    g = tj.jit(tj.grad(rnn_loss(13), argnums=(0, 1)))
    (gh, _), compiles = _compiles(lambda: g(WH, WX, xs))
    assert compiles <= 2, compiles  # at most the first and the last step's runs
    want, _ = tj.grad(rnn_loss(13), argnums=(0, 1))(WH, WX, xs)
    np.testing.assert_allclose(gh, want, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unrolled_elementwise_steps_become_blocks(dtype):
    loss = unrolled_loss(40)
    p = np.array([0.7, 0.1], dtype=dtype)
    x = RNG.standard_normal(64).astype(dtype)
    g = tj.jit(tj.value_and_grad(loss))
    low = g.lower(p, x)
    assert len(low.generated.segments) <= 6
    v, gp = g(p, x)
    assert gp.dtype == dtype and np.asarray(v).dtype == dtype
    with tj.disable_jit():
        v_ref, gp_ref = g(p, x)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gp, gp_ref, rtol=rtol)
    np.testing.assert_allclose(v, v_ref, rtol=rtol)
    if dtype == np.float64:
        for k in range(2):
            e = np.eye(2)[k]
            np.testing.assert_allclose(gp[k], _fd_directional(loss, (p, x), 0, e), rtol=1e-6)


def test_lowering_time_is_linear_in_program_size():
    p, x = np.array([0.7, 0.1]), RNG.standard_normal(16)

    def lower_seconds(steps):
        g = tj.jit(tj.grad(unrolled_loss(steps)))
        t0 = time.perf_counter()
        low = g.lower(p, x)
        return time.perf_counter() - t0, len(low.ir.eqns)

    lower_seconds(10)  # warm the imports
    t1, n1 = lower_seconds(60)
    t4, n4 = lower_seconds(240)
    assert n4 >= 3.9 * n1
    assert t4 < 8 * t1 + 0.5, (t1, t4)  # 4x the equations; quadratic would be 16x


def test_control_flow_and_closures_inside_repeated_steps():
    A = RNG.standard_normal((6, 6)) / 6.0

    def loss(x):
        for _ in range(8):
            x = tj.fori_loop(0, 3, lambda i, c: tnp.tanh(A @ c), x) + 0.1 * x
        return tnp.sum(x ** 2)

    x = RNG.standard_normal(6)
    g = tj.jit(tj.grad(loss))
    low = g.lower(x)
    assert repr(float(A[0, 0]))[:10] not in low.source
    np.testing.assert_allclose(g(x), tj.grad(loss)(x), rtol=1e-11)


_STANDALONE = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("prog", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = module.run(*[np.load(sys.argv[2])[k] for k in ("x", "p")])
print(float(out[0]), float(out[1]))
assert "tracejit" not in sys.modules
"""


def test_split_program_saved_runs_without_tracejit(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_mod, "SPLIT_ABOVE_KERNELS", 1)
    monkeypatch.setattr(plan_mod, "MAX_RUN_KERNELS", 1)

    def loss(p, x):
        y = tnp.tanh(p[0] * x) @ x
        return tnp.sum(tnp.sin(y * x) * p[1]) + y

    p, x = np.array([0.3, 2.0]), RNG.standard_normal(5)
    g = tj.jit(tj.grad(loss))
    low = g.lower(p, x)
    assert len(low.plan.segments) > 1 and low.generated.segments
    want = g(p, x)
    path = low.save(str(tmp_path / "saved"))
    np.savez(tmp_path / "inputs.npz", x=p, p=x)
    script = tmp_path / "standalone.py"
    script.write_text(_STANDALONE)
    env = dict(os.environ, PYTHONPATH="")
    out = subprocess.run([sys.executable, str(script), path, str(tmp_path / "inputs.npz")],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose([float(v) for v in out.stdout.split()], want, rtol=1e-14)


def test_while_loop_tapes_cross_runs_and_blocks(monkeypatch):
    """A while loop's reverse mode records a tape in one kernel and replays it in another:
    the tape may cross runs of a split program and repeated blocks."""
    monkeypatch.setattr(plan_mod, "SPLIT_ABOVE_KERNELS", 1)
    monkeypatch.setattr(plan_mod, "MAX_RUN_KERNELS", 1)
    monkeypatch.setattr(plan_mod, "BLOCKS_MIN_EQNS", 4)

    def loss(x):
        for _ in range(3):
            _, x = tj.while_loop(lambda c: c[0] < 3,
                                 lambda c: (c[0] + 1, tnp.sin(c[1]) * 1.1), (0, x))
        return tnp.sum(x ** 2)

    x = RNG.standard_normal(5)
    g = tj.jit(tj.grad(loss))
    assert len(g.lower(x).plan.segments) > 1
    np.testing.assert_allclose(g(x), tj.grad(loss)(x), rtol=1e-12)
    e = RNG.standard_normal(5)
    np.testing.assert_allclose(np.dot(g(x), e), _fd_directional(loss, (x,), 0, e), rtol=1e-6)
