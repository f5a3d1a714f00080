#!/usr/bin/env python3
"""Quality benchmark: the "hey kimi" wake word, evaluated so that it cannot flatter, over several seeds.

    .venv/bin/python benchmarks/quality/run.py [--quick] [--seeds 0,1,2] [--epochs 25] [--int4-seeds 0,1,2]
    .venv/bin/python benchmarks/quality/run.py --demo        # what `make demo` deploys: its corpus, recipe and score

--demo: the demo's corpus (api.DEMO_CORPUS, seed 0: espeak-ng and flite voices, piper's joe and flite's slt unseen,
real speech, actors in conversation, words of 30 other languages) and the demo's student (api.DEMO_MODEL, features,
VTLP, phoneme CTC, weight average), read by the phoneme score over the demo's span with repeats (api.DEMO_SCORE,
DEMO_SPAN), its INT4 student W4A8 of the whole student, self-distilled, with a weight average over its QAT, and the
INT4 gap read again on 2,560 unseen clips (--gap-unseen-per-class 640). Each setting can still be given.

1. The corpus (benchmarks/quality/corpus.json, or with --demo the demo's → `pqlr data synth`): every installed
   English voice (--demo: espeak-ng, flite, piper); test voices
   share neither accent nor variant with training; the unseen voices (piper joe, festival/flite slt) are never
   trained or selected on; negatives split by text; disjoint noise and room pools; real human speech (asterisk
   prompts in every installed language + pocketsphinx test data) for false accepts.
2. Per seed: the fp32 DS-CNN student (--model, default dscnn-mlperf; --features, default MFCC 10; --vtlp and
   --set as `pqlr train`), evaluated by one streaming detector whose
   threshold is chosen on validation only, at the protocol's smoothing (hostside/evaluate.py).
3. Per seed: the PQLR INT4 student from that fp32 student (30 % channel pruning (--int4-sparsity), W4A8 LSQ+ QAT, exported to
   model.bin, integer model checked against the fake-quant model), evaluated the same way; --int4-teacher self
   distils the fp32 student into it during fine-tuning (default none); --int4-ema a weight average over it.
4. With --gap-unseen-per-class N: each INT4 student's clip-accuracy gap to its fp32 student, with its 95 % interval
   for paired proportions, on the corpus made again with N unseen clips per class and unseen voice.
Writes results.json and results.md beside this file (`make bench-quality` runs --demo; the first recorded run,
the MFCC 10 classifier, is results-mfcc10.json): per model and seed, and mean ± standard deviation
(min–max) over seeds. Nothing is copied or estimated: every number is what this run measured.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))                           # det_table beside it (results.md's DET table)

from hostside import api  # noqa: E402
from hostside import evaluate as E  # noqa: E402
from hostside.cli import _float_pair, _model_options, _span_arg  # noqa: E402
from hostside.data.features import PRESETS  # noqa: E402

INT4_DEMO_EMA = 0.995            # --demo's INT4 student: a weight average over its QAT (attempts.md §53: fewer unseen
                                 # clips change class than without it on every matched seed)
GAP_DEMO_UNSEEN_PER_CLASS = 640  # --demo: the INT4 gap read again on 2,560 unseen clips (±0.5 points needs 6,000+)
INT4_GOAL_POINTS = -0.5         # INT4 − fp32 unseen clip accuracy, points: the goal's least
GOAL = {"unseen_accuracy": ">= 0.971", "frr_unseen": "<= 0.05", "real_fa_per_hour_upper95": "<= 1",
        "int4_vs_fp32_unseen_accuracy_points": f">= {INT4_GOAL_POINTS:g}"}
METRICS = ("val_accuracy", "held_out_voice_accuracy", "unseen_accuracy", "threshold", "smoothing_windows",
           "val_frr", "frr_test", "frr_unseen", "real_false_accepts", "real_fa_per_hour", "real_fa_per_hour_upper95",
           "tts_fa_per_hour", "tts_fa_per_hour_upper95", "conversation_false_accepts",
           "conversation_fa_per_hour_upper95")


def machine() -> dict:
    import torch
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),   # the INT4 students' gaps move with
            "cuda": torch.cuda.is_available(), "platform": platform.platform()}  # it (attempts.md §53)


def figures(ev: dict) -> dict:
    """The numbers this benchmark records, from one evaluation."""
    ww = ev["wakeword"]
    rs, tts, cv = ww.get("real_speech") or {}, ww.get("tts_test_stream") or {}, ww.get("conversation") or {}
    return {"val_accuracy": ev["splits"].get("val", {}).get("accuracy"),
            "held_out_voice_accuracy": ev["splits"].get("test", {}).get("accuracy"),
            "unseen_accuracy": ev["splits"].get("unseen", {}).get("accuracy"),
            "unseen_accuracy_by_voice": {k: v["accuracy"] for k, v in ev.get("voices", {}).items()},
            "score": ww.get("score", "classifier"),
            "threshold": ww["threshold"], "smoothing_windows": ww["smoothing_windows"],
            "score_span_s": ww.get("score_span_s"), "score_best_span": ww.get("score_best_span"),
            "score_phoneme_repeats": ww.get("score_phoneme_repeats"),
            "val_frr": ww["operating_point"].get("val_frr"),
            "val_false_accepts": ww["operating_point"].get("val_false_accepts"),
            "val_estimated_fa_per_hour": ww["operating_point"].get("val_estimated_fa_per_hour"),
            "frr_test": ww.get("false_rejection_rate_test"), "frr_unseen": ww.get("false_rejection_rate_unseen"),
            "frr_unseen_by_voice": {k: v["frr"] for k, v in ww.get("frr_unseen_by_voice", {}).items()},
            "frr_by_text": {k: v["frr"] for k, v in ww.get("frr_unseen_by_text", {}).items()},
            "frr_by_style": {k: v["frr"] for k, v in ww.get("frr_unseen_by_style", {}).items()},
            "negatives_accepted_by_text": ev.get("negatives_accepted_by_text"),
            "real_false_accepts": rs.get("false_accepts"), "real_hours": rs.get("hours"),
            "real_fa_per_hour": rs.get("false_accepts_per_hour"),
            "real_fa_per_hour_upper95": rs.get("false_accepts_per_hour_upper95"),
            "real_fa_by_stream": {k: v["false_accepts"] for k, v in (rs.get("streams") or {}).items()},
            "tts_false_accepts": tts.get("false_accepts"), "tts_hours": tts.get("hours"),
            "tts_fa_per_hour": tts.get("false_accepts_per_hour"),
            "tts_fa_per_hour_upper95": tts.get("false_accepts_per_hour_upper95"),
            "conversation_false_accepts": cv.get("false_accepts"), "conversation_hours": cv.get("hours"),
            "conversation_fa_per_hour": cv.get("false_accepts_per_hour"),
            "conversation_fa_per_hour_upper95": cv.get("false_accepts_per_hour_upper95"),
            "det": (ww.get("det") or {}).get("points")}


def summary(rows: list[dict]) -> dict:
    out = {}
    for k in METRICS:
        v = [r[k] for r in rows if r.get(k) is not None]
        if v:
            out[k] = {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                      "min": min(v), "max": max(v), "n": len(v)}
    return out


def _unit_interval_arg(what: str):
    """An argparse type for a number in [0, 1), refused before anything runs; `what` follows the value in the error."""
    def parse(text: str) -> float:
        v = float(text)
        if not 0 <= v < 1:
            raise argparse.ArgumentTypeError(f"{v}: {what}")
        return v
    return parse


sparsity_arg = _unit_interval_arg("must be in [0, 1)")                            # the INT4 student's prune share
ema_arg = _unit_interval_arg("a decay in [0, 1), e.g. 0.995 (0: off)")            # a weight average's decay per step


def int4_recipe(student: Path, corpus: Path, out: Path, seed: int, quick: bool, teacher: str = "none",
                sparsity: float = 0.3, score: str = "classifier", span=None, ema: float = 0.0) -> dict:
    """The INT4 student's recipe. teacher: none (cross-entropy only), self (the fp32 student distils into its
    own pruned and quantised copy in every fine-tuning epoch) or a checkpoint's path. sparsity: the share of
    channels the prune stage removes; 0 drops the stage (W4A8 QAT of the whole student). score "phonemes": the
    student's phoneme head goes through the stages with it and model.bin computes the phoneme score (over `span`:
    seconds or "auto", the recipe's span; None: the window). ema: the recipe's weight average over every fine-tuning
    (its decay per step; 0: off)."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"INT4 sparsity {sparsity}: must be in [0, 1)")
    e = (lambda n: 1) if quick else (lambda n: n)
    prune = [{"name": "prune", "sparsity": sparsity, "l1": 1e-4, "sparsity_epochs": e(3), "finetune_epochs": e(4)}]
    spec = {"student": str(student), "corpus": str(corpus), "board": "rv32-virt", "output": str(out), "seed": seed,
            "score": score, "stages": (prune if sparsity > 0 else [])
            + [{"name": "quantize", "wbits": 4, "abits": 8, "first_last_bits": 8, "calib": 200, "epochs": e(5)}]}
    if teacher != "none":
        spec["teacher"] = str(student if teacher == "self" else Path(teacher))
    if span is not None:
        spec["span"] = span
    if ema:
        spec["ema"] = ema
    return spec


