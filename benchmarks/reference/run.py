#!/usr/bin/env python3
"""How fast the numpy integer reference runs a model on the host: what `pqlr eval` of a model.bin and the INT4
rows of the quality benchmark spend most of their time on (every window of hours of streams).

    .venv/bin/python benchmarks/reference/run.py                          (the demo's model: make demo first)
    .venv/bin/python benchmarks/reference/run.py --model path/to/model.bin --inputs 2048

Runs `--inputs` consecutive windows of one stream (its state carried, as `pqlr eval` streams a recording)
through hostside.reference.run_batch at several chunk sizes (inputs taken through each layer at once) and at the
default (batch_chunk), checks every output against the chunk-of-1 run with ==, and records milliseconds per
input. Inputs are seeded random int8 features (the kernels' time does not depend on the values). Writes
results.json and results.md beside this file (or --out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import numpy as np  # noqa: E402

from hostside.artifact import read_model_bin  # noqa: E402
from hostside.reference import interpreter  # noqa: E402

CHUNKS = (1, 4, 16, 64, 256, 512)


def timed(graph, xs, chunk, runs: int):
    """(best seconds over runs, outputs) of one stream of xs at this chunk (None: run_batch's default)."""
    best, out = float("inf"), None
    for _ in range(runs):
        t = time.perf_counter()
        out = interpreter.run_batch(graph, xs, chunk=chunk, state={})
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="a model.bin (default: the demo's)")
    ap.add_argument("--inputs", type=int, default=1024, help="windows of the stream (default 1024)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per chunk size; the best is kept (default 3)")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for results.json and results.md")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        ap.error(f"{args.model} does not exist: run `make demo` first, or give --model path/to/model.bin")
    load = os.getloadavg()[0]                    # other work on the cores (recorded: the times depend on it)
    g = read_model_bin(args.model).graph
    xs = np.clip(np.random.default_rng(0).normal(0, 40, size=(args.inputs, *g.input_shape)), -128, 127).astype(np.int8)
    default = interpreter.batch_chunk(g) if hasattr(interpreter, "batch_chunk") else None
    rows, want = [], None
    for chunk in (*CHUNKS, None):
        if chunk is None and default is None:
            continue
        s, out = timed(g, xs, chunk, 1 if chunk == 1 else args.runs)
        want = out if want is None else want
        rows.append({"chunk": chunk or default, "default": chunk is None, "ms_per_input": round(1000 * s / len(xs), 3),
                     "bit_exact_with_chunk_1": bool(np.array_equal(out, want))})
        print(f"chunk {rows[-1]['chunk']:>4}{' (default)' if chunk is None else '':10}: "
              f"{rows[-1]['ms_per_input']:.3f} ms an input, bit-exact {rows[-1]['bit_exact_with_chunk_1']}")
    res = {"command": "python benchmarks/reference/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "model": str(args.model), "layers": [L.op for L in g.layers], "inputs": args.inputs, "runs": args.runs,
           "host": {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
                    "cpus": os.cpu_count(), "load_average_at_start": round(load, 2)},
           "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# Numpy integer reference: time per input on the host", "",
             f"`{res['command']}` — {args.inputs} consecutive windows of one stream through `{args.model}` "
             f"({len(g.layers)} layers: {', '.join(dict.fromkeys(res['layers']))}); best of {args.runs} runs; "
             f"{res['host']['cpus']} CPUs (load average {load:.2f} at the start), numpy {np.__version__}.", "",
             "| inputs a chunk | ms an input | bit-exact with chunk 1 |", "|---|---|---|"]
    lines += [f"| {r['chunk']}{' (default)' if r['default'] else ''} | {r['ms_per_input']:.3f} | "
              f"{r['bit_exact_with_chunk_1']} |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["bit_exact_with_chunk_1"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
