#!/usr/bin/env python3
"""What a model.bin's phoneme branch costs on the board, and what the planner's choice around it costs: writes two
variants of the same integer model beside each other, for `pqlr bench` to run —

    <out>/without-branch/model.bin    the graph cut before its first layer that reads an earlier tensor (the branch of
                                      `pqlr export --score phonemes` / `pqlr-compress --score phonemes`): the classifier
                                      alone, the same integers, planned again
    <out>/tile-budget-N/model.bin     the whole model planned with a tile budget of N bytes (e.g. the budget the plan
                                      without the branch chose), instead of the least-peak-RAM choice

    .venv/bin/python benchmarks/quality/branch_cost.py build/kd-demo/int4-ctc03-s0-phonemes.bin \
        --out build/kd-demo/devcost/int4 [--tile-budget 3136] [--board rv32-virt]
    pqlr bench --board rv32-virt --model build/kd-demo/devcost/int4/<variant>/model.bin --runs 5 \
        --out build/kd-demo/devcost/int4/<variant>/bench

Each variant's model.json (front end, classes) is the original's.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside.artifact import read_model_bin, write_model_bin  # noqa: E402
from hostside.boards import as_board  # noqa: E402
from hostside.plan import make_plan  # noqa: E402


def write(graph, board, src: Path, dst: Path, **plan_args) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    plan = make_plan(graph, board, **plan_args)
    art = write_model_bin(dst, graph, plan)
    if src.with_suffix(".json").is_file():
        shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    print(f"{dst}: {len(graph.layers)} layers, tile buffer {plan.tile_buffer_bytes:,} B + arena {plan.arena_bytes:,} B "
          f"= {plan.tile_buffer_bytes + plan.arena_bytes:,} B planned, model.bin {art.size:,} B")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model.bin with a branch (a layer that reads an earlier tensor)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the variants")
    ap.add_argument("--tile-budget", type=int, help="also plan the whole model with this tile budget (bytes)")
    ap.add_argument("--board", default="rv32-virt", help="the board whose budgets the plans meet (default rv32-virt)")
    args = ap.parse_args()
    graph = read_model_bin(args.model).graph
    board = as_board(args.board)
    start = next((i for i, L in enumerate(graph.layers) if L.src >= 0), None)
    if start is None:
        sys.exit(f"{args.model}: no layer reads an earlier tensor: no branch to cut (export it with --score phonemes)")
    write(dataclasses.replace(graph, layers=graph.layers[:start]), board, args.model,
          args.out / "without-branch" / "model.bin")
    if args.tile_budget:
        write(graph, board, args.model, args.out / f"tile-budget-{args.tile_budget}" / "model.bin",
              tile_budget=args.tile_budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