def parser() -> argparse.ArgumentParser:
    """run.py's command line (main's; the tests read --demo's settings through it)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small run to check the script (results not recorded)")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"), help="scratch folder")
    ap.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    ap.add_argument("--int4-seeds", default=None, help="seeds for the INT4 student (default: --seeds; '' for none)")
    ap.add_argument("--int4-teacher", default=None,
                    help="distillation in the INT4 student's fine-tuning: none (default), self (its fp32 student "
                         "as the teacher) or a checkpoint's path (--demo: self)")
    ap.add_argument("--int4-sparsity", type=sparsity_arg, default=None,
                    help="share of channels the INT4 student's prune stage removes (default 0.3); 0: no pruning, "
                         "W4A8 QAT of the whole fp32 student (--demo: 0)")
    ap.add_argument("--int4-ema", type=ema_arg, default=None, metavar="DECAY",
                    help="a weight average over the INT4 student's fine-tuning, this decay per step (recipe ema; "
                         f"default 0: off; --demo: {INT4_DEMO_EMA}, attempts.md §53)")
    ap.add_argument("--gap-unseen-per-class", type=int, default=None, metavar="N",
                    help="also read each INT4 student's clip-accuracy gap to its fp32 student on the run's corpus made "
                         "again with N unseen clips per class and unseen voice (same seed, voices and texts; "
                         "<corpus>-unseenN, made once: ~9 min on 2 cores for N = 640): the corpus's own unseen clips "
                         f"(80 a class) cannot tell a gap within 0.5 points (attempts.md §53); default 0: off; --demo: "
                         f"{GAP_DEMO_UNSEEN_PER_CLASS}")
    ap.add_argument("--epochs", type=int, default=25, help="fp32 student epochs (default 25)")
    add_recipe_args(ap)
    add_corpus_args(ap)
    add_score_args(ap)
    ap.add_argument("--demo", action="store_true",
                    help="the corpus, recipe and score `make demo` deploys (see above); given flags still apply")
    ap.add_argument("--name", default="",
                    help="a name for this recipe's run: its checkpoints are <work>/student-<name>-s<seed>.pt and it "
                         "writes results-<name>.json/.md (default: none, results.json/.md)")
    ap.add_argument("--record-partial", action="store_true",
                    help="record what a stopped run measured (work/results[-<name>]-partial.json) as results[-<name>].json/.md, "
                         "saying it is partial; nothing is run")
    return ap


def main() -> int:
    ap = parser()
    args = ap.parse_args()
    tag = f"-{args.name}" if args.name else ""
    if args.record_partial:
        return record_partial(args.work, tag)
    quick = args.quick
    demo_defaults(ap, args)
    recipe = recipe_of(args)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    int4_seeds = seeds if args.int4_seeds is None else [int(s) for s in args.int4_seeds.split(",") if s]
    if int4_seeds and args.score == "phonemes" and args.phoneme_repeats == "no":
        ap.error("--phoneme-repeats no: the INT4 student's compression reads the score with repeats (its recipe has no "
                 "switch for it); add --int4-seeds '' to read only the fp32 students without them")
    corpus, cfg = corpus_of(args.work, args.corpus_set, ("corpus-quick" if quick else "corpus") + ("-demo" if args.demo else ""),
                            base=demo_corpus() if args.demo else None)
    if quick:
        cfg.update(voices=24, positives_per_voice=2, unknown_per_voice=2, few_voice_repeats=1, silence_clips=20,
                   unseen_positives=5, unseen_unknown=5, fa_stream_seconds=120, tts_stream_seconds=60)
        if cfg.get("native_negatives"):
            cfg.update(native_negatives=4)
    epochs = 2 if quick else args.epochs
    t0 = time.monotonic()
    c = api.synth(corpus, progress=sys.stderr.isatty(), **cfg)
    timings = {"synth_s": time.monotonic() - t0}
    meta = c.meta
    results = {"task": "wakeword", "phrase": "hey kimi",
               "command": "python benchmarks/quality/run.py " + " ".join(sys.argv[1:]),
               "machine": machine(), "goal": GOAL,
               "corpus": {"config": cfg, "clips": {s: len(c.split(s)) for s in ("train", "val", "test", "unseen")},
                          "engines": meta.get("engines_used"),
                          "voices": {s: len(v) for s, v in meta["voices"].items()},
                          "accents": meta["accents"], "speakers": meta["speakers"],
                          "unseen_voices": meta["voices"]["unseen"],
                          "positive_texts": meta["positive_texts"],
                          "test_noise_sources": len(meta["noise_pools"]["test"]),
                          "train_noise_sources": len(meta["noise_pools"]["train"]), "rooms": meta.get("rooms"),
                          "real_speech": {"hours": (meta.get("fa_stream") or {}).get("seconds", 0) / 3600,
                                          "languages": (meta.get("fa_stream") or {}).get("languages"),
                                          "streams": [(s["voice"], round(s["seconds"] / 60, 1))
                                                      for s in (meta.get("fa_stream") or {}).get("streams", [])]},
                          "tts_streams": {k: v["seconds"] / 3600 for k, v in (meta.get("tts_streams") or {}).items()}},
               "demo_recipe": args.demo,
               "score": {"score": args.score, "span": args.span, "phoneme_repeats": args.phoneme_repeats == "yes"},
               "protocol": f"One streaming detector (1 s {args.features} windows every 100 ms, causal moving average over "
                           f"{E.DETECTOR_SMOOTHING} windows (the protocol's, fixed since 2026-12-04; before, chosen on "
                           "validation among 1, 3 and 5), threshold, 1 s refractory). Threshold chosen on "
                           "validation only: lowest val FRR with at most 1 false accept per hour (floor) on the val TTS "
                           "negative stream and the val people's recordings (KLettres, val languages), and the val cast's conversation where the corpus has one (--demo: Fish Fillets NG's Dutch cast; the Czech and English casts are the test's conversation); what the tail of those negatives' peaks predicts at the chosen point is recorded (val_estimated_fa_per_hour). FRR: wake-word clips (3 s files) on which the detector never fires; "
                           "unseen = voices never trained or selected on. FA/h: triggers on real human speech (every "
                           "trigger is false), with the one-sided 95 % Poisson upper bound and the hours; the test TTS "
                           "negative stream separately. Accuracy: argmax over the three classes on 1 s clips.",
               "models": {}}
    fp32_rows, int4_rows = [], []
    for seed in seeds:
        t = time.monotonic()
        ck = args.work / f"student{tag}-s{seed}.pt"
        reused = _reuse(ck, corpus, epochs, seed, recipe)
        tr = reused or api.train(corpus, ck, epochs=epochs, seed=seed, progress=sys.stderr.isatty(),
                                 **train_args(recipe))
        if not reused:                                  # a reused checkpoint's training is not timed here
            timings[f"fp32_s{seed}_train_s"] = time.monotonic() - t
        if reused:
            results.setdefault("reused_checkpoints", {"note": "trained before with the same corpus, recipe, epochs "
                                                      "and seed (by an earlier invocation of this script, or by "
                                                      "attempt.py with the same settings); "
                                                      "their training time is not in timings_s", "seeds": []})
            results["reused_checkpoints"]["seeds"].append(seed)
        saved = args.work / f"eval-student{tag}-s{seed}" / "eval.json"
        if reused and saved.is_file() and saved.stat().st_mtime > ck.stat().st_mtime:
            ev = json.loads(saved.read_text())          # this checkpoint's evaluation, written by api.evaluate
        else:
            ev = api.evaluate(ck, corpus, args.work / f"eval-student{tag}-s{seed}", score=args.score,
                              span_s=args.span, repeats=args.phoneme_repeats == "yes")
        row = {"seed": seed, "params": tr["params"], "epochs": epochs, **figures(ev)}
        fp32_rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k in ("seed",) + METRICS}), flush=True)
        _partial(args.work, results, "fp32_student", fp32_rows, tag)
    results["models"]["fp32_student"] = {"architecture": args.model, "features": args.features, "epochs": epochs,
                                         "vtlp": args.vtlp, "model_options": recipe["options"],
                                         "augment": recipe["augment"], "ema": recipe["ema"],
                                         "pair_loss": recipe["pair_loss"], "pair_margin": recipe["pair_margin"],
                                         "pair_sides": recipe["pair_sides"], "phoneme_ctc": recipe["phoneme_ctc"],
                                         "score": args.score, "span": args.span,
                                         "distillation": {k: recipe[k] for k in ("teacher", "kd_alpha", "kd_temperature")}
                                         if recipe["teacher"] else None,
                                         "params": fp32_rows[0]["params"] if fp32_rows else None,
                                         "summary": summary(fp32_rows), "per_seed": fp32_rows}
    from hostside.compress.recipe import from_dict
    for seed in int4_seeds:
        t = time.monotonic()
        base = args.work / f"int4{tag}-s{seed}"
        spec = int4_recipe(args.work / f"student{tag}-s{seed}.pt", corpus, base.with_suffix(".bin"), seed, quick,
                           args.int4_teacher, args.int4_sparsity, args.score, args.span, args.int4_ema)
        rec = from_dict(spec)
        rep = _reuse_int4(base, rec)
        if rep is None:
            rep = api.compress(rec, progress=sys.stderr.isatty(), log=lambda *a: None)
            timings[f"int4_s{seed}_s"] = time.monotonic() - t
        else:
            results.setdefault("reused_int4", {"note": "compressed before from the same student checkpoint with the "
                                               "same recipe (its report.json is newer than the checkpoint); its "
                                               "time is not in timings_s; compress_s is what its report measured",
                                               "seeds": [], "compress_s": {}})
            results["reused_int4"]["seeds"].append(seed)
            results["reused_int4"]["compress_s"][seed] = round((rep.get("timings_s") or {}).get("total_s") or 0) or None
        row = _int4_row(seed, rec, rep)
        int4_rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k in ("seed",) + METRICS}), flush=True)
        _partial(args.work, results, "int4_student", int4_rows, tag)
    if int4_rows:
        results["models"]["int4_student"] = {"pipeline": "PQLR: " + (f"{100 * args.int4_sparsity:g} % channel pruning "
                                                                   "(BatchNorm γ), " if args.int4_sparsity else "no pruning, ")
                                                         + "W4A8 LSQ+ QAT (first/last layer 8 bit)"
                                                         + (f", a weight average over the QAT (decay {args.int4_ema:g})"
                                                            if args.int4_ema else "") + ", exported to model.bin",
                                             "sparsity": args.int4_sparsity, "ema": args.int4_ema,
                                             "distillation": args.int4_teacher,
                                             "summary": summary(int4_rows), "per_seed": int4_rows}
        diffs = [100 * (i["unseen_accuracy"] - f["unseen_accuracy"]) for i in int4_rows for f in fp32_rows
                 if f["seed"] == i["seed"]]
        results["int4_vs_fp32_unseen_accuracy_points"] = {"per_seed": diffs, "mean": statistics.fmean(diffs)} if diffs else None
        if args.gap_unseen_per_class and not quick:
            t = time.monotonic()
            results["int4_vs_fp32_unseen_more_clips"] = gap_on_more_unseen_clips(
                corpus, cfg, args.gap_unseen_per_class,
                [(row["seed"], args.work / f"student{tag}-s{row['seed']}.pt", args.work / f"int4{tag}-s{row['seed']}.bin")
                 for row in int4_rows])
            timings["gap_more_unseen_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - t0
    results["timings_s"] = timings
    if quick:
        print(markdown(results))
        print("quick run: not recorded")
        return 0
    det = args.work / f"eval-student{tag}-s{seeds[0]}" / "det.png" if seeds else None
    if det is not None and det.is_file():                       # the DET curve a person can look at
        shutil.copyfile(det, HERE / f"det-fp32{tag}.png")
    (HERE / f"results{tag}.json").write_text(json.dumps(results, indent=1))
    (HERE / f"results{tag}.md").write_text(markdown(results))
    print(f"wrote {HERE / f'results{tag}.json'} and {HERE / f'results{tag}.md'}")
    return 0


def more_unseen_corpus(corpus: Path, cfg: dict, per_class: int) -> Path:
    """The corpus `cfg` made at `corpus` (its config and seed) made again with per_class unseen clips per class and
    unseen voice, in <corpus>-unseenN: the same voices and texts in every split (they are drawn before the clips); the
    other clips' styles and speeds are partly drawn anew (a `--span auto` read off its training clips may differ).
    Made once (synthesis reuses a made corpus)."""
    folder = corpus.parent / f"{corpus.name}-unseen{per_class}"
    t = time.monotonic()
    api.synth(folder, progress=sys.stderr.isatty(), **(cfg | {"unseen_positives": per_class, "unseen_unknown": per_class}))
    print(f"{folder}: {time.monotonic() - t:.0f} s", flush=True)
    return folder


def gap_on_more_unseen_clips(corpus: Path, cfg: dict, per_class: int, pairs: list[tuple[int, Path, Path]]) -> dict:
    """Each (seed, fp32 checkpoint, INT4 model.bin) pair's unseen clip-accuracy gap (INT4 − fp32, points, with its
    95 % interval for paired proportions) on the corpus made again with per_class unseen clips per class and unseen
    voice: the same config and seed, so the same voices and texts in every split (<corpus>-unseenN, made once).
    benchmarks/quality/int4_gap.py reads the pairs; it reads them the same way on its own."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("quality_int4_gap", HERE / "int4_gap.py")
    gap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gap)
    folder = more_unseen_corpus(corpus, cfg, per_class)
    per_seed = [{"seed": seed, **gap.read_pair(student, model_bin, folder, ["unseen"])["unseen"]}
                for seed, student, model_bin in pairs]
    met, missed, open_ = interval_verdict([d["ci_points"] for d in per_seed])
    return {"corpus": str(folder), "unseen_per_class": per_class, "clips": per_seed[0]["n"] if per_seed else 0,
            "per_seed": per_seed, "mean_points": statistics.fmean(d["difference_points"] for d in per_seed),
            "verdict": {"met": met, "missed": missed, "not_told_apart": open_},
            "note": "the corpus's config and seed with more unseen clips; its other clips' styles may be drawn anew, "
                    "which this reads nothing of (only the unseen split)"}


