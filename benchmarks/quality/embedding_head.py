#!/usr/bin/env python3
"""Would a teacher that has heard real speech separate "hey kimi" from its rhymes? (attempts.md §12)

Google's speech_embedding (a convolutional feature extractor pre-trained on a large amount of real speech; the
backbone of openWakeWord, which ships it as ONNX) is frozen, and a small head (MLP on the three 96-d embeddings of
a 1 s clip) is trained on the corpus's training split and selected on validation, as the students are. If this
head were much better than the DS-CNN students on unseen voices and on the held-out rhymes, it would be the
stronger teacher to distil them from; it is measured before anything is built on it.

Not a dependency of pqlr: the embedding is not installed by `make deps`. To run this script:

    .venv/bin/pip install onnxruntime scikit-learn openwakeword==0.4.0     # 0.4.0 bundles the ONNX models
    .venv/bin/python benchmarks/quality/embedding_head.py --corpus "build/bench-quality/corpus-rhyme_negatives=150" \\
        --seeds 0,1,2

(openWakeWord's package imports scikit-learn at import; later releases download the models at run time, 0.4.0
ships them in the wheel.) Embeddings are cached beside the corpus (<corpus>/embeddings-oww-0.4.0.npz). Clip
accuracy only: the head is not a streaming detector, so no FRR or FA/h is computed.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hostside.data.corpus import load_corpus, split_audio  # noqa: E402

SPLITS = ("train", "val", "test", "unseen")
HELD_OUT_RHYMES = ("hey dimi", "hey gimi", "hey nimi", "hey wimi", "hey simi", "hey trimi", "hi kimi")


def embeddings(corpus_dir: Path) -> dict:
    cache = corpus_dir / "embeddings-oww-0.4.0.npz"
    if cache.is_file():
        z = np.load(cache)
        return {s: (z[f"{s}_e"], z[f"{s}_y"], z[f"{s}_voice"], z[f"{s}_text"], z[f"{s}_label"]) for s in SPLITS}
    try:
        from openwakeword.utils import AudioFeatures
    except ImportError as e:
        sys.exit(f"openWakeWord's embedding is not installed ({e}); run\n"
                 "  .venv/bin/pip install onnxruntime scikit-learn openwakeword==0.4.0")
    corpus = load_corpus(corpus_dir)
    fe = AudioFeatures(ncpu=2)
    out, flat = {}, {}
    for s in SPLITS:
        t = time.monotonic()
        audio, y = split_audio(corpus, s)
        clips = corpus.split(s)
        e = fe.embed_clips(audio, batch_size=256, ncpu=1).astype(np.float32)
        voice = np.array(["espeak-ng" if c.engine == "espeak-ng" else f"{c.engine}:{c.voice}" for c in clips])
        text = np.array([c.text for c in clips])
        label = np.array([c.label for c in clips])
        out[s] = (e, y, voice, text, label)
        flat.update({f"{s}_e": e, f"{s}_y": y, f"{s}_voice": voice, f"{s}_text": text, f"{s}_label": label})
        print(f"embedded {s}: {e.shape} in {time.monotonic() - t:.0f} s", file=sys.stderr, flush=True)
    np.savez(cache, **flat)
    return out


def head(data: dict, classes: list[str], seed: int, epochs: int) -> dict:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    x = {s: torch.from_numpy(data[s][0].reshape(len(data[s][0]), -1)) for s in SPLITS}
    y = {s: torch.from_numpy(data[s][1]) for s in SPLITS}
    mu, sd = x["train"].mean(0), x["train"].std(0) + 1e-3
    x = {s: (v - mu) / sd for s, v in x.items()}
    net = nn.Sequential(nn.Dropout(0.2), nn.Linear(x["train"].shape[1], 256), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, len(classes)))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
    ce = nn.CrossEntropyLoss(label_smoothing=0.05)
    gen = torch.Generator().manual_seed(seed)
    best, state = -1.0, None
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(y["train"]), generator=gen)
        for i in range(0, len(perm), 128):
            idx = perm[i: i + 128]
            loss = ce(net(x["train"][idx]), y["train"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = float((net(x["val"]).argmax(1) == y["val"]).float().mean())
        if val > best:
            best, state = val, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    net.eval()
    wake = classes.index(next(c for c in classes if c not in ("unknown", "silence")))
    row: dict = {"seed": seed}
    with torch.no_grad():
        for s in SPLITS:
            pred = net(x[s]).argmax(1).numpy()
            row[f"{s}_accuracy"] = float((pred == data[s][1]).mean())
            if s in ("test", "unseen"):
                by_voice = collections.defaultdict(list)
                for v, p, t in zip(data[s][2], pred, data[s][1]):
                    if not v.startswith(("human", "none")):
                        by_voice[v].append(p == t)
                row[f"{s}_accuracy_by_voice"] = {v: float(np.mean(r)) for v, r in sorted(by_voice.items())}
                rh = collections.defaultdict(list)
                for t, lab, p in zip(data[s][3], data[s][4], pred):
                    if lab == "unknown" and t in HELD_OUT_RHYMES:
                        rh[t].append(p == wake)
                row[f"{s}_rhymes_taken_for_the_wake_word"] = {t: float(np.mean(r)) for t, r in sorted(rh.items())}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"))
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated head seeds (default 0,1,2)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("build/bench-quality/attempts/embedding-head/rows.json"))
    args = ap.parse_args()
    corpus = load_corpus(args.corpus)
    data = embeddings(args.corpus)
    rows = [head(data, list(corpus.classes), int(s), args.epochs) for s in args.seeds.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"corpus": str(args.corpus), "command": "python benchmarks/quality/embedding_head.py "
                                    + " ".join(sys.argv[1:]), "rows": rows}, indent=1))
    print("| seed | val acc | held-out acc | unseen acc | unseen by voice | held-out rhymes taken for the wake word (test) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['val_accuracy']:.1%} | {r['test_accuracy']:.1%} | {r['unseen_accuracy']:.1%} | "
              + " / ".join(f"{v.split(':')[-1]} {a:.1%}" for v, a in r["unseen_accuracy_by_voice"].items()) + " | "
              + ", ".join(f"{t} {a:.0%}" for t, a in r["test_rhymes_taken_for_the_wake_word"].items()) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
