#!/usr/bin/env python3
"""Transformer benchmark: the integer-only transformer student (microbert-2l) from checkpoint to the
emulated board, measured.

    .venv/bin/python benchmarks/transformer/run.py [--qat-epochs 3]

Uses the corpus of benchmarks/quality/run.py (it runs that first if the corpus is missing), trains
microbert-2l on log-mel 40 features if build/bench-transformer/microbert.pt is missing, then
1. calibrates the integer transformer (hostside/compress/qtransformer.py) and fine-tunes it with QAT, with
   int8 weights and with int4 encoder weights (W4A8; the last stage, int8, is the one run on the board);
2. lowers it to the integer graph and writes model.bin (round trip through the validating reader);
3. on the held-out-voice test split and the unseen-engine split, measures:
   - the fp32 model, the conventional fake-quant model (float softmax / layer norm / GELU on the same
     quantised tensors) and the integer model (numpy reference on the model.bin graph): accuracy;
   - top-1 agreement of the integer model with the fake-quant model (goal ≥ 99.5 %), and how often the
     QAT model's own integer forward equals the reference bit for bit (it must be 100 %);
4. plans RAM for esp32c6 and runs a few inputs on the emulated RV32IMAC board (QEMU, tuned kernels): bit
   exactness, exact instruction counts per inference and per op.
Writes results.json and results.md beside this file.
"""
from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from hostside import api  # noqa: E402
from hostside.artifact import write_model_bin  # noqa: E402
from hostside.boards import load_board  # noqa: E402
from hostside.plan import make_plan  # noqa: E402
from hostside.reference import run_batch  # noqa: E402
from hostside.train import load_checkpoint  # noqa: E402

CORPUS = Path("build/bench-quality/corpus")
WORK = Path("build/bench-transformer")


