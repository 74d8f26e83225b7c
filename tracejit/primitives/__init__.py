"""The primitive set. Importing this package registers every primitive's rules."""

from . import control, elementwise, indexing, linalg, reductions, structural  # noqa: F401
