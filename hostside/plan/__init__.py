"""Weight tiles, the activation arena and the board's budgets, decided before anything is built."""
from .planner import Plan, Tile, make_plan, plan_arena, tile_layer  # noqa: F401
