"""Control flow in the interpreter (no jit): cond, switch, scan, fori_loop, while_loop and
checkpoint.

Values are compared with plain-Python reference implementations; derivatives with central
finite differences (`check_grads`, forward and reverse, order 2) or with hand derivations,
never only with another derivative computed by tracejit. Every IR goes through the checker,
nested bodies and branches included.
"""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.api import vjp_irs
from tracejit.errors import ConcretizationError, IRCheckError
from tracejit.ir import IR
from tracejit.testing import check_grads


def close(actual, expected, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol)


def nested_irs(ir):
    """`ir` and every IR nested in its equations' parameters (bodies, branches), recursively."""
    yield ir
    for eqn in ir.eqns:
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, IR):
                    yield from nested_irs(sub)


def check_all(ir):
    """The IR checker on `ir` and on each nested IR (tj.check_ir does not descend into the
    `branches` tuple of cond; see test_check_ir_descends_into_cond_branches)."""
    for sub in nested_irs(ir):
        tj.check_ir(sub)
    return ir


def checked(f, *args, **kwargs):
    return check_all(tj.make_ir(f, **kwargs)(*args))


def prims(ir):
    return [e.prim.name for sub in nested_irs(ir) for e in sub.eqns]


def fd_grad(f, x, eps=1e-6):
    """Central finite-difference gradient of a scalar NumPy function of one array."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


# -- cond ------------------------------------------------------------------------------------

def cond_fn(x):
    return tj.cond(x > 0, lambda y: tnp.sin(y) * x, lambda y: y ** 3, x)


def cond_ref(x):
    return np.sin(x) * x if x > 0 else x ** 3


@pytest.mark.parametrize("x", [0.8, -0.6])
def test_cond_traced_predicate_both_branches(x):
    # Under grad the predicate is traced: the branch is chosen when the IR runs.
    value, g = tj.value_and_grad(cond_fn)(x)
    close(value, cond_ref(x))
    close(g, np.cos(x) * x + np.sin(x) if x > 0 else 3 * x ** 2)
    check_grads(cond_fn, (x,), order=2)
    ir = checked(cond_fn, x)
    assert prims(ir).count("cond") == 1
    check_all(tj.make_ir(tj.grad(cond_fn))(x))


def test_cond_same_ir_takes_both_branches_in_different_calls():
    g = tj.grad(cond_fn)
    close(g(0.5), np.cos(0.5) * 0.5 + np.sin(0.5))
    close(g(-0.5), 3 * 0.25)
    close(g(2.0), np.cos(2.0) * 2.0 + np.sin(2.0))


def pytree_cond(x, y):
    a = tnp.exp(y)  # an outer traced value both branches close over

    def true_fun(ops):
        p, q = ops["p"], ops["q"]
        return {"r": p * a, "s": (q + x, p)}

    def false_fun(ops):
        p, q = ops["p"], ops["q"]
        return {"r": q - y, "s": (p * p, q * 2.0)}

    out = tj.cond(tnp.sum(x) > 0, true_fun, false_fun, {"p": x, "q": y * x})
    return tnp.sum(out["r"]) + tnp.sum(out["s"][0] * out["s"][1])


def pytree_cond_ref(x, y):
    p, q = x, y * x
    if np.sum(x) > 0:
        r, s = p * np.exp(y), (q + x, p)
    else:
        r, s = q - y, (p * p, q * 2.0)
    return np.sum(r) + np.sum(s[0] * s[1])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cond_pytree_operands_and_closures(sign):
    x, y = sign * np.array([0.5, -0.2, 0.3]), 0.7
    close(pytree_cond(x, y), pytree_cond_ref(x, y))
    # Gradient w.r.t. both the operand and the closed-over value, vs finite differences
    # of the plain-NumPy reference.
    gx, gy = tj.grad(pytree_cond, argnums=(0, 1))(x, y)
    close(gx, fd_grad(lambda x: pytree_cond_ref(x, y), x), rtol=1e-6, atol=1e-8)
    close(gy, fd_grad(lambda y: pytree_cond_ref(x, y), np.float64(y)), rtol=1e-6, atol=1e-8)
    check_grads(pytree_cond, (x, y), order=2)
    check_all(tj.make_ir(tj.grad(pytree_cond, argnums=(0, 1)))(x, y))


def test_cond_integer_predicate_and_integer_outputs():
    def f(x, n):
        y, m = tj.cond(n, lambda v, k: (v * 2.0, k + 1), lambda v, k: (tnp.sin(v), k - 1), x, n)
        return y * m

    for n in (0, 3, -2):
        y, m = (0.5 * 2.0, n + 1) if n else (np.sin(0.5), n - 1)
        value, g = tj.value_and_grad(f)(0.5, n)
        close(value, y * m)
        close(g, 2.0 * m if n else np.cos(0.5) * m)
        check_grads(lambda x, n=n: f(x, n), (0.5,), order=2)


def test_cond_branch_returning_a_constant():
    def f(x):
        return tnp.sum(tj.cond(x[0] > 0, lambda v: v * v, lambda v: np.zeros(3), x))

    x = np.array([1.0, 2.0, 3.0])
    close(tj.grad(f)(x), 2 * x)
    close(tj.grad(f)(-x), np.zeros(3))
    check_grads(f, (x,), order=2)


def test_cond_with_concrete_predicate_is_python_if():
    assert tj.cond(True, lambda v: v + 1, lambda v: v - 1, 1.0) == 2.0
    assert tj.cond(0, lambda v: v + 1, lambda v: v - 1, 1.0) == 0.0


def test_cond_inside_cond():
    def f(x):
        inner = lambda v: tj.cond(v > 1, lambda u: u ** 3, lambda u: tnp.sin(u), v)  # noqa: E731
        return tj.cond(x > 0, inner, lambda v: -v * x, x)

    for x, d1, d2 in [(2.0, 12.0, 12.0), (0.5, np.cos(0.5), -np.sin(0.5)), (-1.0, 2.0, -2.0)]:
        close(tj.grad(f)(x), d1)
        close(tj.grad(tj.grad(f))(x), d2)
        check_grads(f, (x,), order=2)


# -- switch ----------------------------------------------------------------------------------

BRANCHES = [lambda v: tnp.sin(v), lambda v: v * v, lambda v: tnp.exp(-v)]
BRANCH_REFS = [(np.sin, np.cos), (lambda v: v * v, lambda v: 2 * v),
               (lambda v: np.exp(-v), lambda v: -np.exp(-v))]


def switch_fn(i, x):
    return tj.switch(i, BRANCHES, x)


@pytest.mark.parametrize("i", [-3, -1, 0, 1, 2, 3, 7])
def test_switch_three_branches_index_clamped(i):
    ref, dref = BRANCH_REFS[min(max(i, 0), 2)]
    x = 0.4
    close(switch_fn(i, x), ref(x))  # concrete index
    # Traced index: i is an argument of the traced function (an i64 input of the IR).
    value, g = tj.value_and_grad(switch_fn, argnums=1)(i, x)
    close(value, ref(x))
    close(g, dref(x))
    _, t = tj.jvp(switch_fn, (np.int32(i), x), (0, 1.0))
    close(t, dref(x))
    check_grads(lambda x: switch_fn(i, x), (x,), order=2)


def test_switch_ir_clamps_and_prints_every_branch():
    ir = checked(switch_fn, 1, 0.4)
    text = str(ir)
    assert "min" in text and "max" in text  # the clamp into [0, 2]
    for k in range(3):
        assert f"branches[{k}]:" in text
    check_all(tj.make_ir(tj.grad(switch_fn, argnums=1))(1, 0.4))


def test_switch_single_branch():
    close(tj.grad(lambda x, i: tj.switch(i, [lambda v: v ** 2], x))(3.0, 5), 6.0)
    with pytest.raises(ValueError, match="at least one branch"):
        tj.switch(0, [], 1.0)


# -- scan ------------------------------------------------------------------------------------

def pytree_scan(c0, u, v, reverse=False):
    def body(c, x):
        c = c * x["u"] + x["v"]
        return c, {"prod": c * x["v"], "pair": (c, x["u"] * 2.0)}
    return tj.scan(body, c0, {"u": u, "v": v}, reverse=reverse)


def pytree_scan_ref(c0, u, v, reverse=False):
    n = len(u)
    c, prod, pc, pu = c0, np.zeros(n), np.zeros(n), np.zeros(n)
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        c = c * u[t] + v[t]
        prod[t], pc[t], pu[t] = c * v[t], c, u[t] * 2.0
    return c, prod, pc, pu


U4 = np.array([0.5, 1.2, -0.7, 0.9])
V4 = np.array([0.1, -0.4, 0.3, 0.2])


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_xs_and_ys_pytrees(reverse):
    c, ys = pytree_scan(0.3, U4, V4, reverse)
    assert set(ys) == {"prod", "pair"} and isinstance(ys["pair"], tuple)
    rc, prod, pc, pu = pytree_scan_ref(0.3, U4, V4, reverse)
    close(c, rc)
    close(ys["prod"], prod)
    close(ys["pair"][0], pc)
    close(ys["pair"][1], pu)

    def loss(c0, u, v):
        c, ys = pytree_scan(c0, u, v, reverse)
        return c + tnp.sum(ys["prod"] * ys["pair"][0]) + tnp.sum(ys["pair"][1] ** 2)

    check_grads(loss, (0.3, U4, V4), order=2)
    check_all(tj.make_ir(tj.grad(loss, argnums=(0, 1, 2)))(0.3, U4, V4))


def test_scan_reverse_hand_derivative():
    # c_{t} = c_{t+1} * x_t walked from the end: c = c0 * prod(x); ys[t] is the carry after
    # step t, so ys[0] = c and ys[-1] = c0 * x[-1].
    xs = np.array([2.0, 3.0, 0.5])
    c, ys = tj.scan(lambda c, x: (c * x, c * x), 1.5, xs, reverse=True)
    close(c, 1.5 * 3.0)
    close(ys, [4.5, 2.25, 0.75])
    g = tj.grad(lambda c0, xs: tnp.sum(tj.scan(lambda c, x: (c * x, c * x), c0, xs,
                                               reverse=True)[1]), argnums=(0, 1))(1.5, xs)
    # sum(ys) = c0 * (x2 + x1 x2 + x0 x1 x2)
    close(g[0], 0.5 + 1.5 + 3.0)
    close(g[1], [1.5 * 1.5, 1.5 * (0.5 + 1.0), 1.5 * (1.0 + 3.0 + 6.0)])


def test_scan_without_xs_uses_length():
    def f(c0):
        return tj.scan(lambda c, _: (c * 1.1 + 1.0, c ** 2), c0, None, length=5)

    c, ys = f(0.3)
    ref_c, ref_ys = 0.3, []
    for _ in range(5):
        ref_ys.append(ref_c ** 2)
        ref_c = ref_c * 1.1 + 1.0
    close(c, ref_c)
    close(ys, ref_ys)
    assert ys.shape == (5,)
    check_grads(lambda c0: tnp.sum(f(c0)[1]) + f(c0)[0], (0.3,), order=2)
    assert "length=5" in str(checked(f, 0.3))


def test_scan_ys_none_and_length_zero():
    c, ys = tj.scan(lambda c, t: (c * t, None), 1.0, np.array([2.0, 3.0]))
    close(c, 6.0)
    assert ys is None
    c, ys = tj.scan(lambda c, t: (c + t, c), 1.0, np.zeros(0))
    close(c, 1.0)
    assert ys.shape == (0,)
    close(tj.grad(lambda c: tj.scan(lambda c, t: (c * t, c), c, np.zeros(0))[0])(1.0), 1.0)


def rnn(W, U, h0, xs):
    def step(h, x):
        h = tnp.tanh(W @ h + U @ x)
        return h, h
    h, hs = tj.scan(step, h0, xs)
    return tnp.sum(hs ** 2) + tnp.sum(h)


def rnn_ref(W, U, h0, xs):
    h, total = h0, 0.0
    for x in xs:
        h = np.tanh(W @ h + U @ x)
        total += np.sum(h ** 2)
    return total + np.sum(h)


def test_rnn_recurrence_values_and_gradients():
    rng = np.random.default_rng(0)
    W = 0.5 * rng.standard_normal((3, 3))
    U = 0.5 * rng.standard_normal((3, 2))
    h0 = rng.standard_normal(3)
    xs = rng.standard_normal((6, 2))
    close(rnn(W, U, h0, xs), rnn_ref(W, U, h0, xs))
    gW, gU, gh0 = tj.grad(rnn, argnums=(0, 1, 2))(W, U, h0, xs)
    tol = dict(rtol=1e-6, atol=1e-8)
    close(gW, fd_grad(lambda W: rnn_ref(W, U, h0, xs), W), **tol)
    close(gU, fd_grad(lambda U: rnn_ref(W, U, h0, xs), U), **tol)
    close(gh0, fd_grad(lambda h0: rnn_ref(W, U, h0, xs), h0), **tol)
    check_grads(rnn, (W, U, h0, xs[:3]), order=2)
    gir = check_all(tj.make_ir(tj.grad(rnn, argnums=(0, 1, 2)))(W, U, h0, xs))
    # The backward pass is one reverse scan (a loop, not an unrolled program).
    scans = [e for e in gir.eqns if e.prim.name == "scan"]
    assert any(e.params["reverse"] for e in scans)
    assert all(e.params["length"] == 6 for e in scans)


def cumprod_scan(xs):
    return tj.scan(lambda c, x: (c * x, c * x), 1.0, xs)[1]


def test_cumulative_product_via_scan():
    xs = np.array([0.5, 2.0, -1.5, 0.0, 3.0])  # a zero: the derivative must stay exact
    close(cumprod_scan(xs), np.cumprod(xs))
    n = len(xs)
    # d cumprod(x)[i] / d x[j] = prod_{k <= i, k != j} x[k] for j <= i.
    jac = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            jac[i, j] = np.prod([xs[k] for k in range(i + 1) if k != j])
    close(tj.jacrev(cumprod_scan)(xs), jac)
    close(tj.jacfwd(cumprod_scan)(xs), jac)
    check_grads(cumprod_scan, (xs,), order=2)
    f32 = cumprod_scan(xs.astype(np.float32))
    close(f32, np.cumprod(xs), rtol=1e-6)


def test_scan_integer_carry_next_to_float_carry():
    def f(x):
        (c, k), ys = tj.scan(lambda s, t: ((s[0] * t + s[1], s[1] + 1), s[0] * s[1]),
                             (x, 0), np.array([0.5, 2.0, -1.0]))
        return c + tnp.sum(ys) + k

    # c: x -> x/2 -> x + 1 -> 1 - x (k = 0, 1, 2, 3); ys = (0, x/2, 2x + 2):
    # f = 1 - x + 5x/2 + 2 + 3.
    close(f(0.3), 6 + 1.5 * 0.3)
    close(tj.grad(f)(0.3), 1.5)
    check_grads(f, (0.3,), order=2)


def test_switch_inside_scan_indexed_by_xs():
    idx = np.array([0, 2, 1, 5, -1])

    def f(x, idx):
        def body(c, i):
            c = tj.switch(i, [lambda c: c * x, lambda c: tnp.sin(c), lambda c: c + x * x], c)
            return c, c
        return tnp.sum(tj.scan(body, x, idx)[1])

    def ref(x):
        c, total = x, 0.0
        for i in idx:
            c = [c * x, np.sin(c), c + x * x][min(max(i, 0), 2)]
            total += c
        return total

    close(f(0.4, idx), ref(0.4))
    close(tj.grad(f)(0.4, idx), fd_grad(ref, np.float64(0.4)), rtol=1e-6)
    check_grads(lambda x: f(x, idx), (0.4,), order=2)


def test_scan_float32_carry_stays_float32():
    c, ys = tj.scan(lambda c, x: (c * 0.5 + x, c * x), np.float32(1.0), np.ones(3, np.float32))
    assert c.dtype == np.float32 and ys.dtype == np.float32
    close(c, 1.875)  # 1 -> 1.5 -> 1.75 -> 1.875


def test_cond_inside_scan():
    ts = np.arange(4.0)

    def f(x):
        def body(c, t):
            odd = tnp.mod(t, 2.0) > 0.5
            return tj.cond(odd, lambda c: c * x, lambda c: c + x, c), c
        c, _ = tj.scan(body, x, ts)
        return c

    # c: x -> 2x -> 2x^2 -> 2x^2 + x -> 2x^3 + x^2
    x = 0.7
    close(f(x), 2 * x ** 3 + x ** 2)
    close(tj.grad(f)(x), 6 * x ** 2 + 2 * x)
    close(tj.grad(tj.grad(f))(x), 12 * x + 2)
    check_grads(f, (x,), order=2)
    ir = checked(f, x)
    (scan,) = [e for e in ir.eqns if e.prim.name == "scan"]
    assert "cond" in [e.prim.name for e in scan.params["body"].eqns]
    check_all(tj.make_ir(tj.grad(tj.grad(f)))(x))


def test_cond_inside_scan_with_xs_gradients():
    def f(x, xs):
        def body(c, xt):
            c2 = tj.cond(xt > 0, lambda c: c * xt, lambda c: tnp.sin(c) + xt, c)
            return c2, c2 * c
        c, ys = tj.scan(body, x, xs)
        return c + tnp.sum(ys)

    def ref(x, xs):
        c, total = x, 0.0
        for xt in xs:
            c2 = c * xt if xt > 0 else np.sin(c) + xt
            total += c2 * c
            c = c2
        return c + total

    xs = np.array([0.5, -1.0, 2.0, -0.3])
    close(f(0.3, xs), ref(0.3, xs))
    gx, gxs = tj.grad(f, argnums=(0, 1))(0.3, xs)
    close(gx, fd_grad(lambda x: ref(x, xs), np.float64(0.3)), rtol=1e-6)
    close(gxs, fd_grad(lambda xs: ref(0.3, xs), xs), rtol=1e-6, atol=1e-8)
    check_grads(f, (0.3, xs), order=2)


def test_scan_inside_cond():
    xs = np.array([0.5, -1.0, 2.0, -0.3])

    def f(p, x):
        def true_fun(x):
            return tj.scan(lambda c, t: (c * t + x, c), x, xs)[0]
        return tj.cond(p > 0, true_fun, lambda x: x * 3.0, x)

    def ref(x):
        c = x
        for t in xs:
            c = c * t + x
        return c

    x = 0.3
    close(f(1.0, x), ref(x))
    close(f(-1.0, x), 3 * x)
    close(tj.grad(f, argnums=1)(1.0, x), fd_grad(ref, np.float64(x)), rtol=1e-6)
    close(tj.grad(f, argnums=1)(-1.0, x), 3.0)
    for p in (1.0, -1.0):
        check_grads(lambda x, p=p: f(p, x), (x,), order=2)
    check_all(tj.make_ir(tj.grad(tj.grad(f, argnums=1), argnums=1))(1.0, x))


def test_scan_inside_scan():
    rows = np.array([[0.5, 1.0], [1.5, -0.5], [0.2, 0.3]])

    def f(a, xs):
        def outer(c, row):
            c2, _ = tj.scan(lambda d, v: (d * v + a, None), c, row)
            return c2, c2
        return tnp.sum(tj.scan(outer, 1.0, xs)[1])

    def ref(a):
        c, total = 1.0, 0.0
        for row in rows:
            for v in row:
                c = c * v + a
            total += c
        return total

    close(f(0.3, rows), ref(0.3))
    close(tj.grad(f)(0.3, rows), fd_grad(ref, np.float64(0.3)), rtol=1e-6)
    check_grads(f, (0.3, rows), order=2)


def test_grad_of_grad_through_scan_and_cond():
    def f(x):
        def body(c, t):
            return tj.cond(t > 1.5, lambda c: c * tnp.sin(c), lambda c: c ** 3, c), c
        c, ys = tj.scan(body, x, np.arange(4.0))
        return c + tnp.sum(ys)

    def ref(x):
        c, total = x, 0.0
        for t in range(4):
            total += c
            c = c * np.sin(c) if t > 1.5 else c ** 3
        return c + total

    x, h = 0.7, 1e-4
    close(f(x), ref(x))
    second = (ref(x + h) - 2 * ref(x) + ref(x - h)) / h ** 2
    close(tj.grad(tj.grad(f))(x), second, rtol=1e-6)
    check_grads(tj.grad(f), (x,), order=2)
    check_all(tj.make_ir(tj.grad(tj.grad(f)))(x))


# -- fori_loop -------------------------------------------------------------------------------

def fori_pytree(a, b):
    def body(i, c):
        x, d = c
        return (x * 0.9 + d["v"] * i, {"v": d["v"] * a - 0.1 * x, "w": d["w"] + x})
    x, d = tj.fori_loop(1, 6, body, (a, {"v": b, "w": np.zeros(3)}))
    return tnp.sum(x) + tnp.sum(d["v"] ** 2) + tnp.sum(d["w"])


def fori_pytree_ref(a, b):
    x, v, w = a, b, np.zeros(3)
    for i in range(1, 6):
        x, v, w = x * 0.9 + v * i, v * a - 0.1 * x, w + x
    return np.sum(x) + np.sum(v ** 2) + np.sum(w)


def test_fori_loop_tuple_and_dict_carry():
    a, b = np.array([0.4, -0.3, 0.8]), np.array([1.0, 0.5, -0.2])
    close(fori_pytree(a, b), fori_pytree_ref(a, b))
    ga, gb = tj.grad(fori_pytree, argnums=(0, 1))(a, b)
    close(ga, fd_grad(lambda a: fori_pytree_ref(a, b), a), rtol=1e-6, atol=1e-8)
    close(gb, fd_grad(lambda b: fori_pytree_ref(a, b), b), rtol=1e-6, atol=1e-8)
    check_grads(fori_pytree, (a, b), order=2)
    ir = checked(fori_pytree, a, b)
    assert [e.prim.name for e in ir.eqns].count("scan") == 1  # static bounds: one scan


def test_fori_loop_structure_is_preserved_and_empty_range():
    out = tj.fori_loop(0, 3, lambda i, c: {"k": c["k"] + i, "s": (c["s"][0] * 2,)},
                       {"k": 0, "s": (1.0,)})
    assert set(out) == {"k", "s"} and isinstance(out["s"], tuple)
    assert int(out["k"]) == 3
    close(out["s"][0], 8.0)
    assert tj.fori_loop(3, 1, lambda i, c: c * 2, 1.5) == 1.5


def pendulum(p):
    th0, om0, k, g = p[0], p[1], p[2], p[3]
    dt = 0.1

    def body(i, s):
        th, om = s
        om = om - dt * (g * tnp.sin(th) + k * om)
        return th + dt * om, om
    th, om = tj.fori_loop(0, 6, body, (th0, om0))
    return th ** 2 + 0.5 * om ** 2


def pendulum_ref(p):
    th, om, k, g = p
    for _ in range(6):
        om = om - 0.1 * (g * np.sin(th) + k * om)
        th = th + 0.1 * om
    return th ** 2 + 0.5 * om ** 2


def test_hessian_of_damped_pendulum_fori_loop():
    p = np.array([0.8, -0.3, 0.2, 9.81])
    close(pendulum(p), pendulum_ref(p))
    close(tj.grad(pendulum)(p), fd_grad(pendulum_ref, p), rtol=1e-6, atol=1e-8)
    H = np.asarray(tj.hessian(pendulum)(p))
    assert H.shape == (4, 4)
    eps, fd = 1e-5, np.zeros((4, 4))
    grad = tj.grad(pendulum)
    for j in range(4):
        d = np.zeros(4)
        d[j] = eps
        fd[:, j] = (np.asarray(grad(p + d)) - np.asarray(grad(p - d))) / (2 * eps)
    close(H, fd, rtol=1e-6, atol=1e-8)
    close(H, H.T)
    check_grads(pendulum, (p,), order=2)


# -- while_loop ------------------------------------------------------------------------------

def newton_sqrt(a):
    def cond_fun(s):
        x, it = s
        return (tnp.abs(x * x - a) > 1e-13 * a) & (it < 50)

    def body_fun(s):
        x, it = s
        return 0.5 * (x + a / x), it + 1
    return tj.while_loop(cond_fun, body_fun, (a, 0))[0]


@pytest.mark.parametrize("a", [2.0, 9.0, 0.25])
def test_while_loop_newton_sqrt_value_and_jvp(a):
    close(newton_sqrt(a), np.sqrt(a))
    y, t = tj.jvp(newton_sqrt, (a,), (1.0,))
    close(y, np.sqrt(a))
    close(t, 1 / (2 * np.sqrt(a)))
    close(tj.jacfwd(newton_sqrt)(a), 1 / (2 * np.sqrt(a)))
    check_grads(newton_sqrt, (a,), order=2, modes=("fwd",))


def test_while_loop_jvp_ir_is_one_loop():
    def tangent(a):
        return tj.jvp(newton_sqrt, (a,), (1.0,))[1]

    ir = checked(tangent, 2.0)
    assert [e.prim.name for e in ir.eqns].count("while_loop") == 1
    text = str(ir)
    assert "cond_ir:" in text and "body_ir:" in text


def integrate_until_event(y0, k):
    """Explicit Euler for y' = -k y until y drops below 0.1; returns (y, t)."""
    dt = 0.05

    def body(s):
        y, t = s
        return y - dt * k * y, t + dt
    return tj.while_loop(lambda s: s[0] > 0.1, body, (y0, 0.0))


