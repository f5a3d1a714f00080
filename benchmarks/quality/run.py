#!/usr/bin/env python3
"""Quality benchmark: the wake-word task, fp32 models, measured end to end on this machine.

    .venv/bin/python benchmarks/quality/run.py [--quick]

Synthesises the corpus (espeak-ng + flite voices for training, split by voice; piper as the unseen
engine; Debian's human recordings as the false-accept stream), trains the DS-CNN student and a teacher,
evaluates both, and writes results.json and results.md beside this file. Nothing here is copied or
estimated: every number is what this run measured.
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

from hostside import api  # noqa: E402

GOAL = {"unseen_engine_accuracy": ">= 0.971", "false_rejection_rate": "<= 0.05", "false_accepts_per_hour": "<= 1"}


def machine() -> dict:
    import torch
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "cuda": torch.cuda.is_available(), "platform": platform.platform()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small run to check the script (results not recorded)")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"), help="scratch folder")
    ap.add_argument("--threshold", type=float, default=0.8, help="operating threshold (default 0.8)")
    args = ap.parse_args()
    quick = args.quick
    corpus = args.work / ("corpus-quick" if quick else "corpus")
    cfg = dict(voices=161, positives_per_voice=6, unknown_per_voice=6, few_voice_repeats=8, silence_clips=300,
               unseen_positives=200, unseen_unknown=200, fa_stream_seconds=-1, seed=0)
    if quick:
        cfg.update(voices=30, positives_per_voice=1, unknown_per_voice=1, few_voice_repeats=1, silence_clips=20,
                   unseen_positives=10, unseen_unknown=10, fa_stream_seconds=60)
    runs = [
        # (name, model, features, epochs, extra)
        ("dscnn_student", "dscnn-mlperf", "mfcc10", 3 if quick else 60, {}),
        ("dscnn_wide_teacher", "dscnn-wide", "mfcc10", 1 if quick else 25, {}),
    ]
    t0 = time.monotonic()
    c = api.synth(corpus, progress=sys.stderr.isatty(), **cfg)
    timings = {"synth_s": time.monotonic() - t0}
    results = {"task": "wakeword", "phrase": "hey kimi", "command": "python benchmarks/quality/run.py" + (" --quick" if quick else ""),
               "machine": machine(), "goal_fp32_student": GOAL, "threshold": args.threshold,
               "corpus": {"config": cfg, "clips": {s: len(c.split(s)) for s in ("train", "val", "test", "unseen")},
                          "engines": c.meta.get("engines_used"), "fa_stream": c.meta.get("fa_stream")},
               "protocol": "held_out_voice_accuracy: test split (voices never in train/val); unseen_engine_accuracy: "
                           "piper clips (engine never trained on or selected on); false_rejection_rate: unseen-engine "
                           "wake-word clips below the threshold; false_accepts_per_hour: triggers on the real-speech "
                           "stream (1 s windows every 100 ms, 3-window moving average, 1 s refractory)",
               "models": {}}
    for name, model, feats, epochs, extra in runs:
        t = time.monotonic()
        ck = args.work / f"{name}.pt"
        tr = api.train(corpus, ck, model=model, features=feats, epochs=epochs, seed=0, progress=sys.stderr.isatty(), **extra)
        timings[f"{name}_train_s"] = time.monotonic() - t
        ev = api.evaluate(ck, corpus, args.work / f"eval-{name}", threshold=args.threshold)
        ww = ev["wakeword"]
        results["models"][name] = {
            "architecture": model, "features": feats, "epochs": epochs, "params": tr["params"],
            "held_out_voice_accuracy": ev["splits"]["test"]["accuracy"],
            "unseen_engine_accuracy": ev["splits"].get("unseen", {}).get("accuracy"),
            "false_rejection_rate": ww.get("false_rejection_rate_unseen"),
            "false_rejection_rate_held_out_voices": ww.get("false_rejection_rate_test"),
            "false_accepts_per_hour": ww.get("false_accepts_per_hour"),
            "val_accuracy": ev["splits"]["val"]["accuracy"],
            "per_engine_accuracy": {k: v["accuracy"] for k, v in ev["engines"].items()},
            "det": ww.get("det", {}).get("points"),
        }
        print(json.dumps({k: v for k, v in results["models"][name].items() if k != "det"}, indent=1), flush=True)
    timings["total_s"] = time.monotonic() - t0
    results["timings_s"] = timings
    if quick:
        print("quick run: not recorded")
        return 0
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    (HERE / "results.md").write_text(markdown(results))
    print(f"wrote {HERE / 'results.json'} and {HERE / 'results.md'}")
    return 0


def markdown(r: dict) -> str:
    def f(v, pct=False):
        return "n/a" if v is None else (f"{100 * v:.2f} %" if pct else f"{v:.2f}")
    lines = ["# Quality benchmark — wake word \"hey kimi\" (fp32)", "",
             f"Command: `{r['command']}`  ", f"Machine: {r['machine']}  ",
             f"Corpus: {r['corpus']['clips']} clips, engines {r['corpus']['engines']}; real-speech stream "
             f"{(r['corpus']['fa_stream'] or {}).get('seconds', 0) / 60:.1f} min from {(r['corpus']['fa_stream'] or {}).get('sources')}",
             "", f"Protocol: {r['protocol']}. Threshold {r['threshold']}.", "",
             "| model | params | held-out voices | unseen engine | FRR (unseen) | FA / hour |", "|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} ({m['architecture']}, {m['features']}) | {m['params']:,} | {f(m['held_out_voice_accuracy'], True)} | "
                     f"{f(m['unseen_engine_accuracy'], True)} | {f(m['false_rejection_rate'], True)} | {f(m['false_accepts_per_hour'])} |")
    lines += ["", f"Goal for the fp32 student: unseen-engine accuracy {GOAL['unseen_engine_accuracy']}, "
                  f"FRR {GOAL['false_rejection_rate']}, false accepts/hour {GOAL['false_accepts_per_hour']}.", ""]
    s = r["models"].get("dscnn_student", {})
    met = (s.get("unseen_engine_accuracy") or 0) >= 0.971 and (s.get("false_rejection_rate") or 1) <= 0.05 \
        and (s.get("false_accepts_per_hour") if s.get("false_accepts_per_hour") is not None else 99) <= 1
    lines.append(f"Goal {'reached' if met else 'not reached'} by the student in this run (see the table).")
    lines.append(f"Timings (s): { {k: round(v) for k, v in r['timings_s'].items()} }")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