def interval_verdict(intervals: list[list[float]]) -> tuple[int, int, int]:
    """How many INT4 − fp32 gaps' intervals (points) lie wholly at or above the goal's INT4_GOAL_POINTS (met), wholly
    below it (missed), and across it (not told apart by these clips)."""
    met = sum(lo >= INT4_GOAL_POINTS for lo, _ in intervals)
    missed = sum(hi < INT4_GOAL_POINTS for _, hi in intervals)
    return met, missed, len(intervals) - met - missed


def demo_corpus() -> dict:
    """The corpus `make demo` synthesises (its seed 0), as a corpus.json would say it."""
    return {"seed": 0, **{k: list(v) if isinstance(v, tuple) else v for k, v in api.DEMO_CORPUS.items()}}


def demo_defaults(ap: argparse.ArgumentParser, args) -> None:
    """--demo: the demo's recipe and score wherever the command line left a setting at its default; without --demo
    the benchmark's own defaults (the classifier, INT4 with 30 % pruning and no distillation)."""
    if args.demo:
        for k, v in (("model", api.DEMO_MODEL), ("features", api.DEMO_FEATURES), ("vtlp", api.DEMO_VTLP),
                     ("phoneme_ctc", api.DEMO_PHONEME_CTC), ("ema", api.DEMO_EMA), ("epochs", api.DEMO_EPOCHS)):
            if getattr(args, k) == ap.get_default(k):
                setattr(args, k, v)
        args.score = args.score or api.DEMO_SCORE
        args.span = args.span if args.span is not None else api.DEMO_SPAN
        args.int4_teacher = args.int4_teacher or "self"
        args.int4_sparsity = 0.0 if args.int4_sparsity is None else args.int4_sparsity
        args.int4_ema = INT4_DEMO_EMA if args.int4_ema is None else args.int4_ema
        if args.gap_unseen_per_class is None:
            args.gap_unseen_per_class = GAP_DEMO_UNSEEN_PER_CLASS
    args.int4_ema = args.int4_ema or 0.0
    args.gap_unseen_per_class = args.gap_unseen_per_class or 0
    if args.gap_unseen_per_class < 0:
        ap.error(f"--gap-unseen-per-class {args.gap_unseen_per_class}: a number of clips (0: off)")
    args.score = args.score or "classifier"
    args.int4_teacher = args.int4_teacher or "none"
    args.int4_sparsity = 0.3 if args.int4_sparsity is None else args.int4_sparsity
    if args.score == "classifier" and (args.span is not None or args.phoneme_repeats == "no"):
        ap.error("--span, --phoneme-repeats: for the phonemes score (--score phonemes)")
    if args.score == "phonemes" and not args.phoneme_ctc:
        ap.error("--score phonemes: the student needs a phoneme head (--phoneme-ctc WEIGHT)")