def test_while_loop_integrate_until_event():
    y0, k, dt = 1.0, 1.3, 0.05
    y, t, n = y0, 0.0, 0
    while y > 0.1:
        y, t, n = y - dt * k * y, t + dt, n + 1
    out = integrate_until_event(y0, k)
    close(out[0], y)
    close(out[1], t)
    # y_n = y0 r^n with r = 1 - dt k and n fixed near (y0, k): dy/dy0 = r^n,
    # dy/dk = -n dt y0 r^(n-1); the event time is locally constant.
    r = 1 - dt * k
    (_, _), (ty, tt) = tj.jvp(integrate_until_event, (y0, k), (1.0, 0.0))
    close(ty, r ** n)
    close(tt, 0.0)
    (_, _), (ty, tt) = tj.jvp(integrate_until_event, (y0, k), (0.0, 1.0))
    close(ty, -n * dt * y0 * r ** (n - 1))
    close(tt, 0.0)


def test_while_loop_inside_grad_when_not_differentiated():
    def f(x, a):
        return x * newton_sqrt(a)
    close(tj.grad(f)(3.0, 2.0), np.sqrt(2.0))


def bounded_newton(a, max_iterations=50):
    return tj.while_loop(lambda s: tnp.abs(s * s - a) > 1e-13 * a,
                         lambda s: 0.5 * (s + a / s), a, max_iterations=max_iterations)


