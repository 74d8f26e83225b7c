"""The benchmark workloads (see /work/shared/BENCHMARKS.md) and the systems that compute them.

Each workload has:
- `loss(*args, xp)`: the loss written once in NumPy style against an array namespace `xp`
  (`tracejit.numpy` + `tracejit.nn`, `jax.numpy`, `autograd.numpy`, `drjit`, or torch
  through a small adapter), so every autodiff system differentiates the same code;
- `numpy_grad(*args)`: the hand-derived gradient in plain NumPy (also the reference);
- `numba_kernel(...)`: the hand-derived gradient as fused loops, compiled with `numba_jit`
  (serial, and with `prange` as `numba-hand-parallel` where that helps);
- `make_inputs(size, rng)`: the inputs, from a fixed seed. Trailing Python constants among
  them (`bound_args`, e.g. W5's step count) are bound into the loss by closure before an
  autodiff system transforms it, the way a user fixes a loop length; hand-written gradients
  get them as ordinary arguments.
- `variants`: the same loss written differently (with `scan` instead of `fori_loop` or of an
  unrolled Python loop, with `checkpoint` around the scan body), measured as extra systems
  such as `tracejit-scan`. The `ARGS_VARIANT` ("args") binds nothing: W11 closes over its
  data, and its "args" rows pass the data as arguments instead.

Losses with loops call `xp.fori_loop`, `xp.scan`, `xp.while_loop` and
`xp.checkpoint` (tracejit's control flow, `jax.lax` for JAX).

Outputs: `grad` workloads return the gradient(s); `value_and_grad` workloads return
`(loss, gradients)`. `flatten_output` turns any system's output into `(value, [arrays])`
with dict gradients in sorted-key order, which is how results are compared.

Nothing here imports numba, tracejit or a peer library at module level: a worker process
imports only what the system it measures needs (import time and memory are measured).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SEED = 20240527

# ---------------------------------------------------------------------------------------
# Array namespaces and Numba
# ---------------------------------------------------------------------------------------


class ArrayAPI:
    """An array module (`tracejit.numpy`, `jax.numpy`, ...) plus the few helpers it lacks
    (`logsumexp`, `log_softmax`, ...); attribute lookups fall through to the module."""

    def __init__(self, module, **extras):
        self._module = module
        self.__dict__.update(extras)

    def __getattr__(self, name):
        return getattr(self._module, name)


def bind(loss: Callable, xp, bound: tuple = ()) -> Callable:
    """`loss` with its array namespace and its trailing Python constants (`bound`) fixed:
    a plain function of the workload's array arguments."""

    def f(*args):
        return loss(*args, *bound, xp=xp)

    f.__name__ = f.__qualname__ = loss.__name__
    return f


# The kernels below loop with `prange`. It is plain `range` until `numba_jit` swaps in
# `numba.prange` (which Numba treats as `range` unless parallel=True), so this module never
# imports numba unless a Numba system is measured.
prange = range


def numba_jit(kernel: Callable, parallel: bool = False):
    """Compile a hand-written kernel: serial (or prange-parallel), cached on disk, with
    `error_model='numpy'` (no division-by-zero checks) and without fastmath, the same
    settings tracejit uses by default.

    Numba's cache index does not distinguish `parallel`: the runner gives every system its
    own NUMBA_CACHE_DIR so the serial and parallel builds of one kernel never meet."""
    global prange
    import numba

    prange = numba.prange
    return numba.njit(kernel, cache=True, parallel=parallel, error_model="numpy")


# ---------------------------------------------------------------------------------------
# W1 elementwise (and W6: the same at n = 16)
# ---------------------------------------------------------------------------------------


def w1_loss(x, xp):
    return xp.sum(xp.tanh(x) * xp.sin(x) + xp.exp(-0.5 * x * x))


def w1_numpy_grad(x):
    t = np.tanh(x)
    return (1.0 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)


def w1_numba_kernel(x):
    g = np.empty_like(x)
    for i in prange(x.shape[0]):
        xi = x[i]
        t = math.tanh(xi)
        g[i] = (1.0 - t * t) * math.sin(xi) + t * math.cos(xi) - xi * math.exp(-0.5 * xi * xi)
    return g


def w1_inputs(size, rng):
    return (rng.standard_normal(size["n"]),)


def w1f_numba_kernel(x):
    """W1's gradient in float32 throughout (float32 constants keep float32 arithmetic)."""
    one, half = np.float32(1.0), np.float32(-0.5)
    g = np.empty_like(x)
    for i in prange(x.shape[0]):
        xi = x[i]
        t = math.tanh(xi)
        g[i] = (one - t * t) * math.sin(xi) + t * math.cos(xi) - xi * math.exp(half * xi * xi)
    return g


def w1f_inputs(size, rng):
    return (rng.standard_normal(size["n"]).astype(np.float32),)


# ---------------------------------------------------------------------------------------
# W2 logistic regression: mean(logaddexp(0, -y (X w + b))), value and grad w.r.t. (w, b)
# ---------------------------------------------------------------------------------------


def w2_loss(w, b, X, y, xp):
    return xp.mean(xp.logaddexp(0.0, -y * (X @ w + b)))


def w2_numpy_grad(w, b, X, y):
    n = X.shape[0]
    m = -y * (X @ w + b)
    softplus = np.logaddexp(0.0, m)
    dz = -y * np.exp(m - softplus) / n  # d loss / d (X w + b); exp(m - softplus) = sigmoid(m)
    return softplus.mean(), (X.T @ dz, dz.sum())


def w2_numba_kernel(w, b, X, y):
    n = X.shape[0]
    inv_n = 1.0 / n
    z = np.dot(X, w)
    dz = np.empty(n)
    loss = 0.0
    gb = 0.0
    for i in range(n):
        m = -y[i] * (z[i] + b)
        e = math.exp(-abs(m))
        loss += max(m, 0.0) + math.log1p(e)  # logaddexp(0, m)
        s = 1.0 / (1.0 + e) if m >= 0.0 else e / (1.0 + e)  # sigmoid(m)
        d = -y[i] * s * inv_n
        dz[i] = d
        gb += d
    return loss * inv_n, np.dot(X.T, dz), gb


def w2_inputs(size, rng):
    n, d = size["n"], size["d"]
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    w = 0.1 * rng.standard_normal(d)
    return w, np.float64(0.1), X, y


# ---------------------------------------------------------------------------------------
# W3 MLP 784-256-10, float32, params as a dict, mean softmax cross-entropy
# ---------------------------------------------------------------------------------------


def w3_loss(params, x, labels, xp):
    h = xp.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    logp = xp.log_softmax(logits, axis=1)
    return -xp.mean(logp[xp.arange(x.shape[0]), labels])