def add_score_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--score", choices=("classifier", "phonemes"), default=None,
                    help="the detector's wake score (as `pqlr eval --score`; default classifier, --demo phonemes); "
                         "the INT4 student's model.bin computes the same")
    ap.add_argument("--span", type=_span_arg, default=None,
                    help="the audio the phonemes score reads: seconds, or auto (`pqlr eval --span`; --demo: "
                         f"{api.DEMO_SPAN})")
    ap.add_argument("--phoneme-repeats", choices=("yes", "no"), default="yes",
                    help="whether a phoneme of the phonemes score may be several spikes (`pqlr eval "
                         "--phoneme-repeats`; default yes)")


def corpus_of(work: Path, overrides: list[str], base_name: str = "corpus",
              base: dict | None = None) -> tuple[Path, dict]:
    """(the corpus folder, its config): corpus.json, with --corpus-set KEY=VALUE overrides in a folder of their
    own (<work>/<base_name>-<overrides>). When the overrides a made corpus lacks are all extensions
    (dialogue_negatives, kokoro_voices, ...: _KEYED_WHEN_SET), that folder starts as a hard-linked copy of the made
    corpus with the most of them (<work>/<base_name> when no other is made), which synthesis then extends
    instead of rendering every clip again (it never rewrites a file it did not make: new clips, new streams,
    manifest.json replaced whole)."""
    from dataclasses import fields

    from hostside.data.synth import _KEYED_WHEN_SET, SynthConfig
    cfg = base if base is not None else json.loads((HERE / "corpus.json").read_text())
    names = {f.name for f in fields(SynthConfig)}
    over = {}
    for o in overrides:
        k, eq, v = o.partition("=")
        if not eq or k not in names:
            raise SystemExit(f"--corpus-set {o!r}: KEY=VALUE with KEY one of {', '.join(sorted(names))}")
        try:
            over[k] = json.loads(v)
        except json.JSONDecodeError:
            over[k] = v
    if not over:
        return work / base_name, cfg
    def folder(o: dict) -> Path:
        if not o:
            return work / base_name
        return work / (base_name + "-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", ",".join(f"{k}={o[k]}" for k in sorted(o))))

    path = folder(over)
    if not path.exists():            # start from the made corpus with the most of these overrides, the rest extensions
        for n in range(len(over) - 1, -1, -1):
            bases = [folder({k: over[k] for k in ks}) for ks in itertools.combinations(sorted(over), n)
                     if set(over) - set(ks) <= set(_KEYED_WHEN_SET)]
            base = next((b for b in bases if (b / "manifest.json").is_file()), None)
            if base is not None:
                print(f"{path}: a hard-linked copy of {base}, extended", flush=True)
                shutil.copytree(base, path, copy_function=os.link)
                break
    return path, {**cfg, **over}


