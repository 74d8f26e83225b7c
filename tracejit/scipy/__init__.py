"""SciPy's API on traced values: `tracejit.scipy.special` and `tracejit.scipy.linalg`."""

from . import linalg, special  # noqa: F401