def w3_numpy_grad(params, x, labels):
    dt = x.dtype.type
    batch = x.shape[0]
    rows = np.arange(batch)
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - logits[rows, labels])
    dlogits = e / s
    dlogits[rows, labels] -= 1
    dlogits *= dt(1.0 / batch)
    da = (dlogits @ params["W2"].T) * (dt(1) - h * h)
    grads = {"W1": x.T @ da, "b1": da.sum(axis=0),
             "W2": h.T @ dlogits, "b2": dlogits.sum(axis=0)}
    return loss, grads


def w3_numba_kernel(W1, W2, b1, b2, x, labels):
    """Gradients in sorted-key order (W1, W2, b1, b2), like every dict result here."""
    batch, hidden = x.shape[0], W1.shape[1]
    classes = W2.shape[1]
    one = np.float32(1.0)
    inv_b = one / np.float32(batch)
    h = np.dot(x, W1)
    for i in range(batch):
        for j in range(hidden):
            h[i, j] = np.tanh(h[i, j] + b1[j])
    d = np.dot(h, W2)  # logits, then overwritten with d loss / d logits
    gb2 = np.zeros(classes, np.float32)
    loss = 0.0
    for i in range(batch):
        k = labels[i]
        m = d[i, 0] + b2[0]
        for j in range(classes):
            d[i, j] += b2[j]
            m = max(m, d[i, j])
        z_label = d[i, k]
        s = np.float32(0.0)
        for j in range(classes):
            e = np.exp(d[i, j] - m)
            d[i, j] = e
            s += e
        loss += np.log(s) + m - z_label
        scale = inv_b / s
        for j in range(classes):
            d[i, j] *= scale
        d[i, k] -= inv_b
        for j in range(classes):
            gb2[j] += d[i, j]
    gW2 = np.dot(h.T, d)
    da = np.dot(d, W2.T)
    gb1 = np.zeros(hidden, np.float32)
    for i in range(batch):
        for j in range(hidden):
            hij = h[i, j]
            v = da[i, j] * (one - hij * hij)
            da[i, j] = v
            gb1[j] += v
    gW1 = np.dot(x.T, da)
    return np.float32(loss / batch), gW1, gW2, gb1, gb2


def params_numba_args(params, x, labels):
    """A dict workload's arguments for its kernel: the parameters in sorted-key order."""
    return params["W1"], params["W2"], params["b1"], params["b2"], x, labels


def w3_inputs(size, rng):
    batch, n_in, hidden, classes = size["batch"], 784, 256, 10
    f32 = np.float32
    params = {
        "W1": (rng.standard_normal((n_in, hidden)) / math.sqrt(n_in)).astype(f32),
        "b1": (0.01 * rng.standard_normal(hidden)).astype(f32),
        "W2": (rng.standard_normal((hidden, classes)) / math.sqrt(hidden)).astype(f32),
        "b2": (0.01 * rng.standard_normal(classes)).astype(f32),
    }
    x = rng.random((batch, n_in)).astype(f32)
    labels = rng.integers(0, classes, batch)
    return params, x, labels


# ---------------------------------------------------------------------------------------
# W4 Rosenbrock
# ---------------------------------------------------------------------------------------


def w4_loss(x, xp):
    return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def w4_numpy_grad(x):
    a, t = x[:-1], x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400 * a * t - 2 * (1 - a)
    g[1:] += 200 * t
    return g


def w4_numba_kernel(x):
    n = x.shape[0]
    g = np.empty_like(x)
    g[0] = -400.0 * x[0] * (x[1] - x[0] * x[0]) - 2.0 * (1.0 - x[0])
    for i in prange(1, n - 1):
        a = x[i]
        p = x[i - 1]
        g[i] = -400.0 * a * (x[i + 1] - a * a) - 2.0 * (1.0 - a) + 200.0 * (a - p * p)
    g[n - 1] = 200.0 * (x[n - 1] - x[n - 2] * x[n - 2])
    return g


def w4_inputs(size, rng):
    return (rng.uniform(-2.0, 2.0, size["n"]),)


# ---------------------------------------------------------------------------------------
# W8 softmax cross-entropy over logits (4096, 1000): value and grad w.r.t. logits
# ---------------------------------------------------------------------------------------


def w8_loss(logits, labels, xp):
    rows = xp.arange(logits.shape[0])
    return xp.mean(xp.logsumexp(logits, axis=1) - logits[rows, labels])


def w8_numpy_grad(logits, labels):
    n = logits.shape[0]
    rows = np.arange(n)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - logits[rows, labels])
    g = e / s
    g[rows, labels] -= 1.0
    g /= n
    return loss, g


def w8_numba_kernel(logits, labels):
    n, c = logits.shape
    inv_n = 1.0 / n
    g = np.empty_like(logits)
    loss = 0.0
    for i in prange(n):
        m = logits[i, 0]
        for j in range(c):
            m = max(m, logits[i, j])
        s = 0.0
        for j in range(c):
            e = math.exp(logits[i, j] - m)
            g[i, j] = e
            s += e
        k = labels[i]
        loss += math.log(s) + m - logits[i, k]
        scale = inv_n / s
        for j in range(c):
            g[i, j] *= scale
        g[i, k] -= inv_n
    return loss * inv_n, g


def w8_inputs(size, rng):
    n, c = size["n"], size["classes"]
    return 3.0 * rng.standard_normal((n, c)), rng.integers(0, c, n)


# ---------------------------------------------------------------------------------------
# W5 ode-scan: damped pendulum, semi-implicit Euler, grad w.r.t. (k, c)
# (and W10: the same for 1000 independent pendula, to make scan residuals visible in memory)
# ---------------------------------------------------------------------------------------

W5_DT = 1e-3


def w5_loss(k, c, theta0, omega0, steps, xp):
    """fori_loop whose carry holds the running sum of 1e-4 theta_t^2 (t = 1..steps)."""

    def body(i, carry):
        theta, omega, acc = carry
        omega = omega + W5_DT * (-k * xp.sin(theta) - c * omega)
        theta = theta + W5_DT * omega
        return theta, omega, acc + 1e-4 * theta * theta

    theta, _, acc = xp.fori_loop(0, steps, body, (theta0, omega0, 0.0 * theta0))
    return (theta - 0.3) ** 2 + acc


def w5_scan_loss(k, c, theta0, omega0, steps, xp, checkpoint=False):
    """scan producing the stacked theta_t (t = 1..steps), summed afterwards."""

    def step(carry, _):
        theta, omega = carry
        omega = omega + W5_DT * (-k * xp.sin(theta) - c * omega)
        theta = theta + W5_DT * omega
        return (theta, omega), theta

    if checkpoint:
        step = xp.checkpoint(step)
    (theta, _), thetas = xp.scan(step, (theta0, omega0), None, length=steps)
    return (theta - 0.3) ** 2 + xp.sum(1e-4 * thetas * thetas)


def w5_checkpoint_loss(k, c, theta0, omega0, steps, xp):
    """W5's scan loss with the scan body under `checkpoint`."""
    return w5_scan_loss(k, c, theta0, omega0, steps, xp, checkpoint=True)


