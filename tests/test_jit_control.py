"""Compiled control flow: real loops and branches, equal to the interpreter."""

import re

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp


def close(a, b, rtol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-14)


def interpreted(f, *args):
    with tj.disable_jit():
        return f(*args)


def pendulum(params, T=10000, dt=1e-3):
    """W5: damped pendulum, semi-implicit Euler; loss on the final angle and the path."""
    k, c = params[0], params[1]

    def body(i, s):
        th, om, acc = s
        om = om + dt * (-k * tnp.sin(th) - c * om)
        th = th + dt * om
        return th, om, acc + 1e-4 * th * th

    th, _, acc = tj.fori_loop(0, T, body, (1.0, 0.0, 0.0))
    return (th - 0.3) ** 2 + acc


def pendulum_hand_grad(params, T=10000, dt=1e-3):
    """Forward trajectory, then the adjoint recurrence by hand."""
    k, c = params
    th, om = np.empty(T + 1), np.empty(T + 1)
    th[0], om[0] = 1.0, 0.0
    for t in range(T):
        om[t + 1] = om[t] + dt * (-k * np.sin(th[t]) - c * om[t])
        th[t + 1] = th[t] + dt * om[t + 1]
    th_bar, om_bar, gk, gc = 2 * (th[T] - 0.3), 0.0, 0.0, 0.0
    for t in range(T - 1, -1, -1):
        th_bar += 2e-4 * th[t + 1]          # the running sum's term for th[t+1]
        om_bar += dt * th_bar               # th[t+1] = th[t] + dt * om[t+1]
        gk += om_bar * dt * -np.sin(th[t])
        gc += om_bar * dt * -om[t]
        th_bar, om_bar = th_bar + om_bar * dt * -k * np.cos(th[t]), om_bar * (1 - dt * c)
    return np.array([gk, gc])


P = np.array([9.81, 0.1])
W5_GRAD = tj.jit(tj.grad(pendulum))


def test_w5_gradient_matches_the_hand_adjoint():
    close(W5_GRAD(P), pendulum_hand_grad(P), rtol=1e-10)
    close(W5_GRAD(P), interpreted(tj.grad(pendulum), P), rtol=1e-12)


def test_w5_source_is_one_forward_and_one_backward_loop_without_step_allocations():
    source = W5_GRAD.lower(P).source
    loops = re.findall(r"for t0 in range\((.*)\):", source)
    assert loops == ["10000", "10000 - 1, -1, -1"]
    # stacked residuals are allocated once, before the loops; nothing inside them
    lines = source.splitlines()
    inside = []
    for i, line in enumerate(lines):
        if "for t0 in" in line:
            indent = len(line) - len(line.lstrip())
            for body_line in lines[i + 1:]:
                if body_line.strip() and len(body_line) - len(body_line.lstrip()) <= indent:
                    break
                inside.append(body_line)
    assert inside and not any("np.empty" in line for line in inside)


def switchy(x, i):
    return tnp.sum(tj.switch(i, [lambda v: v * 2.0, lambda v: tnp.sin(v),
                                 lambda v: tnp.exp(-v * v)], x))


@pytest.mark.parametrize("i", [0, 1, 2, 7])
def test_switch_and_its_gradient_compile(i):
    x = np.linspace(-1.0, 1.0, 5)
    f = tj.jit(tj.value_and_grad(switchy))
    v, g = f(x, np.int64(i))
    vi, gi = interpreted(tj.value_and_grad(switchy), x, np.int64(i))
    close(v, vi)
    close(g, gi)
    assert "if " in tj.jit(tj.value_and_grad(switchy)).lower(x, np.int64(i)).source


def newton_loss(a):
    x = tj.while_loop(lambda s: tnp.max(tnp.abs(s * s * s + s - a)) > 1e-12,
                      lambda s: s - (s * s * s + s - a) / (3 * s * s + 1), a)
    return tnp.sum(x * x)


def test_unbounded_while_gradient_compiles_with_a_growing_tape():
    a = np.linspace(-4.0, 4.0, 300)
    g = tj.jit(tj.grad(newton_loss))(a)
    x = a.copy()
    for _ in range(80):
        x = x - (x ** 3 + x - a) / (3 * x * x + 1)
    close(g, 2 * x / (3 * x * x + 1), rtol=1e-10)  # the implicit-function gradient
    source = tj.jit(tj.grad(newton_loss)).lower(a).source
    assert "while True:" in source and "*= 2" in source  # the tape doubles when full


