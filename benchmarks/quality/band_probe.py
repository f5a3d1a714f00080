#!/usr/bin/env python3
"""What a telephone line does to a student: the same speech scored full-band and through an 8 kHz channel.

The test's real speech (asterisk's prompts, nearly all of its 3.12 h) is 8 kHz telephone audio: nothing above 4 kHz.
The students train on full-band synthetic speech and noise. This reads, for each checkpoint, the streaming
detector (the protocol's windows, smoothing and refractory) on

- speech without the phrase that the corpus holds at 16 kHz (the val TTS stream and the val people's recordings:
  validation data; the test TTS stream: test data, read here only to see the effect, chosen on nothing),
  full-band and resampled through 8 kHz (16 → 8 → 16 kHz: the channel the real speech came through);
- the unseen voices' wake-word files, the same two ways;

and prints the triggers at each threshold and the mean wake posterior, so that one can see whether the missing
upper band reads as evidence for the wake word (more triggers through the channel) and whether training with the
channel (`pqlr train --augment band_prob=P`) removes that.

--choose: the threshold chosen as the protocol does (hostside/evaluate.py choose_operating_point, 1 false accept an
hour, the protocol's smoothing) on the validation negatives as they are, through the line, and both together, with
the test figures each gives (read off the cached posteriors of oprule.py): whether validation speech heard through
the channel the test's real speech came through puts the threshold where real speech needs it.

    .venv/bin/python benchmarks/quality/band_probe.py CKPT [CKPT ...] --corpus DIR [--thresholds 0.3,0.5,0.7] [--choose]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from oprule import outcome, posteriors  # noqa: E402

STRIDE_MS, REFRACTORY_S = 100.0, 1.0
STREAMS = ("tts_stream/val.wav", "human_stream/val.wav", "tts_stream/test.wav")


def telephone(audio: np.ndarray, sr: int) -> np.ndarray:
    """The audio as an 8 kHz line carries it, back at the front end's rate."""
    from hostside.data.corpus import resample
    return resample(resample(audio, sr, 8000), 8000, sr)[: len(audio)]


def probe(ckpt: Path, corpus_dir: Path, thresholds: list[float]) -> list[dict]:
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.train import load_checkpoint, nhwc, predict
    net, ck = load_checkpoint(ckpt)
    corpus = load_corpus(corpus_dir)
    fe = FrontEnd.from_dict(ck["frontend"])
    sr = fe.sample_rate
    rows = []
    with nhwc(net):
        for rel in STREAMS:
            if not (corpus.root / rel).is_file():
                continue
            a = E._stream_audio(corpus, rel, sr)
            for channel, x in (("full", a), ("8 kHz", telephone(a, sr))):
                post = E.stream_posteriors(net, predict, x, fe, STRIDE_MS, 0)
                rows.append({"what": f"{rel} ({len(a) / sr / 3600:.2f} h): triggers", "channel": channel,
                             "mean": float(post.mean()),
                             "at": [E.count_triggers(post, t, E.DETECTOR_SMOOTHING, STRIDE_MS, REFRACTORY_S)
                                    for t in thresholds]})
        det = E.Detector(thresholds[0], E.DETECTOR_SMOOTHING, STRIDE_MS, REFRACTORY_S)
        for channel, f in (("full", None), ("8 kHz", lambda a: telephone(a, sr))):
            clips, posts = E._positive_posteriors(net, corpus, fe, predict, "unseen", STRIDE_MS, 0, channel=f)
            rows.append({"what": f"unseen wake-word files ({len(clips)}): FRR %", "channel": channel,
                         "mean": float(np.concatenate(posts).mean()),
                         "at": [round(100 * float(E._missed(det, posts, t).mean()), 1) for t in thresholds]})
    return rows


def choose(ckpt: Path, corpus_dir: Path) -> list[tuple[str, dict]]:
    """The protocol's operating point on the validation negatives full-band, through the line, and both."""
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.train import load_checkpoint, nhwc, predict
    p = posteriors(ckpt, corpus_dir)
    net, ck = load_checkpoint(ckpt)
    corpus = load_corpus(corpus_dir)
    fe = FrontEnd.from_dict(ck["frontend"])
    audios, _ = E._val_negative_streams(corpus, fe)
    with nhwc(net):
        line = E.join_streams([E.stream_posteriors(net, predict, telephone(a, fe.sample_rate), fe, STRIDE_MS, 0)
                               for a in audios], STRIDE_MS, REFRACTORY_S)
    hours = p["val_hours"]
    out = []
    for what, stream, h in (("full-band (the protocol)", p["val_neg"], hours), ("through the line", line, hours),
                            ("both", np.concatenate([p["val_neg"], line]), 2 * hours)):
        op = E.choose_operating_point(p["val"], stream, h, STRIDE_MS, REFRACTORY_S, 1.0)
        out.append((f"{what}, {h:.2f} h", {**outcome(p, op), "val_allowed": op["val_allowed_false_accepts"]}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus the checkpoints were trained on")
    ap.add_argument("--thresholds", default="0.3,0.5,0.7",
                    help="detector thresholds to read, comma-separated (default 0.3,0.5,0.7)")
    ap.add_argument("--choose", action="store_true",
                    help="instead: the protocol's threshold chosen on the validation negatives full-band, through the "
                    "line and both, and the test figures each gives")
    args = ap.parse_args()
    if args.choose:
        print("| checkpoint | validation negatives | allowed false accepts | threshold | unseen FRR | real false accepts "
              "(FA/h, 95 % upper) |")
        print("|---|---|---|---|---|---|")
        for ck in args.checkpoints:
            for what, o in choose(ck, args.corpus):
                print(f"| {ck.parent.name} | {what} | {o['val_allowed']} | {o['threshold']:.2f} | "
                      f"{100 * o['frr_unseen']:.1f} % | {o['false_accepts']} ({o['false_accepts_per_hour']:.1f}, "
                      f"{o['false_accepts_per_hour_upper95']:.1f}) |", flush=True)
        print(f"\nDetector: {E.DETECTOR_SMOOTHING} windows; target 1 false accept per hour of validation negatives.")
        return 0
    thresholds = [float(t) for t in args.thresholds.split(",")]
    for ck in args.checkpoints:
        print(f"\n## {ck}\n")
        print("| what | channel | mean wake posterior | " + " | ".join(f"at {t:g}" for t in thresholds) + " |")
        print("|---|---|---|" + "---|" * len(thresholds))
        for r in probe(ck, args.corpus, thresholds):
            print(f"| {r['what']} | {r['channel']} | {r['mean']:.4f} | " + " | ".join(f"{v:g}" for v in r["at"]) + " |",
                  flush=True)
    print(f"\nDetector: {E.DETECTOR_SMOOTHING} windows, {STRIDE_MS:g} ms stride, {REFRACTORY_S:g} s refractory.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