def w5_numpy_grad(k, c, theta0, omega0, steps):
    """Forward loop storing the trajectory, then the adjoint loop backwards. Written with
    NumPy functions, so it serves W5 (scalars) and W10 (a vector of pendula) alike."""
    shape = np.shape(theta0)
    theta = np.empty((steps + 1,) + shape)
    omega = np.empty((steps + 1,) + shape)
    theta[0], omega[0] = theta0, omega0
    for t in range(steps):
        omega[t + 1] = omega[t] + W5_DT * (-k * np.sin(theta[t]) - c * omega[t])
        theta[t + 1] = theta[t] + W5_DT * omega[t + 1]
    g_theta = 2.0 * (theta[steps] - 0.3)  # adjoints of theta_t, omega_t
    g_omega = np.zeros(shape)
    g_k, g_c = np.zeros(np.shape(k)), 0.0
    for t in range(steps - 1, -1, -1):
        g_theta = g_theta + 2e-4 * theta[t + 1]  # the sum term at t + 1
        g_omega = g_omega + W5_DT * g_theta  # theta_{t+1} = theta_t + dt omega_{t+1}
        # omega_{t+1} = omega_t + dt (-k sin(theta_t) - c omega_t)
        g_k = g_k - W5_DT * g_omega * np.sin(theta[t])
        g_c = g_c - W5_DT * np.sum(g_omega * omega[t])
        g_theta = g_theta - W5_DT * k * g_omega * np.cos(theta[t])
        g_omega = g_omega * (1.0 - W5_DT * c)
    return g_k, g_c


def w5_numba_kernel(k, c, theta0, omega0, steps):
    theta = np.empty(steps + 1)
    omega = np.empty(steps + 1)
    sin_theta = np.empty(steps)
    theta[0] = theta0
    omega[0] = omega0
    for t in range(steps):
        s = math.sin(theta[t])
        sin_theta[t] = s
        omega[t + 1] = omega[t] + W5_DT * (-k * s - c * omega[t])
        theta[t + 1] = theta[t] + W5_DT * omega[t + 1]
    g_theta = 2.0 * (theta[steps] - 0.3)
    g_omega = 0.0
    g_k = 0.0
    g_c = 0.0
    for t in range(steps - 1, -1, -1):
        g_theta += 2e-4 * theta[t + 1]
        g_omega += W5_DT * g_theta
        g_k -= W5_DT * g_omega * sin_theta[t]
        g_c -= W5_DT * g_omega * omega[t]
        g_theta -= W5_DT * k * g_omega * math.cos(theta[t])
        g_omega *= 1.0 - W5_DT * c
    return g_k, g_c


def w5_inputs(size, rng):
    return np.float64(9.81), np.float64(0.1), np.float64(1.0), np.float64(0.0), size["T"]


def w10_loss(k, c, theta0, omega0, steps, xp, checkpoint=False):
    """W5 for a vector of pendula: the scan carries two (n,) states and emits each step's
    sum of theta^2, so the backward pass needs a few (n,) arrays per step (at least the
    carry, which is all that `checkpoint` keeps)."""

    def step(carry, _):
        theta, omega = carry
        omega = omega + W5_DT * (-k * xp.sin(theta) - c * omega)
        theta = theta + W5_DT * omega
        return (theta, omega), xp.sum(theta * theta)

    if checkpoint:
        step = xp.checkpoint(step)
    (theta, _), sq = xp.scan(step, (theta0, omega0), None, length=steps)
    return xp.sum((theta - 0.3) ** 2) + 1e-4 * xp.sum(sq)


def w10_checkpoint_loss(k, c, theta0, omega0, steps, xp):
    """W10 with the scan body under `checkpoint`."""
    return w10_loss(k, c, theta0, omega0, steps, xp, checkpoint=True)


def w10_numba_kernel(k, c, theta0, omega0, steps):
    """The pendula are independent: each one's trajectory is integrated and its adjoint run
    in turn, in O(steps) scratch (the hand-written code knows the structure)."""
    n = theta0.shape[0]
    theta = np.empty(steps + 1)
    omega = np.empty(steps + 1)
    sin_theta = np.empty(steps)
    g_k = np.empty(n)
    g_c = 0.0
    for i in range(n):
        ki = k[i]
        theta[0] = theta0[i]
        omega[0] = omega0[i]
        for t in range(steps):
            s = math.sin(theta[t])
            sin_theta[t] = s
            omega[t + 1] = omega[t] + W5_DT * (-ki * s - c * omega[t])
            theta[t + 1] = theta[t] + W5_DT * omega[t + 1]
        g_theta = 2.0 * (theta[steps] - 0.3)
        g_omega = 0.0
        gki = 0.0
        for t in range(steps - 1, -1, -1):
            g_theta += 2e-4 * theta[t + 1]
            g_omega += W5_DT * g_theta
            gki -= W5_DT * g_omega * sin_theta[t]
            g_c -= W5_DT * g_omega * omega[t]
            g_theta -= W5_DT * ki * g_omega * math.cos(theta[t])
            g_omega *= 1.0 - W5_DT * c
        g_k[i] = gki
    return g_k, g_c


def w10_inputs(size, rng):
    n = size["n"]
    k = 9.81 * (1.0 + 0.1 * rng.uniform(-1.0, 1.0, n))
    return k, np.float64(0.1), rng.uniform(0.5, 1.5, n), np.zeros(n), size["T"]


# ---------------------------------------------------------------------------------------
# W7 while-newton (not in BENCHMARKS.md): solve x^3 + x = a elementwise by Newton's method
# until max|x^3 + x - a| < 1e-12, loss sum(x^2), grad w.r.t. a
# ---------------------------------------------------------------------------------------

W7_TOL = 1e-12
W7_MAX_ITERATIONS = 50


def w7_loss(a, xp):
    def unconverged(x):
        return xp.max(xp.abs(x * x * x + x - a)) >= W7_TOL

    def newton_step(x):
        return x - (x * x * x + x - a) / (3.0 * x * x + 1.0)

    # No bound: reverse mode records each step on a tape as long as the loop runs.
    x = xp.while_loop(unconverged, newton_step, a)
    return xp.sum(x * x)


def w7_numpy_grad(a):
    """The reference: Newton's method to the root, then the implicit-function gradient
    d sum(x^2) / da = 2x / (3x^2 + 1), exact for the root. Differentiating the Newton
    iterations (what every other system does) converges to it, so they differ by about
    the solver's tolerance, not by rounding alone."""
    x = a.copy()
    for _ in range(W7_MAX_ITERATIONS):
        f = x * x * x + x - a
        if np.max(np.abs(f)) < W7_TOL:
            break
        x = x - f / (3.0 * x * x + 1.0)
    return 2.0 * x / (3.0 * x * x + 1.0)