def add_corpus_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--corpus-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a corpus.json setting, repeatable (e.g. dialogue_negatives=2); such a corpus "
                         "lives in <work>/corpus-<overrides>")


def add_recipe_args(ap: argparse.ArgumentParser) -> None:
    """The student's recipe, as `pqlr train` takes it (run.py and attempt.py)."""
    ap.add_argument("--model", default="dscnn-mlperf", help="the student's architecture (default dscnn-mlperf)")
    ap.add_argument("--features", default="mfcc10", choices=list(PRESETS), help="front end (default mfcc10)")
    ap.add_argument("--vtlp", type=_float_pair, default=None, metavar="LO,HI",
                    help="vocal-tract length perturbation range in training (default: off)")
    ap.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                    help="a model option, repeatable (as `pqlr train --set`)")
    ap.add_argument("--augment", dest="augment", action="append", default=[], metavar="KEY=VALUE",
                    help="a training augmentation setting, repeatable (as `pqlr train --augment`)")
    ap.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                    help="select and keep an exponential moving average of the weights (as `pqlr train --ema`)")
    ap.add_argument("--pair-loss", type=float, default=0.0, metavar="WEIGHT",
                    help="near-miss margin loss weight (as `pqlr train --pair-loss`; default 0: off)")
    ap.add_argument("--pair-margin", type=float, default=4.0, metavar="LOGODDS",
                    help="its margin in wake log-odds (as `pqlr train --pair-margin`; default 4)")
    ap.add_argument("--pair-sides", choices=["both", "miss", "capped"], default="both",
                    help="what it moves (as `pqlr train --pair-sides`; default both)")
    ap.add_argument("--teacher", type=Path, action="append", default=None, metavar="CKPT",
                    help="distil the fp32 student from this checkpoint; more than once: from their ensemble (as "
                    "`pqlr train --teacher`; default none)")
    ap.add_argument("--kd-alpha", type=float, default=0.7, help="with --teacher (as `pqlr train --kd-alpha`)")
    ap.add_argument("--kd-temperature", type=float, default=6.0,
                    help="with --teacher (as `pqlr train --kd-temperature`)")
    ap.add_argument("--phoneme-ctc", type=float, default=0.0, metavar="WEIGHT",
                    help="auxiliary phoneme CTC loss weight (as `pqlr train --phoneme-ctc`; default 0: off)")
    ap.add_argument("--phoneme-negatives", type=float, default=0.0, metavar="WEIGHT",
                    help="the phoneme wake score's hinge on negatives (as `pqlr train --phoneme-negatives`; "
                    "default 0: off)")
    ap.add_argument("--phoneme-negative-floor", type=float, default=0.3, metavar="SCORE",
                    help="the score it pushes negatives below (as `pqlr train --phoneme-negative-floor`; default 0.3)")


def _teachers(paths) -> str | list[str] | None:
    """--teacher as a recipe records it: none, one checkpoint's path, or the paths of an ensemble's members."""
    paths = [str(p) for p in paths or []]
    return None if not paths else paths[0] if len(paths) == 1 else paths


def recipe_of(args) -> dict:
    from hostside.train import augment_config
    return {"model": args.model, "features": args.features, "vtlp": args.vtlp, "options": _model_options(args.options),
            "augment": augment_config(_model_options(args.augment)), "ema": args.ema,
            "pair_loss": args.pair_loss, "pair_margin": args.pair_margin, "pair_sides": args.pair_sides,
            "teacher": _teachers(args.teacher), "kd_alpha": args.kd_alpha,
            "kd_temperature": args.kd_temperature, "phoneme_ctc": args.phoneme_ctc,
            **({"phoneme_negatives": args.phoneme_negatives, "phoneme_negative_floor": args.phoneme_negative_floor}
               if args.phoneme_negatives else {})}


def train_args(recipe: dict) -> dict:
    """api.train's keyword arguments for a recipe (recipe_of's), beside the corpus, checkpoint, epochs and seed."""
    return {"model": recipe["model"], "features": recipe["features"], "vtlp": recipe["vtlp"],
            "augment": recipe["augment"], "ema": recipe["ema"], "pair_loss": recipe["pair_loss"],
            "pair_margin": recipe["pair_margin"], "pair_sides": recipe["pair_sides"], "teacher": recipe["teacher"],
            "kd_alpha": recipe["kd_alpha"], "kd_temperature": recipe["kd_temperature"],
            "phoneme_ctc": recipe.get("phoneme_ctc", 0.0), "phoneme_negatives": recipe.get("phoneme_negatives", 0.0),
            "phoneme_negative_floor": recipe.get("phoneme_negative_floor", 0.3), **recipe["options"]}


