#!/usr/bin/env python3
"""How often students fire on Fish Fillets NG's dialogue: separate peaks of the wake-word posterior (1 s windows
every 100 ms, unsmoothed, 1 s apart) at or above each floor, per hour, on the corpus's training or validation game
levels. `pqlr mine` fine-tunes on the training levels' peaks; the validation levels say whether that carried over
to conversation it never read (the test streams are other speech again: asterisk's prompts, pocketsphinx).

    .venv/bin/python benchmarks/quality/dialogue_peaks.py CKPT [CKPT ...] [--split val] [--floors 0.5,0.8,0.95]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from hostside.data.features import FrontEnd  # noqa: E402
from hostside.mine import mine, dialogue_recordings  # noqa: E402
from hostside.train import load_checkpoint  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--split", choices=["train", "val"], default="val")
    ap.add_argument("--floors", default="0.5,0.8,0.95")
    ap.add_argument("--corpus-seed", type=int, default=0, help="the corpus's seed (its level split; default 0)")
    args = ap.parse_args()
    floors = [float(f) for f in args.floors.split(",")]
    recs = dialogue_recordings(args.corpus_seed, split=args.split)
    print(f"| checkpoint | {' | '.join(f'peaks ≥ {f} per hour' for f in floors)} |")
    print("|---|" + "---|" * len(floors))
    for ck in args.checkpoints:
        net, meta = load_checkpoint(ck)
        found = mine(net, FrontEnd.from_dict(meta["frontend"]), recs, negatives=10**9, floor=min(floors), progress=False)
        print(f"| {ck} | " + " | ".join(f"{(found.scores >= f).sum() / found.hours:.1f}" for f in floors) +
              f" |  ({found.hours:.2f} h, {args.split} levels)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
