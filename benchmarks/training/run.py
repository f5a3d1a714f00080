#!/usr/bin/env python3
"""Training speed of `pqlr train`'s loop (hostside/train.py: on-the-fly augmentation, the front end, the student's
step, and a K-member teacher ensemble when distilling), on whatever device torch finds: seconds per epoch and
training clips per second, for the demo's student (dscnn-logmel, log-mel 40, VTLP 0.8–1.25, noise, SpecAugment).

    .venv/bin/python benchmarks/training/run.py [--corpus build/demo/corpus] [--clips 1200] [--epochs 3]
        [--repeat 1] [--teachers 0,4] [--label cpu-2core]
    .venv/bin/python benchmarks/training/run.py --corpus DIR --clips 1200 --pack subset.npz   # for another machine
    python3 benchmarks/training/run.py --data subset.npz --repeat 5 --label h200 --out results-h200.json   # there

The corpus is any `pqlr data synth` corpus (`make demo` makes build/demo/corpus); --clips takes a seeded subset of
its training clips (0: all) and 400 of its validation clips. --pack writes that subset, the validation features and
64 clips of the noise bank to one .npz, so a machine without the corpus, the Debian noise files or espeak-ng (a GPU
machine) times the same data. Each configuration trains a fresh, seeded student for --epochs epochs; the first is a
warm-up and is reported apart. Teachers are randomly initialised students of the same shape: only their cost counts
here. Speed, not accuracy: the validation accuracy printed is a sanity check on a few epochs of a subset.
Writes --out (default results-<label>.json beside this file) and prints a Markdown table.
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
import torch  # noqa: E402

from hostside.api import DEMO_FEATURES as FEATURES, DEMO_MODEL as MODEL, DEMO_VTLP as VTLP  # noqa: E402  the demo's


def load(args) -> dict:
    """The subset: int16 training audio and labels, validation features and labels, a noise bank, the class count."""
    if args.data:
        z = np.load(args.data)
        return {k: z[k] for k in ("audio", "y", "xv", "yv", "noise")} | {"classes": int(z["classes"])}
    from hostside.data.corpus import split_audio
    from hostside.data.features import preset
    from hostside.data.noise import noise_bank
    from hostside.api import load_features
    corpus, xv, yv = load_features(args.corpus, "val", preset(FEATURES))
    audio, y = split_audio(corpus)
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(audio))[: args.clips] if args.clips else np.arange(len(audio))
    vpick = rng.permutation(len(xv))[:400]
    bank = noise_bank(seed=0)
    return {"audio": audio[pick], "y": y[pick], "xv": xv[vpick], "yv": yv[vpick],
            "noise": bank[rng.permutation(len(bank))[:64]], "classes": len(corpus.classes)}


def machine() -> dict:
    cuda = torch.cuda.is_available()
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.machine(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "cuda": cuda,
            "gpu": torch.cuda.get_device_name(0) if cuda else None}


def time_one(d: dict, epochs: int, teachers: int) -> dict:
    """Train a fresh student (and time it) with `teachers` random teachers distilled from as one ensemble."""
    from hostside.compress.distill import TeacherEnsemble, kd_loss
    from hostside.data.features import preset
    from hostside.models import build_model
    from hostside.train import TrainConfig, train
    fe = preset(FEATURES)
    cfg = TrainConfig(epochs=epochs, seed=0, vtlp=VTLP)
    torch.manual_seed(0)
    net = build_model(MODEL, fe.shape, d["classes"])
    distill = {}
    if teachers:
        members = [build_model(MODEL, fe.shape, d["classes"]).eval() for _ in range(teachers)]
        distill = {"teacher": members[0] if teachers == 1 else TeacherEnsemble(members, 6.0),
                   "loss_fn": lambda z_s, yb, z_t: kd_loss(z_s, z_t, yb, 6.0, 0.7, label_smoothing=cfg.label_smoothing)}
    epoch_ends = []          # when each epoch's last step ends (its validation is counted in the next epoch's time)

    def progress_bar(*a, **k):                        # train()'s progress hook, advanced once per step
        from contextlib import contextmanager

        @contextmanager
        def bar():
            seen = [0]
            steps = -(-len(d["audio"]) // cfg.batch_size)

            def advance(info=""):
                seen[0] += 1
                if seen[0] % steps == 0:
                    if torch.cuda.is_available():
                        torch.cuda.synchronize()
                    epoch_ends.append(time.perf_counter())
            yield advance
        return bar()
    import hostside.train as T
    saved = T.progress_bar
    T.progress_bar = progress_bar
    t0 = time.perf_counter()
    try:
        net, info = train(net, fe, d["audio"], d["y"], d["xv"], d["yv"], cfg, noise_bank=d["noise"], progress=True,
                          **distill)
    finally:
        T.progress_bar = saved
    total = time.perf_counter() - t0
    starts = [t0] + epoch_ends[:-1]
    per = [e - s for s, e in zip(starts, epoch_ends)]
    steady = per[1:] or per
    n = len(d["audio"])
    return {"teachers": teachers, "epochs": epochs, "clips": n, "device": info["device"],
            "first_epoch_s": per[0], "epoch_s": float(np.mean(steady)), "clips_per_s": n / float(np.mean(steady)),
            "total_s": total, "val_acc": info["best_val_acc"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("build/demo/corpus"))
    ap.add_argument("--data", type=Path, default=None, help="a subset written by --pack, instead of --corpus")
    ap.add_argument("--clips", type=int, default=1200, help="training clips in the subset (0: all; default 1200)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="each epoch goes through the subset this many times (freshly augmented each time), so a "
                    "packed subset small enough to carry makes epochs as long as a whole corpus's (default 1)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per configuration, the first a warm-up (default 3)")
    ap.add_argument("--teachers", default="0,4", help="teacher-ensemble sizes to time (default 0,4; 0: no teacher)")
    ap.add_argument("--pack", type=Path, default=None, help="write the subset to this .npz and stop")
    ap.add_argument("--label", default=None, help="this machine's name in the results (default: cpu-<cores>core or the GPU's)")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default results-<label>.json beside this file)")
    args = ap.parse_args()
    if args.data is None and not (args.corpus / "manifest.json").is_file():
        sys.exit(f"{args.corpus}: no corpus; run `make demo` (it synthesises build/demo/corpus) or pass --corpus DIR")
    if args.epochs < 2:
        sys.exit("--epochs: at least 2 (the first is a warm-up)")
    d = load(args)
    if args.pack:
        np.savez_compressed(args.pack, **{k: d[k] for k in ("audio", "y", "xv", "yv")},
                            noise=d["noise"].astype(np.float32), classes=d["classes"])
        print(f"wrote {args.pack} ({args.pack.stat().st_size / 1e6:.1f} MB: {len(d['audio'])} training clips)")
        return 0
    if args.repeat > 1:
        d["audio"], d["y"] = np.tile(d["audio"], (args.repeat, 1)), np.tile(d["y"], args.repeat)
    m = machine()
    label = args.label or (m["gpu"] or f"cpu-{m['cores']}core").replace(" ", "-")
    rows = []
    for k in [int(x) for x in args.teachers.split(",") if x.strip()]:
        r = time_one(d, args.epochs, k)
        rows.append(r)
        print(json.dumps(r), flush=True)
    res = {"label": label, "machine": m, "model": MODEL, "features": FEATURES, "vtlp": VTLP, "repeat": args.repeat,
           "command": "python benchmarks/training/run.py " + " ".join(sys.argv[1:]), "rows": rows}
    out = args.out or HERE / f"results-{label}.json"
    out.write_text(json.dumps(res, indent=1))
    print("\n" + "\n".join(table([res])))
    print(f"\nwrote {out}")
    if out.parent == HERE:
        (HERE / "results.md").write_text(page())
        print(f"wrote {HERE / 'results.md'}")
    return 0


def table(results: list[dict]) -> list[str]:
    lines = ["| machine | device | torch | teachers | clips per epoch | first epoch, s | epoch, s | clips/s |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        m = res["machine"]
        where = m["gpu"] or f"{m['cores']} CPU cores"
        for r in res["rows"]:
            lines.append(f"| {res['label']} | {r['device']} ({where}) | {m['torch']} | {r['teachers']} | {r['clips']:,} | "
                         f"{r['first_epoch_s']:.1f} | {r['epoch_s']:.2f} | {r['clips_per_s']:,.0f} |")
    return lines


def page() -> str:
    """results.md: every results-*.json beside this file, with the command that produced it."""
    results = [json.loads(f.read_text()) for f in sorted(HERE.glob("results-*.json"))]
    return "\n".join(["# Training speed (`pqlr train`'s loop)", "", __doc__.split("\n\n")[0].strip(), "",
                      *table(results), "", "Commands:", "",
                      *(f"- {r['label']}: `{r['command']}`" + (f" — {r['note']}" if r.get("note") else "")
                        for r in results), ""])


if __name__ == "__main__":
    raise SystemExit(main())