def record_partial(work: Path, tag: str = "") -> int:
    """results.json/.md from the per-seed rows a run saved before it was stopped, marked as partial."""
    results = json.loads((work / f"results{tag}-partial.json").read_text())
    fp32 = {r["seed"]: r for r in results["models"].get("fp32_student", {}).get("per_seed", [])}
    int4 = results["models"].get("int4_student", {}).get("per_seed", [])
    for name, m in results["models"].items():
        m["summary"] = summary(m.get("per_seed", []))
    diffs = [100 * (i["unseen_accuracy"] - fp32[i["seed"]]["unseen_accuracy"]) for i in int4 if i["seed"] in fp32]
    results["int4_vs_fp32_unseen_accuracy_points"] = {"per_seed": diffs, "mean": statistics.fmean(diffs)} if diffs else None
    results["partial"] = (f"recorded from {work / f'results{tag}-partial.json'}: the run was stopped after "
                          + ", ".join(f"{len(m.get('per_seed', []))} seed(s) of {n}" for n, m in results["models"].items()))
    det = work / f"eval-student{tag}-s0" / "det.png"
    if det.is_file():
        shutil.copyfile(det, HERE / f"det-fp32{tag}.png")
    (HERE / f"results{tag}.json").write_text(json.dumps(results, indent=1, default=str))
    (HERE / f"results{tag}.md").write_text(markdown(results))
    print(f"wrote {HERE / f'results{tag}.json'} and {HERE / f'results{tag}.md'} ({results['partial']})")
    return 0


def _reuse(ck: Path, corpus: Path, epochs: int, seed: int, recipe: dict) -> dict | None:
    """A checkpoint this benchmark trained before with the same corpus, epochs, seed and recipe (model,
    features, VTLP, model options, augmentation, EMA) is used again (a run that was stopped resumes); anything
    else is trained anew."""
    if not ck.is_file():
        return None
    import torch
    c = torch.load(ck, map_location="cpu", weights_only=False)
    same_corpus = Path(c.get("corpus", "")).resolve() == Path(corpus).resolve()     # however the path was spelled
    if c.get("epochs") != epochs or c.get("seed") != seed or not same_corpus:
        return None
    vtlp = tuple((c.get("train_config") or {}).get("vtlp", (1.0, 1.0)))
    want = tuple(recipe["vtlp"]) if recipe["vtlp"] is not None else (1.0, 1.0)
    if c.get("model") != recipe["model"] or c.get("features") != recipe["features"] or vtlp != want or \
            any(json.dumps(c["config"].get(k)) != json.dumps(v) for k, v in recipe["options"].items()):
        return None
    from hostside.train import AUGMENT_KEYS, TrainConfig
    trained = c.get("train_config") or {}
    wanted = TrainConfig(ema=recipe["ema"], pair_weight=recipe.get("pair_loss", 0.0),
                         pair_margin=recipe.get("pair_margin", 4.0), pair_sides=recipe.get("pair_sides", "both"),
                         ctc_weight=recipe.get("phoneme_ctc", 0.0), ctc_negative=recipe.get("phoneme_negatives", 0.0),
                         ctc_negative_floor=recipe.get("phoneme_negative_floor", 0.3), **recipe["augment"])
    if any(json.dumps(trained.get(k, getattr(TrainConfig, k))) != json.dumps(getattr(wanted, k))
           for k in AUGMENT_KEYS + ("ema", "pair_weight", "pair_margin", "pair_sides", "ctc_weight", "ctc_negative",
                                    "ctc_negative_floor")):
        return None
    d, teachers = c.get("distillation") or {}, api.teacher_paths(recipe.get("teacher"))
    if (d or teachers) and not (d and teachers
                                and [t.resolve() for t in api.teacher_paths(d["teacher"])] == [t.resolve() for t in teachers]
                                and (d["alpha"], d["temperature"]) == (recipe["kd_alpha"], recipe["kd_temperature"])
                                and all(t.is_file() for t in teachers)   # a missing teacher: api.train says what to do
                                and all(t.stat().st_mtime <= ck.stat().st_mtime for t in teachers)):  # not retrained
        return None
    meta = json.loads((Path(corpus) / "manifest.json").read_text())["meta"]
    if c.get("corpus_key") not in (None, meta.get("config_key")):
        return None
    print(f"reusing {ck} (trained before: same corpus, recipe, epochs and seed)", flush=True)
    return {"params": c["params"]}


def _reuse_int4(base: Path, rec) -> dict | None:
    """The report of an INT4 student this benchmark compressed before (base.report.json) when it was made from
    the same student checkpoint, corpus, seed and stages and is newer than that checkpoint; else None."""
    saved = base.parent / f"{base.name}.report.json"
    student = Path(rec.student)
    if not saved.is_file() or not student.is_file() or saved.stat().st_mtime < student.stat().st_mtime:
        return None
    rep = json.loads(saved.read_text())
    r = rep.get("recipe") or {}
    want = [{"name": s.name, **s.params} for s in rec.stages]
    same = (Path(r.get("student", "")).resolve() == student.resolve()
            and Path(r.get("corpus", "")).resolve() == Path(rec.corpus).resolve()
            and r.get("seed") == rec.seed and r.get("distill") == (rec.distill if rec.teacher else None)
            and r.get("ema", 0.0) == rec.ema and r.get("span") == rec.span
            and (r.get("teacher") and Path(r["teacher"]).resolve()) == (rec.teacher and Path(rec.teacher).resolve())
            and json.dumps(r.get("stages"), sort_keys=True) == json.dumps(want, sort_keys=True))
    if not same:
        return None
    print(f"reusing {saved} (compressed before: same student, recipe and seed)", flush=True)
    return rep


def _int4_row(seed: int, rec, rep: dict) -> dict:
    final = rep["stages"][-1]
    fa, hours = final.get("false_accepts"), final.get("real_speech_hours")
    if fa is None and final.get("false_accepts_per_hour") is not None and hours:
        fa = round(final["false_accepts_per_hour"] * hours)     # reports written before the count was kept: rate × hours
    return {"seed": seed, "recipe": [{"name": s.name, **s.params} for s in rec.stages],
            "model_bin_bytes": final.get("model_bin_bytes"), "weight_bytes": final.get("weight_bytes"),
            "integer_vs_fakequant": (rep.get("export") or {}).get("agreement"),
            # top-1 agreement of the integer model's clip classifier with its fp32 student, per held-out split
            # (compress reports it since 2026-12-07; None before)
            "agreement_with_fp32": final.get("agreement_with_student"),
            # INT4 − fp32 accuracy per held-out split with its 95 % interval for paired proportions (since 2026-12-07)
            "gap_to_fp32": final.get("gap_to_student"),
            "val_accuracy": final.get("val_accuracy"), "held_out_voice_accuracy": final.get("held_out_voice_accuracy"),
            "unseen_accuracy": final.get("unseen_engine_accuracy"), "threshold": final.get("threshold"),
            "smoothing_windows": final.get("smoothing_windows"), "frr_unseen": final.get("false_rejection_rate"),
            "frr_test": final.get("false_rejection_rate_held_out_voices"),
            "real_false_accepts": fa, "real_fa_per_hour": final.get("false_accepts_per_hour"),
            "real_fa_per_hour_upper95": final.get("false_accepts_per_hour_upper95"),
            "real_hours": hours, "tts_fa_per_hour": final.get("tts_stream_false_accepts_per_hour"),
            "conversation_fa_per_hour": final.get("conversation_false_accepts_per_hour"),
            "score": final.get("score"), "score_span_s": final.get("score_span_s"),
            "val_estimated_fa_per_hour": final.get("val_estimated_fa_per_hour"),
            "det": final.get("det")}     # its DET points (compress reports them since 2026-12-04; None before)


