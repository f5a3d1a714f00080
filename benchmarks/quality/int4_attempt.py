#!/usr/bin/env python3
"""One INT4 attempt recorded in attempts.md: the benchmark's PQLR INT4 recipe (run.py `int4_recipe`: 30 %
channel pruning, W4A8 LSQ+ QAT, first/last layer 8 bit) applied to one fp32 checkpoint, with or without
knowledge distillation, judged on what the INT4 goal is about: clip accuracy per split (argmax over the
three classes on 1 s clips), of the fp32 student and of the INT4 student, on the same clips.

    .venv/bin/python benchmarks/quality/int4_attempt.py --student build/bench-quality/attempts/X/student.pt \
        --corpus build/bench-quality/corpus --teacher self --name X-kd [--seed 0] [--alpha 0.7 --temperature 6] \
        [--sparsity 0.3]

--teacher none: the recorded recipe (cross-entropy only). self: the fp32 checkpoint distils into its own
pruned and quantised copy (α·T²·KL + (1 − α)·CE in every fine-tuning epoch). A path: another checkpoint with the
same front end and classes. The streaming figures (FRR, FA/h) are not computed here, only clip accuracy
(that is what the 0.5-point goal compares); the model is exported to model.bin and its integer reference is
checked against the fake-quant model on every held-out clip, as `pqlr compress` does.
Each stage's row also says how often its clip classifier agrees with the uncompressed student's, per split
(`agreement_with_student`). §51's variants: --score phonemes --span auto (run.py --demo's recipe), --select
agreement (keep the fine-tuning epoch that agrees most with the student on validation), --lr, --epochs, --dw-bits 8
(depthwise weights at 8 bits); §52's: --mix W (distillation on blended inputs, recipe distill.mix); §53's: --ema D
(a weight average over the fine-tuning, recipe ema). benchmarks/quality/int4_gap.py reads the model.bin it writes
against its student on more unseen clips than the corpus holds (--unseen-per-class).
Writes <work>/int4-attempts/<name>/{model.bin, row.json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside.boards import as_board  # noqa: E402
from hostside.compress.pipeline import Pipeline, _params  # noqa: E402
from hostside.compress.recipe import from_dict  # noqa: E402
from run import int4_recipe, sparsity_arg  # noqa: E402
from hostside.cli import _span_arg  # noqa: E402


class ClipPipeline(Pipeline):
    """The compression pipeline with clip accuracy per split as each stage's evaluation (no streams)."""

    select = "accuracy"

    def fit(self, model, epochs, lr, extra_loss=None):
        """--select agreement: each fine-tuning keeps the epoch whose validation predictions agree most with the
        uncompressed student's (train() judges "accuracy" against the labels it is given: the student's)."""
        if self.select != "agreement":
            return super().fit(model, epochs, lr, extra_loss)
        if not hasattr(self, "_student_val"):
            raise RuntimeError("the student's validation predictions are taken before the first fine-tuning")
        labels, self.yv = self.yv, self._student_val
        try:
            return super().fit(model, epochs, lr, extra_loss)
        finally:
            self.yv = labels

    def evaluate(self, name, model, weight_bytes, activation_bytes, bits, extra=None, graph=None, classifier=False):
        import numpy as np
        from hostside.data.features import corpus_features
        from hostside.train import predict
        if not hasattr(self, "_clips"):
            x, y = corpus_features(self.corpus, self.fe)
            self._clips = (x, y, np.array([c.split for c in self.corpus.clips]))
        x, y, splits = self._clips
        pred = predict(model, x).argmax(1)              # a QuantNet: its fake-quant model, bit-exact with model.bin
        if name == "student":
            self._student_pred = pred
            self._student_val = predict(model, self.xv).argmax(1)
        same = pred == self._student_pred
        row = {"name": name, "bits": bits, "params": _params(model),
               "agreement_with_student": {s: float(same[splits == s].mean()) for s in ("val", "test", "unseen")},
               "weight_bytes": int(weight_bytes), "activation_bytes": int(activation_bytes)} | \
            {f"{s}_accuracy": float((pred[splits == s] == y[splits == s]).mean()) for s in ("val", "test", "unseen")} | \
            (extra or {})
        self.rows.append(row)
        self.log(f"  {name}: val {row['val_accuracy']:.4f}, held-out {row['test_accuracy']:.4f}, "
                 f"unseen {row['unseen_accuracy']:.4f}")
        return row


