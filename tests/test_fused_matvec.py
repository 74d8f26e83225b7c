"""Sums across the outer loop on threads (per-chunk partial rows) and big matrix-vector
products as fusable loops: values against NumPy, the generated code's shape, and the
linear-model gradient as one pass over its matrix."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.compiler import codegen
from tracejit.compiler.matvec import MATVEC_LOOP_MIN

RNG = np.random.default_rng(17)


def column_and_total_sums(x):
    return tnp.sum(x * x, axis=0), tnp.sum(tnp.tanh(x)), tnp.sum(x, axis=1), \
        tnp.sum(x[..., None] * x[..., None], axis=(0, 2))


column_jit = tj.jit(column_and_total_sums)
column_serial = tj.jit(column_and_total_sums, parallel=False)


@pytest.mark.parametrize("shape, dtype", [((20011, 7), np.float64), ((3, 40000), np.float64),
                                          ((5000, 13), np.float32)])
def test_sums_across_rows_run_in_chunks_and_match_numpy(shape, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    want = (np.sum(x * x, axis=0), np.sum(np.tanh(x)), np.sum(x, axis=1), np.sum(x * x, axis=0))
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for fn in (column_jit, column_serial):
        for got, ref in zip(fn(x), want):
            assert np.asarray(got).dtype == dtype
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    src = column_jit.lower(x).source
    # partial rows only where they are small beside the rows they split (not for 3 rows
    # of 40000 columns: 8 partial rows would outweigh them)
    chunked = shape[0] > 1000
    assert ("_parts" in src and "numba.prange(_chunks)" in src) == chunked
    assert "_parts" not in column_serial.lower(x).source


def test_chunk_count_is_fixed_so_sums_do_not_depend_on_threads():
    x = RNG.standard_normal((30000, 3))
    src = column_jit.lower(x).source
    assert f"_chunks = {codegen.CHUNK_PARTS_MAX}" in src


def logistic_loss(w, b, X, y):
    return tnp.mean(tnp.logaddexp(0.0, -y * (X @ w + b)))


def _logistic_grad_by_hand(w, b, X, y):
    z = -y * (X @ w + b)
    r = -y / (1.0 + np.exp(-z)) / len(y)
    return X.T @ r, np.sum(r)


def test_linear_model_gradient_is_one_pass_over_the_matrix():
    X = RNG.standard_normal((4000, 50))
    y = np.sign(RNG.standard_normal(4000))
    w, b = 0.1 * RNG.standard_normal(50), 0.2
    grad = tj.jit(tj.grad(logistic_loss, argnums=(0, 1)))
    gw, gb = grad(w, b, X, y)
    hw, hb = _logistic_grad_by_hand(w, b, X, y)
    np.testing.assert_allclose(gw, hw, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, hb, rtol=1e-12)
    low = grad.lower(w, b, X, y)
    assert "_xxgemv" not in low.source and low.source.count("numba.prange") == 1
    # without threads the products stay BLAS calls
    serial = tj.jit(tj.grad(logistic_loss, argnums=(0, 1)), parallel=False)
    assert "_xxgemv" in serial.lower(w, b, X, y).source
    np.testing.assert_allclose(serial(w, b, X, y)[0], hw, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matrix_vector_products_either_side(dtype):
    X = RNG.standard_normal((600, 200)).astype(dtype)  # above MATVEC_LOOP_MIN elements
    assert X.size >= MATVEC_LOOP_MIN
    v, u = RNG.standard_normal(200).astype(dtype), RNG.standard_normal(600).astype(dtype)
    f = tj.jit(lambda X, v, u: (X @ v, u @ X, tnp.dot(X.T, u), tnp.matmul(v, X.T)))
    want = (X @ v, u @ X, X.T @ u, v @ X.T)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for got, ref in zip(f(X, v, u), want):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    assert "_xxgemv" not in f.lower(X, v, u).source
    small = tj.jit(lambda X, v: X @ v)
    assert "_xxgemv" in small.lower(X[:100, :100], v[:100]).source