def _partial(work: Path, results: dict, name: str, rows: list, tag: str = "") -> None:
    """What has been measured so far, so a stopped run loses nothing (work/results-partial.json)."""
    results["models"][name] = {"summary": summary(rows), "per_seed": rows} | \
        {k: v for k, v in results["models"].get(name, {}).items() if k not in ("summary", "per_seed")}
    (work / f"results{tag}-partial.json").write_text(json.dumps(results, indent=1, default=str))


def _det_lines(r: dict) -> list[str]:
    """Each model's unseen FRR at equal real-speech false accepts (its DET points per seed, read as det_table.py
    reads them): a comparison on the test data, not an operating point."""
    from det_table import cells
    from hostside.evaluate import DET_LIMITS, frr_at
    rows = []
    for name, m in r["models"].items():
        per = [row["det"] for row in m["per_seed"] if row.get("det")]
        if per:
            rows.append(f"| {name} | {len(per)} | " + " | ".join(cells([[frr_at(d, x) for x in DET_LIMITS] for d in per]))
                        + " |")
    if not rows:
        return []
    return ["", "At equal false accepts: unseen-voice FRR at the lowest threshold whose real-speech false accepts "
            "stay within each limit (mean (min–max) over seeds; read on the test data to compare models, not an "
            "operating point):", "", "| model | seeds | " + " | ".join(f"≤ {x} FA/h" for x in DET_LIMITS) + " |",
            "|---|---|" + "---|" * len(DET_LIMITS), *rows]


def _recipe_line(r: dict) -> list[str]:
    m = r["models"].get("fp32_student") or {}
    if "architecture" not in m:
        return []
    extra = [f"options {m['model_options']}" if m.get("model_options") else "",
             f"EMA {m['ema']}" if m.get("ema") else "",
             f"near-miss margin loss {m['pair_loss']} ({m.get('pair_sides')})" if m.get("pair_loss") else "",
             _distilled(m["distillation"]) if m.get("distillation") else "",
             f"phoneme CTC {m['phoneme_ctc']}" if m.get("phoneme_ctc") else ""]
    sc = r.get("score") or {}
    spans = sorted({row.get("score_span_s") for row in m.get("per_seed", []) if row.get("score_span_s")})
    span = (f"{sc['span']} ({', '.join(f'{x:g}' for x in spans)} s)" if sc.get("span") == "auto" and spans
            else f"{sc['span']:g} s" if isinstance(sc.get("span"), (int, float)) else sc.get("span") or "one window")
    score = (f"Wake score: the phoneme head's score of the phrase in order over a span of {span}"
             f"{', a phoneme may be several spikes' if sc.get('phoneme_repeats') else ''} (computed by model.bin "
             "for the INT4 student)" if sc.get("score") == "phonemes" else "Wake score: the classifier's posterior")
    lines = [f"fp32 student: {m['architecture']}, {m.get('params')} parameters, {m['features']} features, "
             f"{m['epochs']} epochs, VTLP {m.get('vtlp') or 'off'}" + "".join(f", {e}" for e in extra if e) + ".",
             "", score + "."]
    q = r["models"].get("int4_student") or {}
    if q.get("pipeline"):
        t = q.get("distillation") or "none"
        lines.append(f"INT4 student: {q['pipeline']}; distillation in its fine-tuning: "
                     + {"none": "none (cross-entropy only)", "self": "its own fp32 student as the teacher"}.get(t, t) + ".")
    return lines + [""]


def _conv(row: dict) -> str:
    """The held-out conversation's false accepts per hour (and upper bound where recorded), or n/a."""
    if row.get("conversation_fa_per_hour") is None:
        return "n/a"
    up = row.get("conversation_fa_per_hour_upper95")
    n, h = row.get("conversation_false_accepts"), row.get("conversation_hours")
    return (f"{n} / {h:.2f} h = " if n is not None and h else "") + f"{row['conversation_fa_per_hour']:.2f}" + \
        (f" ({up:.2f})" if up is not None else "")


def _distilled(d: dict) -> str:
    """The fp32 student's distillation as results.md says it: one teacher, or an ensemble and its members."""
    t = d["teacher"]
    how = f"α {d.get('kd_alpha')}, T {d.get('kd_temperature')}"
    if isinstance(t, list):
        return f"distilled ({how}) from the mean softened posteriors of {len(t)} teachers: " + ", ".join(t)
    return f"distilled ({how}) from {t}"


def _ms(s: dict, k: str, pct: bool = False, nd: int = 2) -> str:
    if k not in s:
        return "n/a"
    v = s[k]
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.{nd}f}")
    return f"{f(v['mean'])} ± {f(v['std'])} ({f(v['min'])}–{f(v['max'])})" + (" %" if pct else "")


def _within_line(where: str, mean: float, per_seed: list[float], counted: str) -> str:
    """results.md's verdict on the INT4 goal from INT4 − fp32 points (rounded: −0.5 is 6 clips of 1,200, not a float's
    last bit)."""
    ok = sum(round(x, 6) >= INT4_GOAL_POINTS for x in per_seed)
    return (f"INT4 within 0.5 points of fp32{where}: {'met' if round(mean, 6) >= INT4_GOAL_POINTS else 'not met'} on "
            f"the seeds' mean, on {ok} of {len(per_seed)} {counted}.")


