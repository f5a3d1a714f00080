"""The integer reference: a numpy interpreter of the integer graph. It is the specification.
It must not import torch."""
from .interpreter import run, run_batch  # noqa: F401