def test_bounded_while_loop_reverse_mode():
    a = 2.0
    close(bounded_newton(a), np.sqrt(a))
    close(tj.grad(bounded_newton)(a), 1 / (2 * np.sqrt(a)))
    check_grads(bounded_newton, (a,), order=2)
    check_all(tj.make_ir(tj.grad(bounded_newton))(a))
    # Capped after two steps: x1 = (a + 1)/2, x2 = (x1 + a/x1)/2, and
    # dx2/da = (dx1 + 1/x1 - a dx1/x1^2)/2 with dx1 = 1/2.
    x1 = (a + 1) / 2
    close(bounded_newton(a, 2), (x1 + a / x1) / 2)
    close(tj.grad(lambda a: bounded_newton(a, 2))(a), (0.5 + 1 / x1 - a * 0.5 / x1 ** 2) / 2)
    with pytest.raises(ValueError, match="max_iterations"):
        bounded_newton(a, -1)


def test_bounded_while_loop_nested_in_scan_cond_and_checkpoint():
    xs = np.array([1.0, 2.0, 3.0])

    def in_scan(a):
        return tj.scan(lambda c, x: (c + bounded_newton(c * x), c), a, xs)[0]

    def in_scan_ref(a):
        c = a
        for x in xs:
            c = c + np.sqrt(c * x)
        return c

    def in_cond(a):
        return tj.cond(a > 1, lambda v: bounded_newton(v) * a, lambda v: v, a)

    def in_checkpoint(a):
        return tj.checkpoint(lambda v: bounded_newton(v) * v)(a)

    close(in_scan(2.0), in_scan_ref(2.0))
    close(tj.grad(in_scan)(2.0), fd_grad(in_scan_ref, np.float64(2.0)), rtol=1e-6)
    close(tj.grad(in_cond)(2.0), 1.5 * np.sqrt(2.0))  # d(a^1.5)/da
    close(tj.grad(in_cond)(0.5), 1.0)
    close(tj.grad(in_checkpoint)(2.0), 1.5 * np.sqrt(2.0))
    for f, a in [(in_scan, 2.0), (in_cond, 2.0), (in_cond, 0.5), (in_checkpoint, 2.0)]:
        check_grads(f, (a,), order=2)
        check_all(tj.make_ir(tj.grad(f))(a))


