"""Imported models on the emulated RV32IMAC board: what an always-on wake word costs, per step and per second.

For each microWakeWord model shipped in the PyPI package pymicro-wakeword (int8 streaming .tflite files, the ones
ESPHome runs through TFLite Micro on ESP32 chips): `pqlr import` (with the per-layer check against the TFLite
interpreter), then `pqlr bench --board rv32-virt` (the tuned rv32 kernels, exact instruction counts from QEMU,
RAM measured by painting, bit-exact against pqlr's reference, which the import check ties to TFLite). Beside
each, the figures TFLite Micro's own numbers imply where they exist (the tensor arena each model's manifest
asks ESPHome to allocate), and today's pqlr detector (a 1-second window every 100 ms,
benchmarks/kernels/results.json).

    python benchmarks/import/run.py [--runs 60] [--work build/bench-import]

Writes benchmarks/import/results.json and results.md. Needs the `import` extra (pip install -e '.[import]')
and what `make deps` installs (the RISC-V cross compiler and QEMU).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hostside import api  # noqa: E402
from hostside.boards import load_board  # noqa: E402

HERE = Path(__file__).resolve().parent
CPU_HZ = 160_000_000


def version(dist: str) -> str:
    from importlib.metadata import version as v
    return v(dist)


def export_stream_dscnn(path: Path, board, mode: str = "tiled") -> dict:
    """pqlr's own streaming DS-CNN (dscnn-stream, 64 channels, 4 blocks, 49×10 MFCC window), seeded and calibrated,
    exported with --streaming: one 10 ms feature frame per step. Returns what import_model would."""
    import numpy as np
    import torch
    from hostside.artifact import write_model_bin
    from hostside.compress.quant import build_quantnet
    from hostside.export.streaming import to_streaming
    from hostside.models import build_model
    from hostside.models.ops import float_ops
    from hostside.plan import make_plan
    torch.manual_seed(0)
    m = build_model("dscnn-stream", (49, 10), 12).eval()
    x = np.random.default_rng(0).normal(0, 3, size=(48, 49, 10)).astype(np.float32)
    g = to_streaming(build_quantnet(float_ops(m), (49, 10), 8, 8, 8, calib=x).to_int_graph())
    art = write_model_bin(path, g, make_plan(g, board, mode=mode))
    return {"check": {"steps": 0, "reason": "pqlr's own model: no TFLite source (tests/test_streaming_export.py checks "
                      "it against the window model)"}, "layers": len(g.layers), "macs": g.total_macs,
            "state_bytes": sum(int(np.prod(L.out_shape)) for L in g.layers if L.op == "stream"), "bytes": art.size,
            "rounding": g.rounding}


def export_mlperf_geometry(path: Path) -> None:
    """pqlr's DS-CNN in the MLPerf Tiny KWS geometry, seeded and calibrated, written as .tflite (as the tests do)."""
    import numpy as np
    import torch
    from hostside.compress.quant import build_quantnet
    from hostside.importer.tflite_writer import export_tflite
    from hostside.models import build_model
    from hostside.models.ops import float_ops
    torch.manual_seed(0)
    m = build_model("dscnn-mlperf", (49, 10), 12).eval()
    x = np.random.default_rng(0).normal(0, 3, size=(48, 49, 10)).astype(np.float32)
    export_tflite(build_quantnet(float_ops(m), (49, 10), 8, 8, 8, calib=x).to_int_graph(), path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60, help="steps run on the emulated board per model (default 60)")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-import")
    ap.add_argument("--models", default="alexa,hey_jarvis,hey_mycroft,okay_nabu",
                    help="pymicro-wakeword models to run (comma-separated; empty: none)")
    ap.add_argument("--mlperf", type=Path, default=None,
                    help="MLPerf Tiny's kws_ref_model.tflite (from mlcommons/tiny; pqlr does not ship or download it)")
    ap.add_argument("--check-steps", type=int, default=200, help="steps compared with the TFLite interpreter")
    ap.add_argument("--render-only", action="store_true", help="rewrite results.md from results.json")
    ap.add_argument("--xip", default="okay_nabu,pqlr_dscnn_stream",
                    help="models also run with an xip plan (weights read in place from mapped flash)")
    args = ap.parse_args()
    if args.render_only:
        (HERE / "results.md").write_text(markdown(json.loads((HERE / "results.json").read_text())))
        return 0
    import pymicro_wakeword
    models_dir = Path(pymicro_wakeword.__file__).parent / "models"
    board = load_board("rv32-virt")
    kernels = json.loads((HERE.parent / "kernels" / "results.json").read_text())
    today = kernels.get("dscnn_int8_instructions_per_inference")
    rows = []
    jobs = []                                     # (name, .tflite, source, manifest, seconds of audio per step)
    for name in [m for m in args.models.split(",") if m]:
        manifest = json.loads((models_dir / f"{name}.json").read_text())
        jobs.append((name, models_dir / f"{name}.tflite",
                     f"pymicro-wakeword {version('pymicro-wakeword')}, models/{name}.tflite", manifest, None))
    mlperf_geom = args.work / "pqlr_dscnn_mlperf.tflite"
    export_mlperf_geometry(mlperf_geom)
    jobs.append(("pqlr_dscnn_mlperf_geometry", mlperf_geom, "pqlr's DS-CNN in the MLPerf Tiny KWS geometry (untrained, "
                 "seeded, calibrated int8), written by hostside/importer/tflite_writer.py", {}, 0.1))
    if args.mlperf:
        jobs.append(("mlperf_kws_ref_model", args.mlperf, f"{args.mlperf} (MLPerf Tiny's kws_ref_model.tflite, "
                     f"mlcommons/tiny benchmark/training/keyword_spotting/trained_models; supplied with --mlperf, "
                     f"not distributed with pqlr)", {}, 0.1))
    jobs.append(("pqlr_dscnn_stream", None, "pqlr's own dscnn-stream (64 channels, 4 blocks, 49×10 MFCC window; "
                 "untrained, seeded, calibrated int8) exported with --streaming", {}, 0.01))
    xip = {m for m in args.xip.split(",") if m}
    jobs += [(name + "+xip", path, source + "; xip plan", manifest, hop)
             for name, path, source, manifest, hop in list(jobs) if name in xip]
    for name, src, source, manifest, hop_s in jobs:
        micro = manifest.get("micro", {})
        mode = "xip" if name.endswith("+xip") else "tiled"
        out = args.work / name.replace("+", "_")
        t0 = time.time()
        if src is None:
            out.mkdir(parents=True, exist_ok=True)
            imp = export_stream_dscnn(out / "model.bin", board, mode)
        else:
            imp = api.import_model(src, board, out / "model.bin", check_steps=args.check_steps, mode=mode)
        rep = api.bench(board, out / "model.bin", out / "bench", runs=args.runs)["report"]
        by_op = defaultdict(lambda: {"instructions": 0.0, "macs": 0})
        for L in rep["layers"]:
            by_op[L["op"]]["instructions"] += L["instructions"] or 0
            by_op[L["op"]]["macs"] += L["macs"]
        instr = rep["instructions_per_inference"]["value"]
        if hop_s is None:                          # a streaming model: one step per input's frames
            g_rows = json.loads((out / "model.json").read_text())["input"]["shape"][0]
            step_ms = g_rows * micro.get("feature_step_size", 10)
            cadence = f"one step per {step_ms} ms of audio ({g_rows} feature frames)"
        elif name.startswith("pqlr_dscnn_stream"):
            step_ms = hop_s * 1000
            cadence = f"one step per {step_ms:.0f} ms feature frame (its 0.49 s window's past on the board)"
        else:
            step_ms = hop_s * 1000
            cadence = f"a 1 s window every {step_ms:.0f} ms"
        steps_per_s = 1000.0 / step_ms
        lat = rep["latency_ms"]
        rows.append({
            "model": name, "wake_word": manifest.get("wake_word"), "source": source, "cadence": cadence,
            "sha256": hashlib.sha256(Path(src or out / "model.bin").read_bytes()).hexdigest(),
            "import_check": imp["check"], "layers": imp["layers"], "macs_per_step": imp["macs"],
            "state_bytes": imp["state_bytes"], "model_bin_bytes": imp["bytes"], "rounding": imp["rounding"],
            "bit_exact_on_board": rep["bit_exact"], "steps_run": rep["runs"],
            "instructions_per_step": instr, "instructions_per_mac": rep["instructions_per_inference"]["per_mac"],
            "per_op": {op: {"instructions": round(v["instructions"]), "macs": v["macs"],
                            "per_mac": round(v["instructions"] / v["macs"], 2) if v["macs"] and op != "lut" else None}
                       for op, v in sorted(by_op.items())},
            "flash_bytes_per_step": rep["flash_bytes_per_inference"],
            "peak_ram_bytes": rep["peak_ram_bytes"]["value"], "ram_parts": rep["peak_ram_bytes"]["parts"],
            "code_bytes": rep["code_bytes"],
            "step_ms_of_audio": step_ms, "steps_per_second": steps_per_s,
            "instructions_per_second_of_audio": instr * steps_per_s,
            "cpu_duty_at_160mhz": {"value": instr * steps_per_s / CPU_HZ, "provenance": "estimated",
                                   "formula": "instructions per step × steps per second / 160 MHz (CPI 1, no flash "
                                              "wait states)"},
            "cpu_and_flash_duty_at_160mhz": {"value": lat["value"] * steps_per_s / 1000.0, "provenance": "estimated",
                                             "formula": "the board file's latency model (instructions + flash "
                                                        "bytes / 10 MB/s) × steps per second"},
            "energy_per_hour_mj": {"value": None, "reason": "current is measured only on a physical board with a "
                                   "sensor or a PPK2; this run is emulated"},
            "tflm": {"tensor_arena_bytes": micro.get("tensor_arena_size"),
                     "provenance": (f"the model's manifest in pymicro-wakeword (micro.tensor_arena_size): what "
                                    f"ESPHome allocates for TFLite Micro; not measured here") if micro else
                                   "no manifest; TFLite Micro is not built in this benchmark"},
            "seconds": round(time.time() - t0, 1),
        })
        print(f"{name}: {instr:,.0f} instructions/step, {rows[-1]['cpu_duty_at_160mhz']['value'] * 100:.1f} % CPU at "
              f"160 MHz, peak RAM {rows[-1]['peak_ram_bytes']:,} B, bit-exact {rep['bit_exact']}", flush=True)
    baseline = None
    if today:
        ips = today * 10
        baseline = {"what": "pqlr's own DS-CNN (MLPerf Tiny KWS geometry), a 1-second window every 100 ms",
                    "instructions_per_inference": today, "inferences_per_second": 10,
                    "instructions_per_second_of_audio": ips, "cpu_duty_at_160mhz": ips / CPU_HZ,
                    "source": "benchmarks/kernels/results.json (int8_rv32)"}
    result = {"command": "python benchmarks/import/run.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d"), "machine": platform.platform(), "board": "rv32-virt (QEMU, exact "
              "instruction counts; time and duty cycle estimated at the ESP32-C6's 160 MHz)",
              "models": rows, "today_detector": baseline,
              "peers_quoted": {"mlperf_kws_tflm_esp_nn_instructions": 25.8e6, "mlperf_kws_tflm_reference_instructions":
                               44.3e6, "provenance": "quoted in issue #14 (TFLM + ESP-NN generic C and TFLM reference "
                               "kernels on the same QEMU, MLPerf KWS model); not measured by this script"}}
    (HERE / "results.json").write_text(json.dumps(result, indent=1))
    (HERE / "results.md").write_text(markdown(result))
    print(f"wrote {HERE / 'results.md'}")
    return 0


