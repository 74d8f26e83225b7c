"""The primitive set. Importing this package registers every primitive's rules."""

from . import elementwise, indexing, linalg, reductions, structural  # noqa: F401
