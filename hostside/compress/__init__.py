"""The PQLR compression pipeline: prune → low-rank → quantise (LSQ+ QAT), distillation in every
fine-tune, then the integer export."""
from .recipe import Recipe, from_dict, load_recipe  # noqa: F401
