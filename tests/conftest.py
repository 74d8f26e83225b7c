"""Shared test helpers: every IR a test produces goes through the checker."""

import numpy as np
import pytest

import tracejit as tj


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def checked_ir(f, *args, **kwargs):
    """make_ir + the IR checker."""
    ir = tj.make_ir(f, **kwargs)(*args)
    tj.check_ir(ir)
    return ir


def assert_like_numpy(actual, expected, rtol=1e-12):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if actual.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, equal_nan=True)


def call_checked(transformed, *args):
    """`transformed(*args)` (e.g. tj.grad(f)), with the IR it records checked too."""
    checked_ir(transformed, *args)
    return transformed(*args)