def test_fori_loop_with_traced_bounds_is_a_while_loop():
    def f(x, n):
        return tj.fori_loop(0, n, lambda i, c: c * x, 1.0)

    ir = checked(f, 2.0, 3)
    assert "while_loop" in [e.prim.name for e in ir.eqns]
    y, t = tj.jvp(f, (2.0, 3), (1.0, 0))
    close(y, 8.0)
    close(t, 12.0)


# -- checkpoint ------------------------------------------------------------------------------

def ck_body(x, w):
    return tnp.sin(tnp.sin(x * w) * w)


def f_checkpointed(x, w):
    return tnp.sum(tj.checkpoint(ck_body)(x, w) ** 2)


def f_plain(x, w):
    return tnp.sum(ck_body(x, w) ** 2)


def test_checkpoint_gradient_equals_plain_gradient():
    x, w = np.array([0.2, 0.5, -0.3]), 1.3
    close(f_checkpointed(x, w), f_plain(x, w))
    gx, gw = tj.grad(f_checkpointed, argnums=(0, 1))(x, w)
    px, pw = tj.grad(f_plain, argnums=(0, 1))(x, w)
    close(gx, px, rtol=1e-13)
    close(gw, pw, rtol=1e-13)
    # ... and both equal the hand derivative: s = sin(u w), o = sin(s w), d(sum o^2)/dx.
    u = x * w
    s, o = np.sin(u), np.sin(np.sin(u) * w)
    close(gx, 2 * o * np.cos(s * w) * w * np.cos(u) * w)
    check_grads(f_checkpointed, (x, w), order=2)
    check_all(tj.make_ir(tj.grad(f_checkpointed, argnums=(0, 1)))(x, w))