def _kernels_bench():
    spec = importlib.util.spec_from_file_location("kernels_bench", ROOT / "benchmarks/kernels/run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@torch.no_grad()
def measure(net, model, graph, x: np.ndarray, y: np.ndarray) -> dict:
    xt = torch.from_numpy(x)
    fp32 = model(xt).argmax(1).numpy()
    q_exact, _, _ = net.set_exact(True).forward_int(xt.double())
    q_fake, s, z = net.set_exact(False).forward_int(xt.double())
    net.set_exact(True)
    xs = np.stack([graph.quantize_input(f) for f in x])
    ref = run_batch(graph, xs).astype(np.int64)
    fq = ((q_fake - z) * s).numpy().argmax(1)
    integer = ref.argmax(1)
    return {"n": int(len(y)), "fp32_accuracy": float((fp32 == y).mean()),
            "fake_quant_accuracy": float((fq == y).mean()), "integer_accuracy": float((integer == y).mean()),
            "integer_vs_fake_quant_top1_agreement": float((integer == fq).mean()),
            "integer_vs_fp32_top1_agreement": float((integer == fp32).mean()),
            "qat_forward_equals_reference": float((q_exact.numpy().astype(np.int64) == ref).all(axis=1).mean())}


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qat-epochs", type=int, default=3, help="QAT fine-tuning epochs (default 3)")
    ap.add_argument("--epochs", type=int, default=30, help="fp32 training epochs if no checkpoint (default 30)")
    ap.add_argument("--qemu-inputs", type=int, default=4, help="inputs run on the emulated board (default 4)")
    args = ap.parse_args()
    t0 = time.monotonic()
    if not (CORPUS / "manifest.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "benchmarks/quality/run.py")], check=True)
    WORK.mkdir(parents=True, exist_ok=True)
    ckpt = WORK / "microbert.pt"
    if not ckpt.is_file():
        api.train(CORPUS, ckpt, model="microbert-2l", features="logmel40", epochs=args.epochs,
                  progress=sys.stderr.isatty())
    model, ck = load_checkpoint(ckpt)
    _, xtr, _ = api.load_features(CORPUS, "train", ck["frontend"])
    calib = xtr[np.random.default_rng(0).permutation(len(xtr))[:200]]
    splits = {name: api.load_features(CORPUS, name, ck["frontend"])[1:] for name in ("test", "unseen")}
    rows = {}
    stages = [("calibrated", 0, 8), (f"qat_{args.qat_epochs}_epochs_w4", args.qat_epochs, 4),
              (f"qat_{args.qat_epochs}_epochs", args.qat_epochs, 8)]
    for label, epochs, wbits in stages:
        if epochs == 0 and args.qat_epochs == 0 and rows:
            break
        t1 = time.monotonic()
        net = api.quant_transformer(model, ck, CORPUS, calib, epochs, progress=sys.stderr.isatty(), wbits=wbits)
        graph = net.to_int_graph(tuple(ck["classes"]), ck["frontend"])
        board = load_board("esp32c6")
        plan = make_plan(graph, board)
        art = write_model_bin(WORK / f"microbert-{label}.bin", graph, plan)
        rows[label] = {"qat_epochs": epochs, "encoder_weight_bits": wbits, "wall_s": time.monotonic() - t1,
                       "splits": {k: measure(net, model, art.graph, x.astype(np.float32), y)
                                  for k, (x, y) in splits.items()},
                       "model_bin_bytes": art.size, "weight_bytes": plan.weight_bytes,
                       "esp32c6_plan": {"tile_buffer_bytes": plan.tile_buffer_bytes, "arena_bytes": plan.arena_bytes,
                                        "stack_estimate_bytes": plan.stack_estimate_bytes,
                                        "peak_ram_bytes": plan.peak_ram_bytes, "tiles": len(plan.tiles)}}
        print(label, json.dumps(rows[label]["splits"], indent=1), flush=True)
    final_label = list(rows)[-1]
    g = write_model_bin(WORK / "final.bin", graph, make_plan(graph, load_board("rv32-virt"))).graph
    xq = np.stack([g.quantize_input(f) for f in splits["test"][0][: args.qemu_inputs]])
    qemu = _kernels_bench().run(g, xq, "rv32")
    all_n = sum(r["n"] for r in rows[final_label]["splits"].values())
    agree = sum(r["n"] * r["integer_vs_fake_quant_top1_agreement"] for r in rows[final_label]["splits"].values())
    out = {
        "command": f"python benchmarks/transformer/run.py --qat-epochs {args.qat_epochs}",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "model": {"name": ck.get("model"), "config": ck.get("config"), "frontend": ck["frontend"]["kind"]
                  if isinstance(ck.get("frontend"), dict) and "kind" in ck["frontend"] else ck.get("frontend"),
                  "macs": graph.total_macs, "layers": len(graph.layers)},
        "rows": rows,
        "goal": {"integer_vs_fake_quant_top1_agreement": ">= 0.995"},
        "integer_vs_fake_quant_top1_agreement": agree / all_n,
        "emulated_board": {"board": "rv32-virt", "kernels": "rv32", "inputs": int(len(xq)),
                           "bit_exact": qemu["bit_exact"], "instructions_per_inference": qemu["instructions_per_inference"],
                           "instructions_per_mac": qemu["instructions_per_mac"], "by_op": qemu["by_op"],
                           "stack_high_water_mark": qemu["stack_high_water_mark"],
                           "runtime_plus_kernels_text_bytes": qemu["runtime_plus_kernels_text_bytes"]},
        "wall_s": time.monotonic() - t0,
    }
    (HERE / "results.json").write_text(json.dumps(out, indent=1, default=str))
    md = [f"# Transformer benchmark ({ck.get('model')}, integer only)", "",
          "fake-quant: the same quantised tensors with float softmax, layer norm, GELU and requantisation; "
          "integer: the numpy reference on the model.bin graph (what the board computes, bit for bit).", "",
          f"Command: `{out['command']}` — {out['machine']['platform']}, wall {out['wall_s']:.0f} s.", "",
          "| stage | model.bin | split | n | fp32 | fake-quant | integer | integer = fake-quant top-1 | QAT forward = reference |",
          "|---|---|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        for k, m in r["splits"].items():
            md.append(f"| {label} | {r['model_bin_bytes']:,} B | {k} | {m['n']} | {m['fp32_accuracy']:.2%} | {m['fake_quant_accuracy']:.2%} | "
                      f"{m['integer_accuracy']:.2%} | {m['integer_vs_fake_quant_top1_agreement']:.2%} | "
                      f"{m['qat_forward_equals_reference']:.2%} |")
    p = rows[final_label]["esp32c6_plan"]
    e = out["emulated_board"]
    md += ["", f"Top-1 agreement, integer vs fake-quant ({final_label}, all {all_n} inputs): "
           f"**{out['integer_vs_fake_quant_top1_agreement']:.2%}** (goal ≥ 99.5 %).", "",
           f"esp32c6 plan: tile buffer {p['tile_buffer_bytes']:,} B + arena {p['arena_bytes']:,} B + stack estimate "
           f"{p['stack_estimate_bytes']:,} B = {p['peak_ram_bytes']:,} B; model.bin "
           f"{rows[final_label]['model_bin_bytes']:,} B ({p['tiles']} tiles).", "",
           f"Emulated RV32IMAC (QEMU, tuned kernels, {e['inputs']} inputs): bit exact {e['bit_exact']}, "
           f"{e['instructions_per_inference']:,} instructions per inference "
           f"({e['instructions_per_mac']:.2f} per MAC), stack high-water mark {e['stack_high_water_mark']} B.", "",
           "| op | MACs | instructions | per MAC |", "|---|---|---|---|"]
    for op, v in e["by_op"].items():
        per = f"{v['instructions'] / v['macs']:.2f}" if v["macs"] else "—"
        md.append(f"| {op} | {v['macs']:,} | {v['instructions']:,} | {per} |")
    (HERE / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