def w7_numba_kernel(a):
    """Newton forward, storing every iterate, for the recorded trip count; then each
    element's adjoint through the same steps in reverse. One Newton step is
    x' = x - f/d with f = x^3 + x - a, d = 3x^2 + 1: dx'/dx = 6 x f / d^2, dx'/da = 1/d."""
    n = a.shape[0]
    tape = np.empty((W7_MAX_ITERATIONS + 1, n))
    worst = 0.0
    for i in range(n):
        x = a[i]
        tape[0, i] = x
        worst = max(worst, abs(x * x * x + x - a[i]))
    steps = 0
    while steps < W7_MAX_ITERATIONS and worst >= W7_TOL:
        worst = 0.0
        for i in range(n):
            x = tape[steps, i]
            x = x - (x * x * x + x - a[i]) / (3.0 * x * x + 1.0)
            tape[steps + 1, i] = x
            worst = max(worst, abs(x * x * x + x - a[i]))
        steps += 1
    g = np.empty(n)
    for i in range(n):
        x_bar = 2.0 * tape[steps, i]
        a_bar = 0.0
        for s in range(steps - 1, -1, -1):
            x = tape[s, i]
            d = 3.0 * x * x + 1.0
            a_bar += x_bar / d
            x_bar *= 6.0 * x * (x * x * x + x - a[i]) / (d * d)
        g[i] = a_bar + x_bar  # x_0 = a
    return g


def w7_inputs(size, rng):
    return (2.0 * rng.standard_normal(size["n"]),)


# ---------------------------------------------------------------------------------------
# W11 closure-data: W2 with X and y bound by closure (program constants) instead of passed
# ---------------------------------------------------------------------------------------

# The loss is W2's; W11 binds its trailing inputs (X, y) into it by closure (`bound_args`),
# and its "args" variant passes them as arguments (W2 itself) for the row beside it.
ARGS_VARIANT = "args"


# ---------------------------------------------------------------------------------------
# W12 unrolled Python loops: compile time of a long straight-line program
# (W12A: the recurrence of BENCHMARKS.md; W12B: a small RNN)
# ---------------------------------------------------------------------------------------

W12_RATE, W12_CUBIC = 0.01, 0.001


def w12a_loss(p, x, steps, xp):
    """`steps` copies of the update in one straight-line program (the Python loop unrolls
    while tracing): what compile time looks like when nobody writes `fori_loop`."""
    for _ in range(steps):
        x = x + W12_RATE * xp.tanh(p[0] * x + p[1]) - W12_CUBIC * x ** 3
    return xp.sum(x ** 2)


def w12a_scan_loss(p, x, steps, xp):
    """The same recurrence as one `fori_loop`: the program the unrolled one is compared
    with for steady time."""

    def body(i, x):
        return x + W12_RATE * xp.tanh(p[0] * x + p[1]) - W12_CUBIC * x ** 3

    return xp.sum(xp.fori_loop(0, steps, body, x) ** 2)


def w12a_numpy_grad(p, x0, steps):
    """Forward storing every x_t and tanh, then the adjoint of x backwards, accumulating
    d/dp0 and d/dp1 on the way."""
    xs = np.empty((steps + 1,) + x0.shape)
    ths = np.empty((steps,) + x0.shape)
    xs[0] = x0
    for t in range(steps):
        x = xs[t]
        ths[t] = np.tanh(p[0] * x + p[1])
        xs[t + 1] = x + W12_RATE * ths[t] - W12_CUBIC * x ** 3
    g_x = 2.0 * xs[steps]
    g_p = np.zeros(2)
    for t in range(steps - 1, -1, -1):
        x = xs[t]
        d = W12_RATE * (1.0 - ths[t] ** 2) * g_x  # adjoint of the tanh argument
        g_p[0] += np.sum(d * x)
        g_p[1] += np.sum(d)
        g_x = g_x * (1.0 - 3.0 * W12_CUBIC * x * x) + d * p[0]
    return g_p


def w12a_numba_kernel(p, x0, steps):
    """Elements are independent: each one's trajectory forward, then its adjoint, in O(steps)
    scratch."""
    p0, p1 = p[0], p[1]
    xs = np.empty(steps)
    ths = np.empty(steps)
    g0 = 0.0
    g1 = 0.0
    for i in range(x0.shape[0]):
        x = x0[i]
        for t in range(steps):
            th = math.tanh(p0 * x + p1)
            xs[t] = x
            ths[t] = th
            x = x + W12_RATE * th - W12_CUBIC * x * x * x
        g_x = 2.0 * x
        for t in range(steps - 1, -1, -1):
            x = xs[t]
            th = ths[t]
            d = W12_RATE * (1.0 - th * th) * g_x
            g0 += d * x
            g1 += d
            g_x = g_x * (1.0 - 3.0 * W12_CUBIC * x * x) + d * p0
    g = np.empty(2)
    g[0] = g0
    g[1] = g1
    return g


def w12a_inputs(size, rng):
    return np.array([0.8, 0.1]), rng.uniform(-1.0, 1.0, 1000), size["S"]


def w12b_loss(Wh, Wx, h0, xs, xp):
    """An RNN unrolled by a Python loop over the leading axis of xs (its length is static)."""
    h = h0
    for t in range(xs.shape[0]):
        h = xp.tanh(h @ Wh + xs[t] @ Wx)
    return xp.sum(h ** 2)


def w12b_scan_loss(Wh, Wx, h0, xs, xp):
    """The same RNN as one `scan` over xs."""

    def step(h, x):
        return xp.tanh(h @ Wh + x @ Wx), None

    h, _ = xp.scan(step, h0, xs)
    return xp.sum(h ** 2)


def w12b_numpy_grad(Wh, Wx, h0, xs):
    steps = xs.shape[0]
    hs = np.empty((steps + 1,) + h0.shape)
    hs[0] = h0
    for t in range(steps):
        hs[t + 1] = np.tanh(hs[t] @ Wh + xs[t] @ Wx)
    g_h = 2.0 * hs[steps]
    g_wh = np.zeros_like(Wh)
    g_wx = np.zeros_like(Wx)
    for t in range(steps - 1, -1, -1):
        g_a = g_h * (1.0 - hs[t + 1] ** 2)  # adjoint of h_t @ Wh + xs[t] @ Wx
        g_wh += hs[t].T @ g_a
        g_wx += xs[t].T @ g_a
        g_h = g_a @ Wh.T
    return g_wh, g_wx


def w12b_numba_kernel(Wh, Wx, h0, xs):
    steps = xs.shape[0]
    rows, hidden = h0.shape
    hs = np.empty((steps + 1, rows, hidden))
    hs[0] = h0
    for t in range(steps):
        hs[t + 1] = np.tanh(np.dot(hs[t], Wh) + np.dot(xs[t], Wx))
    g_h = 2.0 * hs[steps]
    g_wh = np.zeros_like(Wh)
    g_wx = np.zeros_like(Wx)
    g_a = np.empty((rows, hidden))
    for t in range(steps - 1, -1, -1):
        for i in range(rows):
            for j in range(hidden):
                h = hs[t + 1, i, j]
                g_a[i, j] = g_h[i, j] * (1.0 - h * h)
        g_wh += np.dot(hs[t].T, g_a)
        g_wx += np.dot(xs[t].T, g_a)
        g_h = np.dot(g_a, Wh.T)
    return g_wh, g_wx