def test_checkpoint_backward_pass_recomputes_the_body():
    x, w = np.array([0.2, 0.5, -0.3]), np.float64(1.3)
    ck = vjp_irs(checked(f_checkpointed, x, w), [True, True])
    plain = vjp_irs(checked(f_plain, x, w), [True, True])
    ck_backward = [e.prim.name for e in ck.backward.eqns]
    # The backward pass recomputes s = sin(x w) and the cosines cos(x w), cos(s w) from
    # the inputs ...
    assert ck_backward.count("sin") == 1 and ck_backward.count("cos") == 2
    # ... where the plain backward pass only reads stored residuals.
    assert "sin" not in [e.prim.name for e in plain.backward.eqns]
    assert ck.num_res < plain.num_res
    check_all(ck.primal)
    check_all(ck.backward)
    # The forward part is one checkpoint equation holding the body.
    assert "checkpoint" in [e.prim.name for e in ck.primal.eqns]


def test_checkpoint_pytrees_and_closure():
    def f(x, w):
        @tj.checkpoint
        def block(d):
            return {"a": tnp.tanh(d["u"] * w), "b": d["v"] + tnp.sin(w)}
        out = block({"u": x, "v": x * 2})
        return tnp.sum(out["a"] * out["b"])

    x, w = np.array([0.2, -0.4]), 0.9

    def ref(x, w):
        return np.sum(np.tanh(x * w) * (2 * x + np.sin(w)))

    close(f(x, w), ref(x, w))
    close(tj.grad(f, argnums=1)(x, w), fd_grad(lambda w: ref(x, w), np.float64(w)), rtol=1e-6)
    check_grads(f, (x, w), order=2)