def _depthwise_bits(bits: int) -> None:
    """The quantize stage builds its network with the depthwise layers' weights at `bits` (build_quantnet's dw_bits;
    the rest as the recipe says): an attempt's mixed precision, not a recipe field."""
    import functools
    import hostside.compress.quant as Q
    Q.build_quantnet = functools.partial(Q.build_quantnet, dw_bits=bits)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, required=True, help="the fp32 checkpoint (pqlr train / attempt.py)")
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus it was trained on")
    ap.add_argument("--teacher", default="none", help="none, self, or a checkpoint's path (default none)")
    ap.add_argument("--name", required=True, help="the attempt's folder name under <work>/int4-attempts")
    ap.add_argument("--work", type=Path, default=Path("build/bench-quality"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=None, help="distillation weight α (default: the recipe's, 0.7)")
    ap.add_argument("--mix", type=float, default=None,
                    help="weight of distillation on blended inputs (recipe distill.mix; function matching; default 0)")
    ap.add_argument("--temperature", type=float, default=None, help="distillation temperature (default: the recipe's, 6)")
    ap.add_argument("--sparsity", type=sparsity_arg, default=None,
                    help="the prune stage's share of channels removed (default: the recipe's, 0.3); 0 drops the "
                         "prune stage: W4A8 QAT of the whole student")
    ap.add_argument("--score", choices=("classifier", "phonemes"), default="classifier",
                    help="the recipe's score (run.py --demo: phonemes); phonemes fine-tunes the phoneme head too")
    ap.add_argument("--span", type=_span_arg, default=None, help="with --score phonemes: the score's span (auto)")
    ap.add_argument("--epochs", type=int, default=None, help="QAT epochs (default: the recipe's, 5)")
    ap.add_argument("--lr", type=float, default=None, help="QAT learning rate (default: the recipe's, 5e-4)")
    ap.add_argument("--ema", type=float, default=None,
                    help="the recipe's ema: a weight average over the fine-tuning, this decay per step (default 0)")
    ap.add_argument("--select", choices=("accuracy", "agreement"), default="accuracy",
                    help="which fine-tuning epoch is kept: the most accurate on validation (the pipeline's), or the "
                         "one that agrees most with the uncompressed student there")
    ap.add_argument("--dw-bits", type=int, choices=(4, 8), default=None,
                    help="the depthwise layers' weight bits (default: the recipe's wbits, 4)")
    args = ap.parse_args()
    out = args.work / "int4-attempts" / args.name
    out.mkdir(parents=True, exist_ok=True)
    spec = int4_recipe(args.student, args.corpus, out / "model.bin", args.seed, quick=False, teacher=args.teacher,
                       score=args.score, span=args.span, **({} if args.sparsity is None else {"sparsity": args.sparsity}))
    q = next(st for st in spec["stages"] if st["name"] == "quantize")
    q.update({k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None})
    if args.ema is not None:
        spec["ema"] = args.ema
    distill = {k: v for k, v in (("alpha", args.alpha), ("temperature", args.temperature), ("mix", args.mix))
               if v is not None}
    if distill:
        spec["distill"] = distill
    rec = from_dict(spec)
    t = time.monotonic()
    pipe = ClipPipeline(rec, progress=sys.stderr.isatty())
    pipe.select = args.select
    if args.dw_bits is not None:
        _depthwise_bits(args.dw_bits)
    pipe.run()
    exp = pipe.export(as_board(rec.board), Path(rec.output))
    seconds = round(time.monotonic() - t)
    fp32 = next(r for r in pipe.rows if r["name"] == "student")
    int4 = pipe.rows[-1]
    row = {"name": args.name, "command": "python benchmarks/quality/int4_attempt.py " + " ".join(sys.argv[1:]),
           "recipe": spec | {"distill": rec.distill if rec.teacher else None}, "select": args.select,
           "dw_bits": args.dw_bits, "seconds": seconds,
           "stages": pipe.rows, "agreement": exp["agreement"],
           "int4_minus_fp32_points": {s: round(100 * (int4[f"{s}_accuracy"] - fp32[f"{s}_accuracy"]), 2)
                                      for s in ("val", "test", "unseen")}}
    row["int4_agreement_with_fp32"] = int4["agreement_with_student"]
    (out / "row.json").write_text(json.dumps(row, indent=1, default=str))
    print(json.dumps({k: row[k] for k in ("name", "seconds", "agreement", "int4_minus_fp32_points",
                                          "int4_agreement_with_fp32")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
