"""Lowering a trained torch model to the integer graph."""
from .ptq import quantize_ptq  # noqa: F401
