#!/usr/bin/env python3
"""Which validation negatives put the operating point where the test would put it? The protocol chooses the
threshold on validation only (hostside/evaluate.py `choose_operating_point`: the lowest val FRR with at most
1 false accept an hour on the validation negative streams). On the demo's corpus those streams are 0.25 h — a
TTS stream of val voices and val people reading letters and words (KLettres) — which allow no false accept, so
the threshold sits just above their single highest peak. This reads each student once (posteriors cached beside
its checkpoint) and applies the same rule to other sets of validation negatives, none of them in the test:

- the protocol's streams, and each of them alone (which one sets the threshold);
- a longer TTS stream of val voices and val texts (--tts-hours, made once into <work>/val-tts-<H>h/);
- Fish Fillets NG's dialogue (actors in conversation; --dialogue languages, every level: a corpus that trains on it
  is refused), as recorded and through an 8 kHz telephone line (band_probe.py `telephone`), all of it or only the
  --val-languages casts, the other casts then held out as a full-band test of conversation;

and reports what each chosen threshold gives on the test: unseen and held-out FRR, false accepts in the real
speech's hours with the 95 % upper bound, beside the test's own best point (the lowest unseen FRR with no real
false accept: what no validation can know, the bound a choice is measured against).

    .venv/bin/python benchmarks/quality/val_negatives.py --work build/kd-demo4 ctc03ph-s2 ctc03ph-s3 ... \\
        [--score phonemes --span 1.8] [--tts-hours 1] [--dialogue cs,en,nl] [--val-languages nl] [--no-line] [--where]
        [--json out.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from hostside import evaluate as E  # noqa: E402
from hostside.data.corpus import CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from hostside.keyword import SCORES  # noqa: E402
from det_smoothing import points  # noqa: E402
from oprule import REFRACTORY_S, STRIDE_MS, _pack, _unpack, dialogue_streams  # noqa: E402

TARGET = 1.0                       # false accepts an hour on the validation negatives (the protocol's)


def tts_val_stream(corpus_dir: Path, work: Path, hours: float) -> dict:
    """A TTS negative stream of the corpus's val voices reading its val texts, `hours` long, in its val noise
    (synth._tts_stream with the corpus's own config but the length): made once into <work>/val-tts-<H>h/."""
    from concurrent.futures import ProcessPoolExecutor
    from hostside.data import synth as S
    from hostside.data.corpus import load_corpus
    out = work / f"val-tts-{hours:g}h"
    meta = out / "stream.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    corpus = load_corpus(corpus_dir)
    base = S.SynthConfig(**corpus.meta["config"])
    pools, banks = S._noise_and_rooms(base)                  # the corpus's voices, texts and noise pools ...
    voices = [v for v, sp in S.split_voices(base).items() if sp == "val"]
    texts = S.negative_texts(base)["val"]
    cfg = replace(base, tts_stream_seconds=hours * 3600.0, seed=base.seed + 1000)   # ... other draws than its stream
    n = int(cfg.tts_stream_seconds / 2.0) + 1
    from hostside.progress import progress_bar
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(f"val TTS stream, {hours:g} h", n, enabled=sys.stderr.isatty()) as advance, \
            ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        st = S._tts_stream("val", cfg, voices, texts["sentences"] or texts["words"], out, pools, banks, pool, advance)
    st["file"] = str(Path(out.name) / st["file"])
    meta.write_text(json.dumps(st, indent=1))
    return st


def read(ckpt: Path, corpus_dir: Path, work: Path, score: str, span_s, extra: dict[str, list[dict]],
         span_from: str = "centre", repeats: bool = True) -> dict:
    """Every posterior the comparison needs, cached in <ckpt>.valneg-<key>.npz: the val / test / unseen wake-word
    files, the corpus's validation streams one by one, the real-speech streams, and each extra set of streams
    (name → [{file (relative to work), seconds, channel}])."""
    key = hashlib.sha256(json.dumps([str(ckpt.resolve()), ckpt.stat().st_mtime_ns, str(corpus_dir.resolve()),
                                     (corpus_dir / "manifest.json").stat().st_mtime_ns, score, span_s,
                                     {k: [{f: st[f] for f in ("file", "seconds", "channel") if f in st} for st in v]
                                      for k, v in extra.items()}]
                                    + ([span_from] if span_from != "first" and span_s not in (None, "window") else [])
                                    + (["repeats"] if repeats and score == "phonemes" else [])
                                    ).encode()).hexdigest()[:12]
    cache = ckpt.with_name(f"{ckpt.stem}.valneg-{key}.npz")
    names = ["val", "test", "unseen", "protocol_tts", "protocol_people", "real", *extra]
    if cache.is_file():
        z = np.load(cache)
        out = {k: _unpack(z[f"{k}_flat"], z[f"{k}_lens"]) for k in names}
        out["hours"] = json.loads(str(z["hours"]))
        return out
    from band_probe import telephone
    from hostside.data.corpus import load_corpus, read_wav, resample
    from hostside.data.features import FrontEnd
    from hostside.keyword import corpus_span, detector_fn
    from hostside.train import load_checkpoint, nhwc
    net, ck = load_checkpoint(ckpt)
    corpus = load_corpus(corpus_dir)
    fe = FrontEnd.from_dict(ck["frontend"])
    fn = detector_fn(ck, score, corpus_span(span_s, net, ck, corpus_dir, STRIDE_MS), STRIDE_MS, span_from=span_from,
                     repeats=repeats)
    sr = fe.sample_rate
    out: dict = {"hours": {}}

    def streams(name: str, audios: list[np.ndarray]):
        out[name] = [E.stream_posteriors(net, fn, a, fe, STRIDE_MS, 0) for a in audios]
        out["hours"][name] = sum(len(a) for a in audios) / sr / 3600

    with nhwc(net):
        for s in ("val", "test", "unseen"):
            out[s] = E._positive_posteriors(net, corpus, fe, fn, s, STRIDE_MS, 0)[1]
        tts = (corpus.meta.get("tts_streams") or {}).get("val")
        people = corpus.meta.get("human_val_stream")
        streams("protocol_tts", [E._stream_audio(corpus, tts["file"], sr)] if tts else [])
        streams("protocol_people", [E._stream_audio(corpus, people["file"], sr)] if people else [])
        streams("real", [E._stream_audio(corpus, st["file"], sr)
                         for st in (corpus.meta.get("fa_stream") or {}).get("streams", [])])
        for name, sts in extra.items():
            audios = []
            for st in sts:
                x, xsr = read_wav(work / st["file"])
                x = resample(x, xsr, sr)
                audios.append(telephone(x, sr) if st.get("channel") == "line" else x)
            streams(name, audios)
    np.savez_compressed(cache, hours=json.dumps(out["hours"]),
                        **{f"{k}_{w}": v for k in names for w, v in zip(("flat", "lens"), _pack(out[k]))})
    return out


def choose(p: dict, parts: tuple[str, ...]) -> dict:
    """The protocol's rule on the val wake-word files against the streams of `parts`."""
    posts = [q for k in parts for q in p[k]]
    hours = sum(p["hours"][k] for k in parts)
    neg = E.join_streams(posts, STRIDE_MS, REFRACTORY_S) if posts else None
    op = E.choose_operating_point(p["val"], neg, hours, STRIDE_MS, REFRACTORY_S, TARGET, None)
    return {**op, "val_hours": hours}


def on_test(p: dict, threshold: float) -> dict:
    det = E.Detector(threshold, E.DETECTOR_SMOOTHING, STRIDE_MS, REFRACTORY_S)
    n_fa = sum(len(det.triggers(r)) for r in p["real"])
    return {"threshold": threshold, "frr_unseen": float(E._missed(det, p["unseen"], threshold).mean()),
            "frr_test": float(E._missed(det, p["test"], threshold).mean()),
            **E.fa_figures(n_fa, p["hours"]["real"]),
            **({"dialogue_false_accepts": sum(len(det.triggers(q)) for q in p["dialogue"])} if "dialogue" in p else {}),
            **({"heldout_dialogue_false_accepts": sum(len(det.triggers(q)) for q in p["dialogue_test"]),
                "heldout_dialogue_hours": p["hours"]["dialogue_test"]} if "dialogue_test" in p else {})}


def by_language(p: dict, streams: list[dict], val_langs: tuple[str, ...]) -> dict:
    """p with the dialogue's streams (extra["dialogue"], in order) split by language — one language, one cast of
    actors: dialogue_val and dialogue_val_line (through the line) in val_langs, dialogue_test (full band) the rest."""
    p = {**p, "hours": dict(p["hours"])}
    for part, want in (("val", True), ("test", False)):
        idx = [i for i, st in enumerate(streams) if (st["language"] in val_langs) == want]
        for src, dst in (("dialogue", f"dialogue_{part}"), ("dialogue_line", f"dialogue_{part}_line")):
            if src not in p:
                continue
            p[dst] = [p[src][i] for i in idx]
            p["hours"][dst] = sum(streams[i]["seconds"] for i in idx) / 3600
    return p


def best_on_test(p: dict, conversation: bool = False) -> dict:
    """The test's own best point: the lowest unseen FRR with no real false accept (ties: the higher threshold);
    conversation: none on the held-out languages' dialogue either."""
    best = None
    for t in E.THRESHOLDS:
        o = on_test(p, float(t))
        quiet = o["false_accepts"] == 0 and (not conversation or o.get("heldout_dialogue_false_accepts", 0) == 0)
        if quiet and (best is None or o["frr_unseen"] <= best["frr_unseen"]):
            best = o
    return best


LIMITS = E.DET_LIMITS              # false accepts an hour at which the DET is read


def det_by_negatives(p: dict) -> dict:
    """Unseen FRR at LIMITS false accepts an hour, and at none, against the telephone real speech, the held-out
    casts' conversation, and both together (the protocol's detector: five windows, 1 s refractory)."""
    out = {}
    for name, negs, hours in (("telephone real speech", p["real"], p["hours"]["real"]),
                              ("conversation, held-out casts", p["dialogue_test"], p["hours"]["dialogue_test"]),
                              ("both", p["real"] + p["dialogue_test"], p["hours"]["real"] + p["hours"]["dialogue_test"])):
        pts = points(p["unseen"], negs, hours, E.DETECTOR_SMOOTHING)
        out[name] = {"hours": hours, "frr_at": {str(x): E.frr_at(pts, x) for x in LIMITS},
                     "frr_at_none": min(q["frr"] for q in pts if q["fa_per_hour"] == 0)}
    return out


def line_ends(languages: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each language's dialogue stream as lines: the sample where each line ends (0 first), from decoding the lines
    again as realspeech.build_streams put them one after another."""
    from concurrent.futures import ThreadPoolExecutor
    from hostside.data.realspeech import DECODERS, _decode, dialogue_sources
    out = {}
    for src in dialogue_sources(languages):
        with ThreadPoolExecutor(DECODERS) as pool:
            out[src.language] = np.cumsum([0] + [0 if x is None else len(x) for x in pool.map(_decode, src.files)])
    return out


def where_in_lines(p: dict, streams: list[dict], ends: dict, threshold: float) -> list[tuple[float, float]]:
    """(seconds from the start of its line to the end of the firing window, the line's seconds) for every trigger on
    the held-out conversation at `threshold`."""
    det = E.Detector(threshold, E.DETECTOR_SMOOTHING, STRIDE_MS, REFRACTORY_S)
    hop = int(round(STRIDE_MS * SAMPLE_RATE / 1000))
    out = []
    for st, post in zip(streams, p["dialogue"]):
        if st["language"] not in ends or st["language"] in p["val_languages"]:
            continue
        e = ends[st["language"]]
        for i in det.triggers(post):
            end = i * hop + CLIP_SAMPLES
            f = min(int(np.searchsorted(e, end, side="right")) - 1, len(e) - 2)
            out.append(((end - e[f]) / SAMPLE_RATE, (e[f + 1] - e[f]) / SAMPLE_RATE))
    return out


def top_peaks(p: dict, k: int = 3) -> dict:
    """The highest smoothed peaks of each validation stream set (which one sets the threshold)."""
    det = E.Detector(1.0, E.DETECTOR_SMOOTHING, STRIDE_MS, REFRACTORY_S)
    out = {}
    for name in p["hours"]:
        if name == "real":
            continue
        peaks = np.sort(np.concatenate([E.event_peaks(det.smoothed(q), det.gap) for q in p[name]] or [np.zeros(0)]))[::-1]
        out[name] = [round(float(x), 3) for x in peaks[:k]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="attempt.py folders under <work>/attempts (their student.pt)")
    ap.add_argument("--work", type=Path, default=Path("build/kd-demo4"))
    ap.add_argument("--score", choices=SCORES, default="phonemes")
    ap.add_argument("--span", default="1.8", help="the phonemes score's span in seconds, 'auto', or 'window'")
    ap.add_argument("--span-from", choices=("centre", "first"), default="centre",
                    help="where the span reads earlier windows' frames (`pqlr eval --span-from`; 'first' as before "
                    "2026-12-07, whose caches it reuses)")
    ap.add_argument("--phoneme-repeats", choices=("yes", "no"), default="yes",
                    help="whether a phoneme may be several spikes (`pqlr eval --phoneme-repeats`; 'no' as before "
                    "2026-12-07, whose caches it reuses)")
    ap.add_argument("--tts-hours", type=float, default=1.0, help="a longer val TTS stream (0: none)")
    ap.add_argument("--dialogue", default="cs,en,nl", help="Fish Fillets NG dialogue languages ('' for none)")
    ap.add_argument("--val-languages", default="nl",
                    help="dialogue languages that may join validation, the others held out as a full-band test of "
                         "conversation ('' for none)")
    ap.add_argument("--no-line", action="store_true",
                    help="leave out the dialogue through the 8 kHz line (a third less audio to read per student)")
    ap.add_argument("--where", action="store_true",
                    help="also say where in its line each held-out conversation trigger falls (decodes the lines again)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    corpus_dir = args.work / "corpus"
    if not (corpus_dir / "manifest.json").is_file():
        raise SystemExit(f"{corpus_dir}: no corpus there (give --work)")
    span = None if args.span == "window" else (args.span if args.span == "auto" else float(args.span))
    extra: dict[str, list[dict]] = {}
    if args.tts_hours > 0:
        st = tts_val_stream(corpus_dir, args.work, args.tts_hours)
        extra["long_tts"] = [{"file": st["file"], "seconds": st["seconds"]}]
    langs = tuple(x for x in args.dialogue.split(",") if x)
    val_langs = tuple(x for x in args.val_languages.split(",") if x)
    if langs:
        meta = json.loads((corpus_dir / "manifest.json").read_text()).get("meta", {})
        if meta.get("dialogue"):
            raise SystemExit("this corpus trains on the dialogue: read its val levels with `pqlr eval` instead")
        d = dialogue_streams(args.work, langs)
        extra["dialogue"] = [{"file": s["file"], "seconds": s["seconds"], "language": s["language"]}
                             for s in d["streams"]]
        if not args.no_line:
            extra["dialogue_line"] = [{"file": s["file"], "seconds": s["seconds"], "channel": "line"}
                                      for s in d["streams"]]
    sets = {"protocol (TTS + people)": ("protocol_tts", "protocol_people"),
            "TTS stream alone": ("protocol_tts",), "people alone": ("protocol_people",)}
    if "long_tts" in extra:
        sets[f"protocol + {args.tts_hours:g} h TTS"] = ("protocol_tts", "protocol_people", "long_tts")
    if "dialogue" in extra:
        sets["protocol + dialogue"] = ("protocol_tts", "protocol_people", "dialogue")
        if not args.no_line:
            sets["protocol + dialogue (line)"] = ("protocol_tts", "protocol_people", "dialogue_line")
            sets["dialogue (line) alone"] = ("dialogue_line",)
        if val_langs:
            lv = "+".join(val_langs)
            sets[f"protocol + {lv} dialogue"] = ("protocol_tts", "protocol_people", "dialogue_val")
            if not args.no_line:
                sets[f"protocol + {lv} dialogue (line)"] = ("protocol_tts", "protocol_people", "dialogue_val_line")
    rows: dict = {}
    ends = None
    for i, name in enumerate(args.names):
        ck = args.work / "attempts" / name / "student.pt"
        if not ck.is_file():
            raise SystemExit(f"{ck}: no student (train it with attempt.py --name {name})")
        print(f"[{i + 1}/{len(args.names)}] {name}", file=sys.stderr, flush=True)
        p = read(ck, corpus_dir, args.work, args.score, span, extra, args.span_from, args.phoneme_repeats == "yes")
        if val_langs and "dialogue" in extra:
            p = by_language(p, extra["dialogue"], val_langs)
            p["val_languages"] = val_langs
        r = {"hours": p["hours"], "top_val_peaks": top_peaks(p), "best_on_test": best_on_test(p), "sets": {}}
        if "dialogue_test" in p:
            r["best_on_test_and_conversation"] = best_on_test(p, conversation=True)
            r["det"] = det_by_negatives(p)
        for label, parts in sets.items():
            op = choose(p, parts)
            r["sets"][label] = {**on_test(p, op["threshold"]), "val_hours": op["val_hours"],
                                "val_false_accepts": op["val_false_accepts"],
                                "val_allowed": op["val_allowed_false_accepts"], "val_frr": op["val_frr"]}
        if args.where and "dialogue_test" in p:
            ends = ends or line_ends(tuple(st["language"] for st in extra["dialogue"]))
            r["where"] = {k: where_in_lines(p, extra["dialogue"], ends, o["threshold"])
                          for k, o in (("protocol", r["sets"]["protocol (TTS + people)"]),
                                       ("test's best", r["best_on_test"]))}
        rows[name] = r
    first = next(iter(rows.values()))
    print(f"\n{len(rows)} students, score {args.score} over {args.span} s; the threshold each set of validation "
          f"negatives chooses (≤ {TARGET:g} FA/h on them, {E.DETECTOR_SMOOTHING} windows) and what it gives on the "
          f"test (real speech: {first['hours']['real']:.2f} h)\n")
    dia = "dialogue" in first["hours"]
    held = "dialogue_test" in first["hours"]
    print("| validation negatives | hours | allowed | unseen FRR, mean (per student) | held-out FRR | real false accepts "
          "(per student) |" + (" all dialogue's false accepts, full band |" if dia else "") +
          (f" held-out languages' dialogue ({first['hours']['dialogue_test']:.2f} h, full band) |" if held else ""))
    print("|---|---|---|---|---|---|" + ("---|" if dia else "") + ("---|" if held else ""))
    bests = {"the test's best (no real false accept)": "best_on_test"}
    if held:
        bests["the test's best with the conversation (none on either)"] = "best_on_test_and_conversation"
    for label in [*sets, *bests]:
        got = [r[bests[label]] if label in bests else r["sets"][label] for r in rows.values()]
        hrs = "—" if label.startswith("the test") else f"{got[0]['val_hours']:.2f}"
        allowed = "—" if label.startswith("the test") else str(got[0]["val_allowed"])
        un = [g["frr_unseen"] * 100 for g in got]
        print(f"| {label} | {hrs} | {allowed} | {statistics.mean(un):.1f} % ({' / '.join(f'{x:.1f}' for x in un)}) | "
              f"{statistics.mean(g['frr_test'] * 100 for g in got):.1f} % | "
              f"{' / '.join(str(g['false_accepts']) for g in got)} |" +
              (f" {' / '.join(str(g['dialogue_false_accepts']) for g in got)} |" if dia else "") +
              (f" {' / '.join(str(g['heldout_dialogue_false_accepts']) for g in got)} |" if held else ""))
    if held:
        print("\n| negatives | unseen FRR at ≤ " + " / ".join(f"{x:g}" for x in LIMITS) + " FA/h, mean | per student at "
              f"≤ {LIMITS[0]:g} | at no false accept, mean (per student) |\n|---|---|---|---|")
        for name, d in first["det"].items():
            per = [r["det"][name] for r in rows.values()]
            at = [statistics.mean(x["frr_at"][str(v)] * 100 for x in per) for v in LIMITS]
            none = [x["frr_at_none"] * 100 for x in per]
            first_limit = [x["frr_at"][str(LIMITS[0])] * 100 for x in per]
            print(f"| {name} ({d['hours']:.2f} h) | {' / '.join(f'{v:.1f}' for v in at)} % | "
                  f"{', '.join(f'{v:.1f}' for v in first_limit)} | "
                  f"{statistics.mean(none):.1f} % ({' / '.join(f'{v:.1f}' for v in none)}) |")
    if args.where and held:
        print("\nwhere the held-out conversation fires (window end, seconds into its line; the line's length):")
        for name, r in rows.items():
            for k, w in r["where"].items():
                into = np.array([a for a, _ in w])
                print(f"  {name} at {k}: {len(w)} triggers" + (
                    f", median {np.median(into):.2f} s into the line, {np.mean(into <= 1.5) * 100:.0f} % within its "
                    f"first 1.5 s; lines of median {np.median([b for _, b in w]):.2f} s" if w else ""))
    print("\nhighest smoothed peaks of each validation stream set, per student:")
    for name, r in rows.items():
        print(f"  {name}: " + "; ".join(f"{k} {v}" for k, v in r["top_val_peaks"].items()))
    if args.json:
        args.json.write_text(json.dumps({"command": "python benchmarks/quality/val_negatives.py " + " ".join(sys.argv[1:]),
                                         "students": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