def test_cond_and_scan_inside_checkpoint():
    def f(x, w):
        @tj.checkpoint
        def block(v):
            c = tj.cond(v[0] > 0, lambda u: tnp.sin(u) * w, lambda u: u * u, v)
            return tj.scan(lambda h, t: (h * t + w, h), 1.0, c)[0]
        return block(x) * w

    def ref(x, w):
        c = np.sin(x) * w if x[0] > 0 else x * x
        h = 1.0
        for t in c:
            h = h * t + w
        return h * w

    for x in (np.array([0.3, -0.5, 0.8]), np.array([-0.3, 0.5, 0.8])):
        close(f(x, 0.7), ref(x, 0.7))
        gx, gw = tj.grad(f, argnums=(0, 1))(x, 0.7)
        close(gx, fd_grad(lambda x: ref(x, 0.7), x), rtol=1e-6, atol=1e-8)
        close(gw, fd_grad(lambda w, x=x: ref(x, w), np.float64(0.7)), rtol=1e-6)
        check_grads(f, (x, 0.7), order=2)
        check_all(tj.make_ir(tj.grad(f, argnums=(0, 1)))(x, 0.7))


def test_checkpointed_scan_body():
    def f(a, xs):
        def step(h, x):
            h = tnp.tanh(a * h + x)
            return h, h
        return tnp.sum(tj.scan(tj.checkpoint(step), 0.1, xs)[1])

    def ref(a, xs):
        h, total = 0.1, 0.0
        for x in xs:
            h = np.tanh(a * h + x)
            total += h
        return total

    xs = np.array([0.1, 0.2, -0.3])
    close(f(0.7, xs), ref(0.7, xs))
    close(tj.grad(f)(0.7, xs), fd_grad(lambda a: ref(a, xs), np.float64(0.7)), rtol=1e-6)
    check_grads(f, (0.7, xs), order=2)
    check_all(tj.make_ir(tj.grad(f))(0.7, xs))


