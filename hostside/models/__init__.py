"""Models: DS-CNN (and, later, transformer students and teachers)."""
from .dscnn import DSCNN, build_model  # noqa: F401
