"""SciPy's API on traced values: `tracejit.scipy.special`."""

from . import special  # noqa: F401