# -- printing --------------------------------------------------------------------------------

def _indent(line):
    return len(line) - len(line.lstrip())


def _assert_nested_under(text, eqn_marker, label):
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if eqn_marker in line)
    assert lines[k + 1].strip() == label, text
    assert _indent(lines[k + 1]) > _indent(lines[k])
    assert lines[k + 2].lstrip().startswith("ir ")
    assert _indent(lines[k + 2]) > _indent(lines[k + 1])


def test_printing_nests_bodies_under_their_equation():
    text = str(checked(lambda x, xs: tj.scan(lambda c, t: (c * t, c), x, xs), 0.5, np.ones(3)))
    _assert_nested_under(text, "= scan[", "body:")
    assert "num_carry=1" in text and "reverse=False" in text

    text = str(checked(cond_fn, 0.5))
    _assert_nested_under(text, "= cond ", "branches[0]:")
    assert text.index("branches[0]:") < text.index("branches[1]:")
    assert _indent(text.splitlines()[-1]) == 2 and text.splitlines()[-1].strip().startswith(
        "return")

    text = str(checked(lambda x: tj.checkpoint(ck_body)(x, 1.0), np.ones(2)))
    _assert_nested_under(text, "= checkpoint ", "body:")

    text = str(checked(newton_sqrt, 2.0))
    _assert_nested_under(text, "= while_loop[", "cond_ir:")
    assert "body_ir:" in text


def test_printing_doubly_nested():
    def f(x, xs):
        def body(c, t):
            return tj.cond(t > 0, lambda c: c * t, lambda c: c - t, c), c
        return tj.scan(body, x, xs)[0]

    text = str(checked(f, 0.5, np.ones(3)))
    lines = text.splitlines()
    body = next(i for i, line in enumerate(lines) if line.strip() == "body:")
    branch = next(i for i, line in enumerate(lines) if line.strip() == "branches[0]:")
    assert branch > body and _indent(lines[branch]) > _indent(lines[body])


def test_every_gradient_ir_checks():
    x, xs = 0.4, np.array([0.3, -0.5, 1.2])

    def f(x, xs):
        def body(c, t):
            c = tj.cond(t > 0, lambda c: tnp.sin(c) * t, lambda c: c * c, c)
            c = tj.checkpoint(lambda c: tnp.tanh(c) + c)(c)
            return c, c * t
        c, ys = tj.scan(body, x, xs, reverse=True)
        return c + tnp.sum(ys)

    n_nested = 0
    for fun in (f, tj.grad(f), tj.grad(f, argnums=(0, 1)), tj.grad(tj.grad(f))):
        ir = check_all(tj.make_ir(fun)(x, xs))
        n_nested += sum(1 for _ in nested_irs(ir)) - 1
    assert n_nested > 4
    check_grads(f, (x, xs), order=2)


def test_check_ir_descends_into_cond_branches():
    ir = tj.make_ir(cond_fn)(1.0)
    cond_eqn = next(e for e in ir.eqns if e.prim.name == "cond")
    broken = cond_eqn.params["branches"][1]
    broken.eqns.reverse()  # a use before its definition
    with pytest.raises(IRCheckError):
        tj.check_ir(ir)
    with pytest.raises(IRCheckError):
        tj.check_ir(ir)


# -- errors ----------------------------------------------------------------------------------

X2 = np.array([1.0, 2.0])


def _grad_sum(f):
    return tj.grad(lambda x: tnp.sum(f(x)))(X2)


def test_branches_with_different_structures():
    with pytest.raises(TypeError, match=r"structure.*\[\*, \*\].*\(\*, \*\)"):
        _grad_sum(lambda x: tj.cond(x[0] > 0, lambda v: (v, v), lambda v: [v, v], x)[0])
    with pytest.raises(TypeError, match=r"\{'b': \*\}.*\{'a': \*\}"):
        _grad_sum(lambda x: tj.cond(x[0] > 0, lambda v: {"a": v}, lambda v: {"b": v}, x)["a"])


def test_branches_with_different_shapes_name_the_leaf():
    def whole(v):
        return v * 2

    def first(v):
        return v[:1]

    with pytest.raises(TypeError, match=r"leaf 0 is f64\[1\] in first but f64\[2\] in whole"):
        _grad_sum(lambda x: tj.cond(x[0] > 0, whole, first, x))
    with pytest.raises(TypeError, match=r"leaf 0 is f64\[2\] .* but f64\[\] "):
        tj.grad(lambda x, i: tnp.sum(tj.switch(i, [lambda v: v, lambda v: v,
                                                   lambda v: v[0]], x)))(X2, 1)


def test_branches_with_different_dtypes_name_the_leaf():
    def f64_branch(v):
        return v, {"w": v}

    def f32_branch(v):
        return v, {"w": v.astype(np.float32)}

    with pytest.raises(TypeError, match=r"leaf 1 \(at \[1\]\['w'\]\) is f32\[2\] in "
                                        r"f32_branch but f64\[2\] in f64_branch"):
        _grad_sum(lambda x: tj.cond(x[0] > 0, f64_branch, f32_branch, x)[0])


def test_scan_carry_of_a_different_shape_or_dtype():
    with pytest.raises(TypeError, match=r"scan: leaf 0 is f64\[2\] in the initial carry but "
                                        r"f64\[1\] in the carry f returns"):
        _grad_sum(lambda x: tj.scan(lambda c, t: (c[:1], t), x, x)[1])
    with pytest.raises(TypeError, match=r"scan: leaf 1 \(at \[1\]\) is f64\[2\] in the initial "
                                        r"carry but f32\[2\]"):
        _grad_sum(lambda x: tj.scan(lambda c, t: ((c[0], c[1].astype(np.float32)), t),
                                    (x, x), x)[1])
    with pytest.raises(TypeError, match=r"i64\[\] in the initial carry but f64\[\]"):
        tj.scan(lambda c, t: (c + t, t), 0, np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="structure"):
        tj.scan(lambda c, t: ((c, c), t), 0.0, np.ones(2))
    with pytest.raises(TypeError, match="pair"):
        tj.scan(lambda c, t: c, 0.0, np.ones(2))


