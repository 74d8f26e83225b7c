"""The primitive set. Importing this package registers every primitive's rules."""

from . import control, elementwise, indexing, linalg, reductions, sorting, structural  # noqa: F401