def w12b_inputs(size, rng):
    rows, hidden = 32, 64
    scale = 0.5 / math.sqrt(hidden)  # keeps tanh out of saturation over 50 steps
    Wh = scale * rng.standard_normal((hidden, hidden))
    Wx = scale * rng.standard_normal((hidden, hidden))
    xs = rng.standard_normal((size["S"], rows, hidden))
    return Wh, Wx, np.zeros((rows, hidden)), xs


# ---------------------------------------------------------------------------------------
# W16 small-mlp: per-call latency of a 16-example training step, params as a dict
# ---------------------------------------------------------------------------------------


def w16_loss(params, X, Y, xp):
    out = xp.tanh(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
    return xp.mean((out - Y) ** 2)


def w16_numpy_grad(params, X, Y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    r = h @ params["W2"] + params["b2"] - Y
    d_out = (2.0 / r.size) * r
    d_a = (d_out @ params["W2"].T) * (1.0 - h * h)
    grads = {"W1": X.T @ d_a, "b1": d_a.sum(axis=0),
             "W2": h.T @ d_out, "b2": d_out.sum(axis=0)}
    return np.mean(r * r), grads


def w16_numba_kernel(W1, W2, b1, b2, X, Y):
    """One example at a time, plain loops with the contiguous index innermost: at these
    sizes a BLAS call costs more than it saves. Gradients in sorted-key order (W1, W2, b1,
    b2)."""
    n, n_in = X.shape
    hidden, n_out = W2.shape
    scale = 2.0 / (n * n_out)
    h = np.empty(hidden)
    d_a = np.empty(hidden)
    d_out = np.empty(n_out)
    g_w1 = np.zeros((n_in, hidden))
    g_w2 = np.zeros((hidden, n_out))
    g_b1 = np.zeros(hidden)
    g_b2 = np.zeros(n_out)
    loss = 0.0
    for i in range(n):
        h[:] = b1
        for k in range(n_in):
            xk = X[i, k]
            for j in range(hidden):
                h[j] += xk * W1[k, j]
        for j in range(hidden):
            h[j] = math.tanh(h[j])
        d_out[:] = b2
        for k in range(hidden):
            hk = h[k]
            for j in range(n_out):
                d_out[j] += hk * W2[k, j]
        for j in range(n_out):
            r = d_out[j] - Y[i, j]
            loss += r * r
            d_out[j] = scale * r
            g_b2[j] += scale * r
        for k in range(hidden):
            hk = h[k]
            s = 0.0
            for j in range(n_out):
                s += d_out[j] * W2[k, j]
                g_w2[k, j] += hk * d_out[j]
            d_a[k] = s * (1.0 - hk * hk)
            g_b1[k] += d_a[k]
        for k in range(n_in):
            xk = X[i, k]
            for j in range(hidden):
                g_w1[k, j] += xk * d_a[j]
    return loss / (n * n_out), g_w1, g_w2, g_b1, g_b2


def w16_inputs(size, rng):
    n, n_in, hidden, n_out = size["n"], 32, 64, 10
    params = {"W1": rng.standard_normal((n_in, hidden)) / math.sqrt(n_in),
              "b1": 0.01 * rng.standard_normal(hidden),
              "W2": rng.standard_normal((hidden, n_out)) / math.sqrt(hidden),
              "b2": 0.01 * rng.standard_normal(n_out)}
    return params, rng.standard_normal((n, n_in)), rng.standard_normal((n, n_out))


# ---------------------------------------------------------------------------------------
# W9 per-example gradients: W2's loss per example, d loss_i / d w for every row of X
# ---------------------------------------------------------------------------------------


def w9_loss(w, x, y, xp):
    """One example's logistic loss (x (d,), y a 0/1 label): vmapped over the rows of X."""
    z = x @ w
    return xp.logaddexp(0.0, z) - y * z


def w9_numpy_grad(w, X, y):
    z = X @ w
    return (0.5 * (1.0 + np.tanh(0.5 * z)) - y)[:, None] * X  # sigmoid(z) - y, per row


def w9_numba_kernel(w, X, y):
    n, d = X.shape
    g = np.empty((n, d))
    for i in prange(n):
        z = 0.0
        for k in range(d):
            z += X[i, k] * w[k]
        if z >= 0.0:
            s = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            s = e / (1.0 + e)
        c = s - y[i]
        for k in range(d):
            g[i, k] = c * X[i, k]
    return g


def w9_inputs(size, rng):
    n, d = size["n"], size["d"]
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(np.float64)
    return 0.1 * rng.standard_normal(d), X, y


# ---------------------------------------------------------------------------------------
# The table of workloads
# ---------------------------------------------------------------------------------------


_NO_LOOPS = {name: "this adapter has no loop primitive (a Python loop would be unrolled "
             "or run eagerly step by step)" for name in ("torch", "torch-compile", "autograd")}


@dataclass(frozen=True)
class Case:
    label: str  # e.g. "n=1e6"; unique within its workload
    size: dict


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    wrt: str
    dtype: str
    loss: Callable
    numpy_grad: Callable
    numba_kernel: Callable
    make_inputs: Callable
    cases: tuple[Case, ...]
    quick_cases: tuple[Case, ...]
    argnums: int | tuple[int, ...] = 0
    value_and_grad: bool = False
    numba_args: Callable = field(default=lambda *args: args)
    parallel: bool = False  # run numba-hand-parallel
    unit: str = "ms"
    latency: bool = False  # per-call latency of an already compiled gradient (W6)
    bound_args: int = 0  # trailing inputs bound into the loss as Python constants
    variants: dict = field(default_factory=dict)  # variant name -> loss (extra systems)
    unsupported: dict = field(default_factory=dict)  # system -> why it is not run
    note: str = ""  # printed under the workload's tables
    timeout: tuple[float, float] | None = None  # worker timeout (quick, full), if not default
    lower_stats: bool = False  # also time tracejit's lower() and size its generated source
    compile_first: bool = False  # first-call time is the headline: its column comes first
    in_axes: tuple | None = None  # per-example gradients: vmap(grad(loss), in_axes)

    def case(self, label: str) -> Case:
        for c in self.cases + self.quick_cases:
            if c.label == label:
                return c
        raise KeyError(f"{self.id} has no case {label!r}")

    def inputs(self, case: Case) -> tuple:
        return self.make_inputs(case.size, np.random.default_rng(SEED))

    @property
    def computes(self) -> str:
        return "value_and_grad" if self.value_and_grad else "grad"


def _n(n: int) -> Case:
    return Case(f"n=1e{round(math.log10(n))}", {"n": n})


WORKLOADS: dict[str, Workload] = {w.id: w for w in [
    Workload("W1", "elementwise: sum(tanh(x) sin(x) + exp(-x^2/2))", "x", "float64",
             w1_loss, w1_numpy_grad, w1_numba_kernel, w1_inputs,
             cases=(_n(10**6), _n(10**7)), quick_cases=(_n(10**5), _n(10**6)), parallel=True),
    Workload("W1F", "elementwise, float32: W1's sum(tanh(x) sin(x) + exp(-x^2/2))", "x",
             "float32", w1_loss, w1_numpy_grad, w1f_numba_kernel, w1f_inputs,
             cases=(_n(10**6), _n(10**7)), quick_cases=(_n(10**5), _n(10**6)), parallel=True),
    Workload("W2", "logreg: mean(logaddexp(0, -y (X w + b)))", "w, b", "float64",
             w2_loss, w2_numpy_grad, w2_numba_kernel, w2_inputs,
             cases=(Case("X (20000,100)", {"n": 20000, "d": 100}),),
             quick_cases=(Case("X (5000,100)", {"n": 5000, "d": 100}),),
             argnums=(0, 1), value_and_grad=True),
    Workload("W3", "MLP 784-256-10: softmax cross-entropy of tanh(x W1 + b1) W2 + b2",
             "params dict {W1, W2, b1, b2}", "float32",
             w3_loss, w3_numpy_grad, w3_numba_kernel, w3_inputs,
             cases=(Case("batch 256", {"batch": 256}),),
             quick_cases=(Case("batch 64", {"batch": 64}),),
             value_and_grad=True, numba_args=params_numba_args),
    Workload("W4", "rosenbrock: sum(100 (x[1:] - x[:-1]^2)^2 + (1 - x[:-1])^2)", "x",
             "float64", w4_loss, w4_numpy_grad, w4_numba_kernel, w4_inputs,
             cases=(_n(10**6),), quick_cases=(_n(10**5),), parallel=True),
    Workload("W6", "small: W1 at n = 16, per-call latency of the compiled gradient", "x",
             "float64", w1_loss, w1_numpy_grad, w1_numba_kernel, w1_inputs,
             cases=(Case("n=16", {"n": 16}),), quick_cases=(Case("n=16", {"n": 16}),),
             unit="us", latency=True),
    Workload("W8", "softmax cross-entropy: mean(logsumexp(logits, 1) - logits[i, label_i])",
             "logits", "float64", w8_loss, w8_numpy_grad, w8_numba_kernel, w8_inputs,
             cases=(Case("logits (4096,1000)", {"n": 4096, "classes": 1000}),),
             quick_cases=(Case("logits (1024,1000)", {"n": 1024, "classes": 1000}),),
             value_and_grad=True, parallel=True),
    Workload("W5", "ode-scan: damped pendulum, semi-implicit Euler, dt = 1e-3; "
             "(theta_T - 0.3)^2 + sum_t 1e-4 theta_t^2", "k, c", "float64",
             w5_loss, w5_numpy_grad, w5_numba_kernel, w5_inputs,
             cases=(Case("T=10000", {"T": 10000}),), quick_cases=(Case("T=2000", {"T": 2000}),),
             argnums=(0, 1), bound_args=1,
             variants={"scan": w5_scan_loss, "checkpoint": w5_checkpoint_loss},
             unsupported=_NO_LOOPS,
             note="tracejit is `fori_loop` with the running sum in the carry; tracejit-scan "
                  "is `scan` returning the stacked theta_t, summed afterwards; "
                  "tracejit-checkpoint is that scan with `checkpoint` around its body."),
    Workload("W7", "while-newton: x^3 + x = a by Newton until max|f| < 1e-12 "
             "(while_loop, unbounded; the hand kernel caps at 50); sum(x^2)", "a", "float64",
             w7_loss, w7_numpy_grad, w7_numba_kernel, w7_inputs,
             cases=(_n(1000),), quick_cases=(_n(1000),), unit="us",
             unsupported={**_NO_LOOPS, "jax": "jax.lax.while_loop has no reverse-mode "
                          "derivative"},
             note="Not in BENCHMARKS.md. numpy-hand (the reference) is the implicit-function "
                  "gradient 2x/(3x^2+1) at the converged root; the others differentiate "
                  "the Newton iterations, so their error is how far that is from the "
                  "exact derivative of the root."),
    Workload("W10", "ode-scan-wide: W5 for n independent pendula (k per pendulum), scan "
             "emitting each step's sum(theta^2)", "k, c", "float64",
             w10_loss, w5_numpy_grad, w10_numba_kernel, w10_inputs,
             cases=(Case("n=1000, T=2000", {"n": 1000, "T": 2000}),),
             quick_cases=(Case("n=1000, T=500", {"n": 1000, "T": 500}),),
             argnums=(0, 1), bound_args=1, variants={"checkpoint": w10_checkpoint_loss},
             unsupported=_NO_LOOPS,
             note="Not in BENCHMARKS.md: the `checkpoint` memory comparison. Each step's "
                  "carry is two (n,) float64 arrays; what the backward pass keeps per step "
                  "is visible in *call MB*. numba-hand runs one pendulum at a time and "
                  "needs only O(T) scratch."),
    Workload("W11", "closure-data: W2's loss with X, y bound by closure, not passed", "w, b",
             "float64", w2_loss, w2_numpy_grad, w2_numba_kernel, w2_inputs,
             cases=(Case("X (20000,100)", {"n": 20000, "d": 100}),),
             quick_cases=(Case("X (5000,100)", {"n": 5000, "d": 100}),),
             argnums=(0, 1), value_and_grad=True, bound_args=2,
             variants={ARGS_VARIANT: w2_loss}, timeout=(300, 900), lower_stats=True,
             note="tracejit and jax close over X, y (NumPy arrays for tracejit, `jnp` arrays "
                  "for JAX); tracejit-args and jax-args get them as arguments, which is W2. "
                  "numpy-hand and numba-hand take them as arguments."),
    Workload("W12A", "unrolled: S Python-loop steps of x += 0.01 tanh(p0 x + p1) - "
             "0.001 x^3, x (1000,); sum(x^2)", "p", "float64",
             w12a_loss, w12a_numpy_grad, w12a_numba_kernel, w12a_inputs,
             cases=(Case("S=100", {"S": 100}), Case("S=400", {"S": 400})),
             quick_cases=(Case("S=100", {"S": 100}),),
             bound_args=1, variants={"scan": w12a_scan_loss},
             timeout=(600, 1800), lower_stats=True, compile_first=True,
             note="tracejit and jax trace the Python loop into S copies of the step; "
                  "tracejit-scan is the same recurrence as one `fori_loop`."),
    Workload("W12B", "unrolled RNN: S steps of h = tanh(h Wh + xs[t] Wx), h (32,64); "
             "sum(h^2)", "Wh, Wx", "float64",
             w12b_loss, w12b_numpy_grad, w12b_numba_kernel, w12b_inputs,
             cases=(Case("S=10", {"S": 10}), Case("S=25", {"S": 25}), Case("S=50", {"S": 50})),
             quick_cases=(Case("S=10", {"S": 10}), Case("S=25", {"S": 25})),
             argnums=(0, 1), variants={"scan": w12b_scan_loss},
             timeout=(600, 1800), lower_stats=True, compile_first=True,
             note="Not in BENCHMARKS.md. tracejit and jax trace the Python loop into S "
                  "copies of the step; tracejit-scan is the same RNN as one `scan` over xs."),
    Workload("W9", "per-example: W2's loss per example, gradient per row via vmap(grad)",
             "w", "float64", w9_loss, w9_numpy_grad, w9_numba_kernel, w9_inputs,
             cases=(Case("X (4096,64)", {"n": 4096, "d": 64}),),
             quick_cases=(Case("X (4096,64)", {"n": 4096, "d": 64}),),
             in_axes=(None, 0, 0), parallel=True,
             unsupported={"autograd": "no vmap", "torch-compile": "torch.func.vmap only"},
             note="Per-example gradients (4096, 64): tracejit jit(vmap(grad)), JAX "
                  "jit(vmap(grad)), torch.func.vmap(grad); numba-hand is one fused loop."),
    Workload("W16", "small-mlp: 16 examples, mean squared error of tanh(X W1 + b1) W2 + b2, "
             "per-call latency", "params dict {W1, W2, b1, b2}", "float64",
             w16_loss, w16_numpy_grad, w16_numba_kernel, w16_inputs,
             cases=(Case("X (16,32), W1 (32,64), W2 (64,10)", {"n": 16}),),
             quick_cases=(Case("X (16,32), W1 (32,64), W2 (64,10)", {"n": 16}),),
             value_and_grad=True, numba_args=params_numba_args, unit="us", latency=True,
             note="Not in BENCHMARKS.md. One training step's value and gradient; every "
                  "system returns NumPy-convertible results (jax: after block_until_ready)."),
]}

# Requesting one of these ids runs the workloads it names.
GROUPS = {"W12": ("W12A", "W12B")}

# Workloads of BENCHMARKS.md that need tracejit features which do not exist yet.
NOT_YET: dict[str, str] = {}


# ---------------------------------------------------------------------------------------
# Systems: how each one builds the gradient function of a workload
# ---------------------------------------------------------------------------------------


def _wrt_leaves(args, argnums):
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    return [leaf for i in nums for leaf in flatten(args[i])]


def _loss_and_args(wl: Workload, inputs, variant: str | None = None):
    """(the loss to transform, its array arguments, the trailing constants to bind). The
    `ARGS_VARIANT` binds nothing: every input is an argument."""
    n = len(inputs) - (0 if variant == ARGS_VARIANT else wl.bound_args)
    loss = wl.variants[variant] if variant else wl.loss
    return loss, tuple(inputs[:n]), tuple(inputs[n:])


def build_numpy_hand(wl: Workload, inputs):
    return wl.numpy_grad, inputs


def build_numba_hand(wl: Workload, inputs, parallel=False):
    return numba_jit(wl.numba_kernel, parallel), wl.numba_args(*inputs)


def build_tracejit(wl: Workload, inputs, parallel=None, variant=None):
    import tracejit as tj
    import tracejit.nn as tnn
    import tracejit.numpy as tnp

    xp = ArrayAPI(tnp, logsumexp=tnn.logsumexp, log_softmax=tnn.log_softmax,
                  fori_loop=tj.fori_loop, scan=tj.scan, while_loop=tj.while_loop,
                  checkpoint=tj.checkpoint)
    loss, args, bound = _loss_and_args(wl, inputs, variant)
    transform = tj.value_and_grad if wl.value_and_grad else tj.grad
    # parallel: True forces threads, False one thread, None (tracejit's default) threads big
    # kernels when a fork-safe threading layer is there.
    options = {} if parallel is None else {"parallel": parallel}
    g = transform(bind(loss, xp, bound), argnums=wl.argnums)
    if wl.in_axes is not None:
        g = tj.vmap(g, in_axes=wl.in_axes)
    return tj.jit(g, **options), args


def build_jax(wl: Workload, inputs, variant=None):
    import jax
    import jax.numpy as jnp

    xp = ArrayAPI(jnp, logsumexp=jax.nn.logsumexp, log_softmax=jax.nn.log_softmax,
                  fori_loop=jax.lax.fori_loop, scan=jax.lax.scan, checkpoint=jax.checkpoint)
    loss, args, bound = _loss_and_args(wl, inputs, variant)
    # Bound arrays (W11's X, y) are closed over as device arrays, the way a JAX user holds
    # data; Python constants (W5's step count) stay Python constants.
    bound = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in bound)
    transform = jax.value_and_grad if wl.value_and_grad else jax.grad
    g = transform(bind(loss, xp, bound), argnums=wl.argnums)
    g = jax.jit(g if wl.in_axes is None else jax.vmap(g, in_axes=wl.in_axes))
    args = jax.tree_util.tree_map(jnp.asarray, args)
    return (lambda *a: jax.block_until_ready(g(*a))), args


def build_torch(wl: Workload, inputs, compiled=False):
    import torch

    xp = ArrayAPI(
        torch,
        logaddexp=lambda a, b: torch.logaddexp(torch.as_tensor(a, dtype=b.dtype), b),
        logsumexp=lambda x, axis: torch.logsumexp(x, dim=axis),
        log_softmax=lambda x, axis: torch.log_softmax(x, dim=axis),
    )

    def to_torch(a):
        if isinstance(a, dict):
            return {k: to_torch(v) for k, v in a.items()}
        return torch.from_numpy(a) if isinstance(a, np.ndarray) else torch.tensor(a)

    loss, args, bound = _loss_and_args(wl, inputs)
    args = tuple(to_torch(a) for a in args)
    bound = tuple(to_torch(a) if isinstance(a, np.ndarray) else a for a in bound)
    if wl.in_axes is not None:  # per-example gradients: torch.func
        from torch.func import grad, vmap
        per_example = vmap(grad(bind(loss, xp, bound), argnums=wl.argnums),
                           in_dims=wl.in_axes)
        return per_example, args
    wrt = _wrt_leaves(args, wl.argnums)
    for t in wrt:
        t.requires_grad_(True)
    loss = bind(loss, xp, bound)
    if compiled:
        loss = torch.compile(loss)

    def step(*a):
        value = loss(*a)
        grads = torch.autograd.grad(value, wrt)
        return (value.detach(), grads) if wl.value_and_grad else grads

    return step, args


def build_autograd(wl: Workload, inputs):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    xp = ArrayAPI(anp, logsumexp=logsumexp,
                  log_softmax=lambda x, axis: x - logsumexp(x, axis=axis, keepdims=True))
    loss, args, bound = _loss_and_args(wl, inputs)
    loss = bind(loss, xp, bound)
    transform = autograd.value_and_grad if wl.value_and_grad else autograd.grad
    if isinstance(wl.argnums, int):
        return transform(loss, wl.argnums), args
    nums = wl.argnums  # autograd differentiates one argument: pack the others into it

    def packed(wrt, *rest):
        rest = list(rest)
        args = [wrt[nums.index(i)] if i in nums else rest.pop(0)
                for i in range(len(nums) + len(rest))]
        return loss(*args)

    g = transform(packed, 0)

    def step(*a):
        return g(tuple(a[i] for i in nums), *[v for i, v in enumerate(a) if i not in nums])

    return step, args


def build_drjit(wl: Workload, inputs):
    """Dr.Jit's LLVM backend with its AD, for losses of 1-D float64 arrays (W1, W4, W6).
    Each call marks fresh copies of the inputs for differentiation (so gradients never
    accumulate across calls), runs `backward`, and converts the gradients to NumPy, which
    evaluates them before the timer stops."""
    import drjit as dr
    from drjit.llvm.ad import Float64

    xp = ArrayAPI(dr, sum=dr.sum, mean=dr.mean)
    loss, args, bound = _loss_and_args(wl, inputs)
    loss = bind(loss, xp, bound)
    nums = wl.argnums if isinstance(wl.argnums, tuple) else (wl.argnums,)
    args = tuple(Float64(a) for a in args)
    dr.eval(*args)

    def step(*a):
        a = [Float64(v) if i in nums else v for i, v in enumerate(a)]
        wrt = [a[i] for i in nums]
        dr.enable_grad(*wrt)
        value = loss(*a)
        dr.backward(value)
        grads = tuple(dr.grad(v).numpy() for v in wrt)
        if wl.value_and_grad:
            return value.numpy()[0], grads
        return grads[0] if isinstance(wl.argnums, int) else grads

    return step, args


def _load_tracejit():
    import tracejit  # noqa: F401  (numba is imported by tracejit on the first compile)
    import tracejit.nn  # noqa: F401
    import tracejit.numpy  # noqa: F401


def _load_jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy  # noqa: F401


def _load_drjit():
    import drjit.llvm.ad  # noqa: F401


@dataclass(frozen=True)
class System:
    name: str
    modules: tuple[str, ...]  # imported (and timed) before the data is made
    build: Callable  # (workload, inputs) -> (function, call arguments)
    load: Callable | None = None  # extra import-time setup
    disk_cache: bool = False  # has a warm-cache first call worth measuring
    parallel: bool = False  # uses several threads: OMP_NUM_THREADS is left unset
    peer: bool = False  # optional: skipped with one line when not installed
    variant: str | None = None  # runs the workload's loss variant of this name, if it has one
    workloads: tuple[str, ...] | None = None  # the only workloads its adapter covers

    def applies_to(self, wl: Workload, case: Case) -> bool:
        if self.name in wl.unsupported:
            return False
        if self.workloads is not None and wl.id not in self.workloads:
            return False
        if self.variant is not None:
            return self.variant in wl.variants
        if self.name == "numba-hand-parallel":
            return wl.parallel
        if self.name == "tracejit-parallel":  # one row: W1 at its largest size
            return wl.id == "W1" and case in (wl.cases[-1], wl.quick_cases[-1])
        return True

    def import_modules(self) -> None:
        for m in self.modules:
            importlib.import_module(m)
        if self.load is not None:
            self.load()


SYSTEMS: dict[str, System] = {s.name: s for s in [
    System("numpy-hand", ("numpy",), build_numpy_hand),
    System("numba-hand", ("numba",), build_numba_hand, disk_cache=True),
    System("numba-hand-parallel", ("numba",),
           lambda wl, a: build_numba_hand(wl, a, parallel=True), disk_cache=True,
           parallel=True),
    System("tracejit", ("tracejit",), build_tracejit, _load_tracejit, disk_cache=True),
    System("tracejit-1thread", ("tracejit",),
           lambda wl, a: build_tracejit(wl, a, parallel=False), _load_tracejit,
           disk_cache=True, workloads=("W1", "W1F", "W4", "W8")),
    System("tracejit-parallel", ("tracejit",),
           lambda wl, a: build_tracejit(wl, a, parallel=True), _load_tracejit,
           disk_cache=True, parallel=True),
    System("tracejit-scan", ("tracejit",), lambda wl, a: build_tracejit(wl, a, variant="scan"),
           _load_tracejit, disk_cache=True, variant="scan"),
    System("tracejit-checkpoint", ("tracejit",),
           lambda wl, a: build_tracejit(wl, a, variant="checkpoint"), _load_tracejit,
           disk_cache=True, variant="checkpoint"),
    System("tracejit-args", ("tracejit",),
           lambda wl, a: build_tracejit(wl, a, variant=ARGS_VARIANT), _load_tracejit,
           disk_cache=True, variant=ARGS_VARIANT),
    System("jax", ("jax",), build_jax, _load_jax, peer=True),
    System("jax-args", ("jax",), lambda wl, a: build_jax(wl, a, variant=ARGS_VARIANT),
           _load_jax, peer=True, variant=ARGS_VARIANT),
    System("torch", ("torch",), build_torch, peer=True),
    System("torch-compile", ("torch",), lambda wl, a: build_torch(wl, a, compiled=True),
           peer=True),
    System("autograd", ("autograd",), build_autograd, peer=True),
    System("drjit", ("drjit",), build_drjit, _load_drjit, peer=True, disk_cache=True,
           workloads=("W1", "W4", "W6")),
]}


# ---------------------------------------------------------------------------------------
# Comparing results
# ---------------------------------------------------------------------------------------


def to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def flatten(tree) -> list:
    """Leaves of nested tuples / lists / dicts (dicts in sorted-key order)."""
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in flatten(tree[k])]
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in flatten(t)]
    return [tree]


def flatten_output(wl: Workload, out) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """(loss value or None, gradient arrays in canonical order) from any system's output."""
    if wl.value_and_grad:
        return to_numpy(out[0]), [to_numpy(g) for g in flatten(tuple(out[1:]))]
    return None, [to_numpy(g) for g in flatten(out)]


def reference(wl: Workload, inputs):
    """numpy-hand evaluated in float64 (float32 inputs are upcast): the gold result."""

    def up(a):
        if isinstance(a, dict):
            return {k: up(v) for k, v in a.items()}
        if isinstance(a, int):  # a Python constant such as W5's step count
            return a
        a = np.asarray(a)
        return a.astype(np.float64) if a.dtype.kind == "f" else a

    return flatten_output(wl, wl.numpy_grad(*[up(a) for a in inputs]))