def markdown(r: dict) -> str:
    c = r["corpus"]
    lines = ["# Quality benchmark — wake word \"hey kimi\"", "",
             f"Command: `{r['command']}`  ", f"Machine: {r['machine']}", "",
             *([f"**Partial**: {r['partial']}.", ""] if r.get("partial") else []),
             "## Corpus", "",
             f"- clips: {c['clips']}; engines {c['engines']}; voices per split {c['voices']}",
             f"- espeak-ng accents per split (a test voice shares neither accent nor variant with training): {c['accents']}",
             f"- other speakers per split: {c['speakers']}; unseen voices (never trained or selected on): {c['unseen_voices']}",
             f"- wake-word texts (every split): {c['positive_texts']}",
             f"- noise sources: {c['train_noise_sources']} train, {c['test_noise_sources']} test (disjoint); rooms: {c['rooms']}",
             f"- real human speech for false accepts: {c['real_speech']['hours']:.2f} h in languages "
             f"{c['real_speech']['languages']}: {c['real_speech']['streams']}",
             f"- TTS negative streams (hours): {c['tts_streams']}", "",
             "## Protocol", "", r["protocol"], "",
             "## Results (mean ± standard deviation (min–max) over seeds)", "",
             *_recipe_line(r),
             "| model | seeds | val acc | held-out voices acc | unseen voices acc | threshold (val) | smoothing | "
             "FRR test | FRR unseen | real speech FA/h | FA/h 95 % upper | TTS stream FA/h |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        s = m["summary"]
        n = len(m["per_seed"])
        lines.append(f"| {name} | {n} | {_ms(s, 'val_accuracy', True)} | {_ms(s, 'held_out_voice_accuracy', True)} | "
                     f"{_ms(s, 'unseen_accuracy', True)} | {_ms(s, 'threshold', nd=3)} | {_ms(s, 'smoothing_windows', nd=1)} | "
                     f"{_ms(s, 'frr_test', True)} | {_ms(s, 'frr_unseen', True)} | {_ms(s, 'real_fa_per_hour')} | "
                     f"{_ms(s, 'real_fa_per_hour_upper95')} | {_ms(s, 'tts_fa_per_hour')} |")
    lines += ["", "Per seed:", "", "| model | seed | unseen acc | threshold | FRR unseen | FRR unseen per voice | "
              "real FA (count / hours) | upper 95 % FA/h | conversation FA/h (upper 95 %) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, m in r["models"].items():
        for row in m["per_seed"]:
            per_voice = ", ".join(f"{k.split(':', 1)[1]} {100 * v:.0f} %" for k, v in (row.get("frr_unseen_by_voice") or {}).items())
            fa = f"{row.get('real_false_accepts')} / {row['real_hours']:.2f} h" if row.get("real_hours") else "n/a"
            lines.append(f"| {name} | {row['seed']} | {100 * (row['unseen_accuracy'] or 0):.2f} % | {row['threshold']} | "
                         f"{100 * (row['frr_unseen'] or 0):.1f} % | {per_voice or 'n/a'} | {fa} | "
                         f"{(row.get('real_fa_per_hour_upper95') or 0):.2f} | {_conv(row)} |")
    lines += _det_lines(r)
    d = r.get("int4_vs_fp32_unseen_accuracy_points")
    if d:
        lines += ["", f"INT4 − fp32 unseen-voice accuracy, points: {d['mean']:+.2f} (per seed {[round(x, 2) for x in d['per_seed']]})"]
        n_unseen = (r["corpus"].get("clips") or {}).get("unseen")
        lines.append(_within_line(f" on these {n_unseen} unseen clips" if n_unseen else "", d["mean"], d["per_seed"],
                                  "seeds"))
        agree = [(row["seed"], row["agreement_with_fp32"]["unseen"]) for row in
                 (r["models"].get("int4_student") or {}).get("per_seed", [])
                 if (row.get("agreement_with_fp32") or {}).get("unseen") is not None]
        if agree:
            lines.append("INT4 and fp32 classify the same way (top-1 agreement on the unseen voices' clips): "
                         + ", ".join(f"seed {k} {100 * v:.2f} %" for k, v in agree)
                         + "; the accuracy gap is what the disagreeing clips net out to, and cannot exceed them.")
        gaps = [(row["seed"], row["gap_to_fp32"]["unseen"]) for row in
                (r["models"].get("int4_student") or {}).get("per_seed", [])
                if (row.get("gap_to_fp32") or {}).get("unseen")]
        if gaps:
            met, missed, open_ = interval_verdict([g["ci_points"] for _, g in gaps])
            lines.append("The gap on the unseen clips with its 95 % interval for paired proportions (Newcombe's "
                         "method 10): " + ", ".join(f"seed {k} {g['difference_points']:+.2f} ({g['ci_points'][0]:+.2f} "
                                                    f"to {g['ci_points'][1]:+.2f})" for k, g in gaps)
                         + f": within 0.5 points by the interval on {met}, outside on {missed}, not told apart on "
                         f"{open_} of {len(gaps)} seeds; ±0.5 points would need about "
                         + ", ".join(str(g["items_for_half_width_0.5_points"]) for _, g in gaps)
                         + " clips at these rates (benchmarks/quality/int4_gap.py).")
    more = r.get("int4_vs_fp32_unseen_more_clips")
    if more:
        v = more["verdict"]
        lines.append(f"On {more['clips']:,} unseen clips of the corpus made again with {more['unseen_per_class']} a "
                     f"class and voice ({more['corpus']}; same voices and texts): INT4 − fp32 "
                     + ", ".join(f"seed {d['seed']} {d['difference_points']:+.2f} ({d['ci_points'][0]:+.2f} to "
                                 f"{d['ci_points'][1]:+.2f})" for d in more["per_seed"])
                     + f", mean {more['mean_points']:+.2f} points: within 0.5 points by the interval on {v['met']}, "
                     f"outside on {v['missed']}, not told apart on {v['not_told_apart']} of {len(more['per_seed'])} "
                     "seeds.")
        lines.append(_within_line(f" on these {more['clips']:,} clips", more["mean_points"],
                                  [x["difference_points"] for x in more["per_seed"]], "seeds' point estimates"))
    fs = (r["models"].get("fp32_student") or {}).get("summary", {})
    lines += ["", f"Goals: {r['goal']}."]
    if fs:
        met = {"unseen accuracy ≥ 97.1 %": fs.get("unseen_accuracy", {}).get("mean", 0) >= 0.971,
               "FRR unseen ≤ 5 %": fs.get("frr_unseen", {}).get("mean", 1) <= 0.05,
               "real-speech FA/h upper bound ≤ 1": fs.get("real_fa_per_hour_upper95", {}).get("mean", 99) <= 1}
        lines.append("fp32 student, on the seeds' mean: " + "; ".join(f"{k}: {'met' if v else 'not met'}" for k, v in met.items()) + ".")
    lines.append(f"Timings (s): { {k: round(v) for k, v in r.get('timings_s', {}).items()} }")
    for k, what in (("reused_checkpoints", "fp32 checkpoints"), ("reused_int4", "INT4 students")):
        if r.get(k):
            lines.append(f"Reused {what} (seeds {r[k]['seeds']}): {r[k]['note']}"
                         + (f" {r[k]['compress_s']}" if r[k].get("compress_s") else "") + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