def test_while_loop_body_of_a_different_dtype():
    with pytest.raises(TypeError, match=r"while_loop: leaf 0 is f64\[\] .* but f32\[\]"):
        tj.while_loop(lambda c: c < 1.0, lambda c: (c + 0.5).astype(np.float32), 0.0)


def _python_if_scan():
    def body(c, t):
        if c > 0:
            return c, t
        return -c, t
    tj.scan(body, 1.0, np.ones(3))


@pytest.mark.parametrize("make", [
    _python_if_scan,
    lambda: tj.fori_loop(0, 3, lambda i, c: c * 2 if c > 0 else c, 1.0),
    lambda: tj.fori_loop(0, 3, lambda i, c: c * 2 if i > 0 else c, 1.0),
    lambda: tj.while_loop(lambda c: c < 10, lambda c: c * 2 if c > 0 else c, 1.0),
    lambda: tj.grad(lambda x: tj.cond(x > 0, lambda v: v if v > 1 else -v, lambda v: v, x))(
        2.0),
], ids=["scan", "fori_loop carry", "fori_loop index", "while_loop", "cond branch"])
def test_python_if_on_traced_value_in_a_body(make):
    with pytest.raises(ConcretizationError, match="test_control.py") as info:
        make()
    assert "bool" in str(info.value)


def test_python_if_error_names_the_user_line():
    with pytest.raises(ConcretizationError, match=r"if c > 0:"):
        _python_if_scan()


def test_reverse_mode_of_unbounded_while_loop_records_a_tape():
    # d sqrt(a) / da = 1 / (2 sqrt(a)): Newton's iterates are differentiated step by step.
    for a in (2.0, 0.3, 9.0):
        assert tj.grad(newton_sqrt)(a) == pytest.approx(0.5 / np.sqrt(a), rel=1e-10)
    out, f_vjp = tj.vjp(newton_sqrt, 2.0)
    assert f_vjp(1.0)[0] == pytest.approx(0.5 / np.sqrt(2.0), rel=1e-10)
    ir = tj.make_ir(tj.grad(newton_sqrt))(2.0)
    tj.check_ir(ir)
    names = [e.prim.name for e in ir.eqns]
    assert "while_record" in names and "replay" in names
    # a fori_loop with a traced trip count is a while loop
    gx = tj.grad(lambda x, n: tj.fori_loop(0, n, lambda i, c: c * x, 1.0))(2.0, 3)
    assert gx == pytest.approx(3 * 2.0 ** 2, rel=1e-12)
    # current limitations, with errors that say what to do: second derivatives of the
    # recorded loop, and a recorded loop inside another loop
    with pytest.raises(NotImplementedError, match="max_iterations"):
        tj.grad(tj.grad(newton_sqrt))(2.0)
    with pytest.raises(NotImplementedError, match="max_iterations"):
        tj.grad(lambda a: tj.scan(lambda c, x: (c + newton_sqrt(c * x), c), a,
                                  np.ones(2))[0])(2.0)


def test_scan_with_inconsistent_lengths():
    with pytest.raises(ValueError, match=r"inconsistent.*\[3, 4\]"):
        tj.scan(lambda c, t: (c, t[0] + t[1]), 0.0, (np.ones(3), np.ones(4)))
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        tj.scan(lambda c, t: (c, t), 0.0, np.ones(3), length=4)
    with pytest.raises(ValueError, match="length="):
        tj.scan(lambda c, t: (c, c), 0.0, None)
    with pytest.raises(ValueError, match="leading axis"):
        tj.scan(lambda c, t: (c, c), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"inconsistent.*\[3, 4\]"):
        tj.grad(lambda x: tj.scan(lambda c, t: (c * t[0] * t[1], c), x,
                                  (np.ones(3), np.ones(4)))[0])(1.0)


def test_cond_predicate_must_be_a_scalar():
    with pytest.raises(TypeError, match="scalar"):
        tj.grad(lambda x: tnp.sum(tj.cond(x > 0, lambda v: v, lambda v: -v, x)))(X2)
    with pytest.raises(TypeError, match="integer"):
        tj.grad(lambda x: tj.switch(x, [lambda v: v, lambda v: -v], x))(1.0)


# -- caching ---------------------------------------------------------------------------------

def test_grad_of_scan_traces_once_per_signature():
    calls = {"f": 0, "body": 0}

    def f(x, xs):
        calls["f"] += 1

        def body(c, t):
            calls["body"] += 1
            return c * tnp.sin(t) + 1.0, c
        c, ys = tj.scan(body, x, xs)
        return c + tnp.sum(ys)

    def ref(x, xs):
        c, total = x, 0.0
        for t in xs:
            total += c
            c = c * np.sin(t) + 1.0
        return c + total

    g = tj.grad(f)
    xs1, xs2 = np.ones(4), np.arange(4.0)
    close(g(0.3, xs1), fd_grad(lambda x: ref(x, xs1), np.float64(0.3)), rtol=1e-7)
    close(g(0.5, xs2), fd_grad(lambda x: ref(x, xs2), np.float64(0.5)), rtol=1e-7)
    assert calls == {"f": 1, "body": 1}
    tj.grad(f)(0.7, xs1)  # a new grad wrapper reuses the cached trace of f
    assert calls == {"f": 1, "body": 1}
    g(0.3, np.ones(5))  # a new shape traces again
    assert calls == {"f": 2, "body": 2}