def rnn_loss(W, U, h0, xs):
    def step(h, x):
        h = tnp.tanh(W @ h + U @ x)
        return h, tnp.sum(h * h)
    h, ys = tj.scan(step, h0, xs)
    return tnp.sum(h) + tnp.sum(ys)


def test_rnn_scan_gradient_compiles():
    rng = np.random.default_rng(0)
    W, U = 0.3 * rng.standard_normal((4, 4)), 0.3 * rng.standard_normal((4, 3))
    h0, xs = rng.standard_normal(4), rng.standard_normal((6, 3))
    f = tj.jit(tj.grad(rnn_loss, argnums=(0, 1, 2)))
    for got, want in zip(f(W, U, h0, xs), interpreted(tj.grad(rnn_loss, argnums=(0, 1, 2)),
                                                      W, U, h0, xs)):
        close(got, want, rtol=1e-11)


def test_checkpointed_scan_compiles():
    def loss(w, xs):
        body = tj.checkpoint(lambda c, x: (tnp.sin(c * w + x), c))
        c, ys = tj.scan(body, 0.5, xs)
        return c + tnp.sum(ys)
    xs = np.linspace(0.0, 1.0, 20)
    close(tj.jit(tj.grad(loss))(0.7, xs), interpreted(tj.grad(loss), 0.7, xs))


def swapping_carries(x):
    """Array carries that take another carry's value (or a cond's output that is a carry)
    next to a carry the body writes in place into its spare buffer."""
    def body(c, _):
        a, b = c
        return (b, tnp.sin(a[::-1]) + 1.0), None
    (a, b), _ = tj.scan(body, (x, x * 2.0), None, length=4)

    def body2(c, _):
        a, b = c
        nb = tj.cond(tnp.sum(a) > 0, lambda v: v, lambda v: v * 2.0, a)
        return (tnp.sin(b[::-1]) + 1.0, nb), None
    (c, d), _ = tj.scan(body2, (x, x * 3.0), None, length=4)
    e, f, _ = tj.while_loop(lambda s: s[2] < 4,
                            lambda s: (s[1], tnp.sin(s[0][::-1]) + 1.0, s[2] + 1), (x, 2 * x, 0))
    return a, b, c, d, e, f


def test_a_carry_never_aliases_another_carrys_spare_buffer():
    x = np.linspace(0.1, 1.0, 6)
    for got, want in zip(tj.jit(swapping_carries)(x), swapping_carries(x)):
        close(got, want)


def test_one_body_ir_emitted_twice_in_one_scope_does_not_reuse_locals():
    # jacfwd makes one checkpoint per basis vector, all sharing one JVP body IR object
    def f(x):
        return tj.checkpoint(lambda a: tnp.sin(a[0]) * tnp.sum(a * a))(x)
    x = np.linspace(0.1, 1.0, 3)
    close(tj.jit(tj.jacfwd(f))(x), interpreted(tj.jacfwd(f), x))


def test_scatter_add_never_accumulates_into_a_cond_output_that_is_another_buffer():
    # the transposed cond's identity branch returns the constant cotangent `w` itself; the
    # gather's scatter_add into it must not write into the constant (or the user's array)
    w = np.array([1.0, 2.0, 3.0, 4.0])

    def loss(x):
        y = tj.cond(x[0] > 0, lambda v: v, lambda v: v * 2.0, x)
        return tnp.sum(y * w) + tnp.sum(x[np.array([0, 2, 2])] ** 2)
    x = np.array([0.5, -1.0, 2.0, 3.0])
    g = tj.jit(tj.grad(loss))
    close(g(x), interpreted(tj.grad(loss), x))
    close(g(x), interpreted(tj.grad(loss), x))
    close(w, [1.0, 2.0, 3.0, 4.0])


def test_a_control_flow_output_is_never_a_constants_buffer():
    w = np.array([1.0, 2.0, 3.0])
    f = tj.jit(lambda x: tj.cond(x[0] > 0, lambda v: w, lambda v: v, x))
    x = np.array([0.5, -1.0, 2.0])
    out = f(x)
    out[0] = 99.0  # the caller owns the result
    close(f(x), [1.0, 2.0, 3.0])
    close(w, [1.0, 2.0, 3.0])
