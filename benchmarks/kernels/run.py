#!/usr/bin/env python3
"""Kernel benchmark on the emulated RV32IMAC board (QEMU, -icount shift=0: instruction counts are exact).

    .venv/bin/python benchmarks/kernels/run.py        (or: make bench-kernels)
    .venv/bin/python benchmarks/kernels/run.py --packed always   (results-packed-always.*: the packed kernels'
                                                                  scratch for every layer, the arena may grow)

For the MLPerf Tiny KWS DS-CNN geometry at int8 and int4 (weights; int8 activations), runs the firmware
with the reference kernels (kernels_ref.c) and with the tuned ones (kernels_rv32.c), checks every output
against the numpy reference with ==, and records instructions per inference, per MAC, per layer type,
and the code size of each build. Writes results.json and results.md beside this file.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hostside.artifact import write_model_bin  # noqa: E402
from hostside.boards import load_board  # noqa: E402
from hostside.codegen import render_firmware  # noqa: E402
from hostside.models.ops import float_ops  # noqa: E402
from hostside.compress.quant import build_quantnet  # noqa: E402
from hostside.device.build import build_firmware  # noqa: E402
from hostside.device.qemu import QemuBoard, make_flash_image  # noqa: E402
from hostside.device.session import Session  # noqa: E402
from hostside.models import build_model  # noqa: E402
from hostside.plan import make_plan  # noqa: E402
from hostside.reference import run_batch  # noqa: E402

ESP_NN_GENERIC = 25.8e6          # quoted in the firmware issue (#6): ESP-NN generic C kernels, not measured here
TFLM_REFERENCE = 44.3e6          # quoted in the firmware issue (#6): TFLite Micro reference kernels, not measured here
RUNS = 3


def model(wbits: int):
    torch.manual_seed(0)
    m = build_model("dscnn-mlperf", (49, 10), 12).eval()
    x = np.random.default_rng(0).normal(0, 3, size=(64, 49, 10)).astype(np.float32)
    g = build_quantnet(float_ops(m), (49, 10), wbits, 8, 8, calib=x).to_int_graph()
    return g, np.stack([g.quantize_input(f) for f in x[:RUNS]])


PORT_SYMBOLS = ("platform_", "main", "memcpy", "memset", "paint_stack", "_start")


def text_sizes(board, elf: Path) -> dict:
    """.text of the ELF, and the part that is not the board port (runtime, kernels, model code, telemetry,
    app loop), from the symbol table."""
    nm = board.toolchain["cc"].replace("gcc", "nm")
    out = subprocess.run([nm, "-S", "--size-sort", str(elf)], capture_output=True, text=True).stdout.splitlines()
    port = 0
    for line in out:
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT" and parts[3].startswith(PORT_SYMBOLS):
            port += int(parts[1], 16)
    total = int(subprocess.run([board.toolchain["cc"].replace("gcc", "size"), "-A", str(elf)], capture_output=True,
                               text=True).stdout.split(".text")[1].split()[0])
    return {"text_total": total, "board_port": port, "runtime_plus_kernels": total - port}


def run(g, xs, kernels: str, packed: str = "fit") -> dict:
    board = load_board("rv32-virt")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        plan = make_plan(g, board, packed=packed)
        art = write_model_bin(d / "model.bin", g, plan)
        rendered = render_firmware(art, board, d / "fw", kernels=kernels)
        elf = build_firmware(board, rendered)
        img = make_flash_image(board, d / "model.bin", d / "flash.img")
        with QemuBoard(board, elf, img) as t:
            res = Session(t, art.model_sha256, 300).run(xs, g)
        exact = bool(np.array_equal(np.array(res.outputs), run_batch(g, xs).astype(np.int64)))
        sizes = text_sizes(board, elf)
        elf_text = sizes["text_total"]
    macs = g.total_macs
    by_op: dict[str, dict] = {}
    for i, L in enumerate(g.layers):
        e = by_op.setdefault(L.op, {"macs": 0, "instructions": 0})
        e["macs"] += L.macs
        e["instructions"] += int(np.median([r[i] for r in res.layer_instret]))
    for e in by_op.values():
        e["instructions_per_mac"] = e["instructions"] / e["macs"] if e["macs"] else None
    inst = int(np.median(res.instret))
    runtime_kernels = sizes["runtime_plus_kernels"]
    return {"kernels": kernels, "bit_exact": exact, "first_mismatch": res.first_mismatch,
            "instructions_per_inference": inst, "macs": macs, "instructions_per_mac": inst / macs,
            "by_op": by_op, "per_layer": [{"name": L.name, "op": L.op, "macs": L.macs,
                                           "instructions": int(np.median([r[i] for r in res.layer_instret]))}
                                          for i, L in enumerate(g.layers)],
            "code_text_bytes": sizes, "runtime_plus_kernels_text_bytes": runtime_kernels, "elf_text_bytes": elf_text,
            "stack_high_water_mark": res.ram.get("stack_hwm"), "planned_peak_ram_bytes": plan.peak_ram_bytes}


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packed", choices=("fit", "always", "never"), default="fit",
                    help="where the planner gives the packed (SWAR) kernels their scratch (make_plan's packed)")
    args = ap.parse_args()
    suffix = "" if args.packed == "fit" else f"-packed-{args.packed}"
    cmd = "python benchmarks/kernels/run.py" + ("" if args.packed == "fit" else f" --packed {args.packed}")
    results = {"command": cmd, "packed": args.packed, "board": "rv32-virt (QEMU virt, -icount shift=0)",
               "machine": {"python": platform.python_version(), "platform": platform.platform()},
               "model": "DS-CNN, MLPerf Tiny KWS geometry (49x10 input, 64 ch, 4 DS blocks, 12 classes)",
               "provenance": "emulated: exact instruction counts from QEMU; not cycles, not time",
               "quoted_for_comparison": {"esp_nn_generic_instructions": ESP_NN_GENERIC,
                                         "tflm_reference_instructions": TFLM_REFERENCE,
                                         "source": "quoted in the firmware issue (#6); not measured by pqlr"},
               "goals": {"dscnn_int8_instructions_per_mac": "<= 2.5", "dscnn_int8_speedup_vs_ref": ">= 4",
                         "runtime_plus_kernels_text_bytes": "<= 16384"},
               "runs": {}}
    for wbits in (8, 4):
        g, xs = model(wbits)
        for kernels in ("ref", "rv32"):
            r = run(g, xs, kernels, args.packed)
            results["runs"][f"int{wbits}_{kernels}"] = r
            print(f"int{wbits} {kernels}: {r['instructions_per_inference']:,} instructions, "
                  f"{r['instructions_per_mac']:.2f}/MAC, bit-exact {r['bit_exact']}", flush=True)
    R = results["runs"]
    results["dscnn_int8_instructions_per_mac"] = R["int8_rv32"]["instructions_per_mac"]
    results["dscnn_int4_instructions_per_mac"] = R["int4_rv32"]["instructions_per_mac"]
    results["dscnn_int8_instructions_per_inference"] = R["int8_rv32"]["instructions_per_inference"]
    results["dscnn_int8_speedup_vs_ref"] = R["int8_ref"]["instructions_per_inference"] / R["int8_rv32"]["instructions_per_inference"]
    results["dscnn_int4_speedup_vs_ref"] = R["int4_ref"]["instructions_per_inference"] / R["int4_rv32"]["instructions_per_inference"]
    results["dscnn_int8_vs_esp_nn_generic"] = ESP_NN_GENERIC / R["int8_rv32"]["instructions_per_inference"]
    results["kernels"] = [{"op": op, "bits": f"int{wb}", "kernels": k, **v}
                          for wb in (8, 4) for k in ("ref", "rv32")
                          for op, v in R[f"int{wb}_{k}"]["by_op"].items()]
    (HERE / f"results{suffix}.json").write_text(json.dumps(results, indent=1))
    lines = ["# Kernel benchmark — rv32-virt (QEMU, exact instruction counts)", "",
             f"Command: `{results['command']}`. Model: {results['model']}.", "",
             f"Plan: packed kernels' scratch `{args.packed}` (make_plan's packed).", "",
             "| build | instructions / inference | per MAC | bit-exact | runtime+kernels .text | ELF .text | stack HWM | planned peak RAM |",
             "|---|---|---|---|---|---|---|---|"]
    for k, r in R.items():
        lines.append(f"| {k} | {r['instructions_per_inference']:,} | {r['instructions_per_mac']:.2f} | {r['bit_exact']} | "
                     f"{r['runtime_plus_kernels_text_bytes']:,} B | {r['elf_text_bytes']:,} B | {r['stack_high_water_mark']} B | "
                     f"{r['planned_peak_ram_bytes']:,} B |")
    lines += ["", "| op | bits | kernels | MACs | instructions | per MAC |", "|---|---|---|---|---|---|"]
    for e in results["kernels"]:
        lines.append(f"| {e['op']} | {e['bits']} | {e['kernels']} | {e['macs']:,} | {e['instructions']:,} | "
                     f"{e['instructions_per_mac']:.2f} |")
    lines += ["", f"int8 speed-up over kernels_ref.c: {results['dscnn_int8_speedup_vs_ref']:.2f}× (goal ≥ 4); "
                  f"int8 instructions per MAC: {results['dscnn_int8_instructions_per_mac']:.2f} (goal ≤ 2.5); "
                  f"vs ESP-NN generic C as quoted in issue #6 (25.8 M): {results['dscnn_int8_vs_esp_nn_generic']:.2f}× fewer "
                  f"(goal ≥ 3.9; the quoted figure is not measured here).", ""]
    (HERE / f"results{suffix}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
