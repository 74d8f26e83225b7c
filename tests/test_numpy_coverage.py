"""docs/numpy-coverage.md is what scripts/numpy_coverage.py writes from the code today."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("numpy_coverage",
                                                  ROOT / "scripts" / "numpy_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_coverage_table_is_up_to_date():
    script = _script()
    if script.versions_line() not in script.TABLE.read_text():
        pytest.skip("the table was written against other NumPy/SciPy versions (its rows are "
                    f"their public functions); here: {script.versions_line()}")
    assert script.TABLE.read_text() == script.render(), (
        "docs/numpy-coverage.md is out of date: run python scripts/numpy_coverage.py")


def test_no_supported_function_differs_from_numpy_on_its_probe():
    rows = [r for r in _script().TABLE.read_text().splitlines() if r.startswith("| `")]
    assert len(rows) > 400
    assert not [r for r in rows if "| differs |" in r]


def test_left_out_names_are_numpy_names():
    """A reason for leaving out a function NumPy does not have would hide nothing."""
    import numpy as np
    script = _script()
    unknown = [n for n in script.LEFT_OUT if not hasattr(np, n)]
    assert not unknown, unknown


def test_no_supported_function_differs_from_numpy_in_float32_or_complex():
    """The float32 and complex columns: the probe's values and dtypes agree with NumPy's
    wherever both run (a `dtype` or `differs` cell is a bug, unless the table says the
    difference is by design)."""
    rows = [r.split("|") for r in _script().TABLE.read_text().splitlines()
            if r.startswith("| `")]
    bad = [r[1].strip() for r in rows if len(r) > 7 and
           {r[5].strip(), r[6].strip()} & {"differs", "dtype"}]
    assert not bad, bad
