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
