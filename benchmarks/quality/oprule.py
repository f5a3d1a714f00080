#!/usr/bin/env python3
"""How well does a rule that picks the operating point on validation hold on real speech? For each checkpoint
this computes (once, cached beside it) the streaming posteriors the benchmark's protocol uses (val and test
wake-word files, the validation negative streams, the real-speech streams), then applies each operating-point
rule of hostside/evaluate.py to the validation data alone and reports what the chosen point gives on the test
data: real-speech false accepts per hour (with the 95 % upper bound) and FRR on held-out and unseen voices.

    .venv/bin/python benchmarks/quality/oprule.py CKPT [CKPT ...] [--corpus build/bench-quality/corpus]
        [--target 1.0] [--smooth N|validation] [--json out.json] [--val-dialogue nl]

--val-dialogue adds real conversational speech to the validation negatives (Fish Fillets NG's dialogue in the
given languages, hostside.data.realspeech.dialogue_sources; never part of the test streams) and applies every
rule with and without it; the dialogue's own false accepts at the points chosen without it are reported too.

A rule is good when the real-speech FA/h it produces sits near the target for every model and seed (not
1 FA/h for one seed and 90 for the next) at the lowest FRR that allows.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hostside import evaluate as E  # noqa: E402
from hostside.cli import _smoothing_arg  # noqa: E402

STRIDE_MS, REFRACTORY_S = 100.0, 1.0


def _pack(posts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate(posts) if posts else np.zeros(0)), np.array([len(p) for p in posts], dtype=np.int64)


def _unpack(flat: np.ndarray, lens: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(lens)[:-1]) if len(lens) else []


def posteriors(ckpt: Path, corpus_dir: Path) -> dict:
    """Every posterior the protocol needs, cached in <ckpt>.posteriors-<key>.npz."""
    key = hashlib.sha256(f"{ckpt.resolve()}:{ckpt.stat().st_mtime_ns}:{corpus_dir.resolve()}:"
                         f"{(corpus_dir / 'manifest.json').stat().st_mtime_ns}".encode()).hexdigest()[:12]
    cache = ckpt.with_name(f"{ckpt.stem}.posteriors-{key}.npz")
    if cache.is_file():
        z = np.load(cache)
        out = {k: _unpack(z[f"{k}_flat"], z[f"{k}_lens"]) for k in ("val", "test", "unseen", "real")}
        out.update(val_neg=z["val_neg"], val_hours=float(z["val_hours"]), real_hours=z["real_hours"])
        return out
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.train import load_checkpoint, nhwc, predict
    net, ck = load_checkpoint(ckpt)
    corpus = load_corpus(corpus_dir)
    fe = FrontEnd.from_dict(ck["frontend"])
    out: dict = {}
    with nhwc(net):
        for s in ("val", "test", "unseen"):
            out[s] = E._positive_posteriors(net, corpus, fe, predict, s, STRIDE_MS, 0)[1]
        out["val_neg"], out["val_hours"], _ = E.val_negative_posteriors(net, corpus, fe, predict, STRIDE_MS, REFRACTORY_S)
        real, hours = [], []
        for st in (corpus.meta.get("fa_stream") or {}).get("streams", []):
            a = E._stream_audio(corpus, st["file"], fe.sample_rate)
            real.append(E.stream_posteriors(net, predict, a, fe, STRIDE_MS, 0))
            hours.append(len(a) / fe.sample_rate / 3600)
        out["real"], out["real_hours"] = real, np.array(hours)
    np.savez_compressed(cache, val_neg=out["val_neg"], val_hours=out["val_hours"], real_hours=out["real_hours"],
                        **{f"{k}_{w}": v for k in ("val", "test", "unseen", "real")
                           for w, v in zip(("flat", "lens"), _pack(out[k]))})
    return out


def dialogue_streams(work: Path, languages: tuple[str, ...]) -> dict:
    """The dialogue streams (16 kHz WAV, one per language), built once into work/dialogue-<langs>/."""
    from hostside.data.realspeech import DIALOGUE_INSTALL, build_streams, dialogue_sources
    out = work / f"dialogue-{'-'.join(languages)}"
    meta = out / "streams.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    srcs = dialogue_sources(languages)
    if not srcs:
        raise SystemExit(f"no Fish Fillets NG dialogue in {languages} installed: `{DIALOGUE_INSTALL}`")
    st = build_streams(out, sources=srcs)
    meta.write_text(json.dumps(st, indent=1))
    return st


def dialogue_posteriors(ckpt: Path, work: Path, streams: dict) -> tuple[list[np.ndarray], list[float]]:
    """Streaming posteriors of each dialogue stream (cached in <ckpt>.dialogue-<key>.npz) and its hours."""
    files = [work / s["file"] for s in streams["streams"]]
    key = hashlib.sha256(f"{ckpt.resolve()}:{ckpt.stat().st_mtime_ns}:".encode() + json.dumps(
        [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]).encode()).hexdigest()[:12]
    cache = ckpt.with_name(f"{ckpt.stem}.dialogue-{key}.npz")
    hours = [s["seconds"] / 3600 for s in streams["streams"]]
    if cache.is_file():
        z = np.load(cache)
        return _unpack(z["flat"], z["lens"]), hours
    from hostside.data.corpus import read_wav, resample
    from hostside.data.features import FrontEnd
    from hostside.train import load_checkpoint, nhwc, predict
    net, ck = load_checkpoint(ckpt)
    fe = FrontEnd.from_dict(ck["frontend"])
    posts = []
    with nhwc(net):
        for f in files:
            x, sr = read_wav(f)
            posts.append(E.stream_posteriors(net, predict, resample(x, sr, fe.sample_rate), fe, STRIDE_MS, 0))
    flat, lens = _pack(posts)
    np.savez_compressed(cache, flat=flat, lens=lens)
    return posts, hours


def with_dialogue(p: dict, posts: list[np.ndarray], hours: list[float]) -> dict:
    """p with the dialogue appended to its validation negatives, separated by more than the refractory."""
    return {**p, "val_neg": E.join_streams([p["val_neg"], *posts], STRIDE_MS, REFRACTORY_S),
            "val_hours": p["val_hours"] + sum(hours)}


def outcome(p: dict, op: dict) -> dict:
    det = E.Detector(op["threshold"], op["smooth"], STRIDE_MS, REFRACTORY_S)
    n_fa = sum(len(det.triggers(r)) for r in p["real"])
    hours = float(np.sum(p["real_hours"]))
    return {"threshold": op["threshold"], "smooth": op["smooth"], "val_false_accepts": op["val_false_accepts"],
            "val_estimated_fa_per_hour": op.get("val_estimated_fa_per_hour"),
            "frr_test": float(E._missed(det, p["test"], det.threshold).mean()),
            "frr_unseen": float(E._missed(det, p["unseen"], det.threshold).mean()),
            **E.fa_figures(n_fa, hours),
            **({"dialogue_false_accepts": sum(len(det.triggers(q)) for q in p["dialogue"]),
                "dialogue_hours": float(sum(p["dialogue_hours"]))} if p.get("dialogue") is not None else {})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--corpus", type=Path, default=Path("build/bench-quality/corpus"))
    ap.add_argument("--target", type=float, default=1.0, help="false accepts per hour the rules aim for")
    ap.add_argument("--tail-peaks", type=int, nargs="+", default=[E.TAIL_PEAKS],
                    help="peaks the tail rule fits (several: compare them)")
    ap.add_argument("--smooth", type=_smoothing_arg, default=None, metavar="N|validation",
                    help="the detector's smoothing (default: the protocol's, %d windows; 'validation': chosen with "
                    "the threshold, as the recorded §7–§8 tables were)" % E.DETECTOR_SMOOTHING)
    ap.add_argument("--json", type=Path, help="write every outcome here")
    ap.add_argument("--val-dialogue", default="",
                    help="comma-separated languages of Fish Fillets NG dialogue to add to the validation negatives "
                         "(e.g. nl); every rule is applied with and without it")
    args = ap.parse_args()
    langs = tuple(x for x in args.val_dialogue.split(",") if x)
    streams = dialogue_streams(args.corpus.parent, langs) if langs else None
    rows: dict = {}
    for ck in args.checkpoints:
        print(f"[posteriors] {ck}", file=sys.stderr, flush=True)
        p = posteriors(ck, args.corpus)
        variants = [("", p)]
        if streams:
            posts, hours = dialogue_posteriors(ck, args.corpus.parent, streams)
            p = {**p, "dialogue": posts, "dialogue_hours": hours}
            variants = [("", p), (f" + dialogue {'/'.join(langs)} ({sum(hours):.2f} h)", with_dialogue(p, posts, hours))]
        for suffix, q in variants:
            for rule in E.OPERATING_RULES:
                for k in (args.tail_peaks if rule == "tail" else [None]):
                    op = E.choose_operating_point(q["val"], q["val_neg"], q["val_hours"], STRIDE_MS, REFRACTORY_S,
                                                  args.target, args.smooth, rule=rule,
                                                  **({"tail_peaks": k} if k else {}))
                    name = (f"{rule} (k = {k})" if k else rule) + suffix
                    rows.setdefault(name, []).append({"checkpoint": str(ck), **outcome(q, op)})
    dial = streams is not None
    print(f"| rule | models | threshold (smoothing) | real FA/h | 95 % upper | FRR held-out | FRR unseen |"
          + (" dialogue FA (count / hours) |" if dial else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if dial else ""))
    for rule, rs in rows.items():
        def col(k, scale=1.0, fmt="{:.1f}"):
            v = [scale * r[k] for r in rs]
            return (fmt.format(statistics.fmean(v)) + (f" ({fmt.format(min(v))}–{fmt.format(max(v))})" if len(v) > 1 else ""))
        ops = ", ".join(f"{r['threshold']:g} ({r['smooth']})" for r in rs)
        print(f"| {rule} | {len(rs)} | {ops} | {col('false_accepts_per_hour')} | {col('false_accepts_per_hour_upper95')} "
              f"| {col('frr_test', 100)} % | {col('frr_unseen', 100)} % |"
              + (f" {', '.join(str(r['dialogue_false_accepts']) for r in rs)} / {rs[0]['dialogue_hours']:.2f} h |"
                 if dial else ""))
    if args.json:
        args.json.write_text(json.dumps({"target_fa_per_hour": args.target, "rules": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