OPS_SHOWN = ("conv2d", "dwconv2d", "pwconv2d", "fc", "meanpool", "softmax", "stream", "lut", "reshape")


def markdown(r: dict) -> str:
    L = ["# Imported models on the emulated board (rv32-virt)", "",
         f"Command: `{r['command']}` ({r['date']}). Board: {r['board']}.", "",
         "Each model: `pqlr import` (checked against the TFLite interpreter, every layer), then "
         "`pqlr bench --board rv32-virt` with the tuned rv32 kernels, a streaming model's state carried from step "
         "to step. Sources: " + "; ".join(f"{m['model']}: {m['source']} (sha256 {m.get('sha256', '?')[:12]}…)"
                                         for m in r["models"]) + ".", "",
         "| model | cadence | MACs/step | instructions/step | per MAC | steps/s | CPU at 160 MHz | +flash | peak RAM (painted) "
         "| of which state | TFLM arena (manifest) | model.bin | code .text | bit-exact |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in r["models"]:
        L.append(f"| {m['model']} | {m['cadence']} | {m['macs_per_step']:,} | {m['instructions_per_step']:,.0f} | "
                 f"{m['instructions_per_mac']:.2f} | {m['steps_per_second']:.1f} | "
                 f"{m['cpu_duty_at_160mhz']['value'] * 100:.1f} % | {m['cpu_and_flash_duty_at_160mhz']['value'] * 100:.1f} % | "
                 f"{m['peak_ram_bytes']:,} B | {m['state_bytes']:,} B | "
                 f"{(format(m['tflm']['tensor_arena_bytes'], ',') + ' B') if m['tflm']['tensor_arena_bytes'] else '–'} | "
                 f"{m['model_bin_bytes']:,} B | {m['code_bytes']['text']:,} B | {m['bit_exact_on_board']} |")
    L += ["", "Instructions per op type (per step):", "",
          "| model | " + " | ".join(OPS_SHOWN) + " |",
          "|---|" + "---|" * len(OPS_SHOWN)]
    for m in r["models"]:
        cells = []
        for op in OPS_SHOWN:
            v = m["per_op"].get(op)
            cells.append("–" if not v else f"{v['instructions']:,}" + (f" ({v['per_mac']}/MAC)" if v["per_mac"] else ""))
        L.append(f"| {m['model']} | " + " | ".join(cells) + " |")
    ref = next((m for m in r["models"] if m["model"] == "mlperf_kws_ref_model"), None)
    if ref:
        q = r["peers_quoted"]
        L += ["", f"MLPerf Tiny's own KWS model, imported: {ref['instructions_per_step'] / 1e6:.2f} M instructions per "
              f"inference on the tuned kernels, bit-exact with TFLite ({ref['rounding']} rounding), beside the counts "
              f"quoted in issue #14 for TFLite Micro on the same QEMU: {q['mlperf_kws_tflm_esp_nn_instructions'] / 1e6:.1f} M "
              f"with ESP-NN's generic C kernels ({q['mlperf_kws_tflm_esp_nn_instructions'] / ref['instructions_per_step']:.2f}× "
              f"more) and {q['mlperf_kws_tflm_reference_instructions'] / 1e6:.1f} M with its reference kernels (quoted, not "
              f"measured by this script)."]
    b = r.get("today_detector")
    if b:
        L += ["", f"Today's detector for comparison: {b['what']}: {b['instructions_per_inference']:,} instructions × "
              f"{b['inferences_per_second']}/s = {b['instructions_per_second_of_audio'] / 1e6:.1f} M instructions per "
              f"second of audio, {b['cpu_duty_at_160mhz'] * 100:.0f} % of a 160 MHz core ({b['source']})."]
    L += ["", "Provenance: instructions, flash bytes and RAM are measured on QEMU (exact counts; RAM by painting); CPU "
          "duty is an estimate (CPI 1, 160 MHz; '+flash' adds the board file's 10 MB/s flash model for the tiles "
          "streamed every step). The TFLM arena is the figure each model's manifest gives ESPHome, not measured here. "
          "Energy per hour needs a measured current: null here. Peer counts quoted in issue #14 for the MLPerf KWS "
          f"model: TFLM + ESP-NN {r['peers_quoted']['mlperf_kws_tflm_esp_nn_instructions'] / 1e6:.1f} M, TFLM "
          f"reference {r['peers_quoted']['mlperf_kws_tflm_reference_instructions'] / 1e6:.1f} M instructions per "
          "inference (not measured here)."]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
