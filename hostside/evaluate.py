"""Evaluation: accuracy per split and per speech engine, confusion matrices, and for the wake-word task
the streaming metrics engines are compared by — false rejection rate on positive clips and false accepts
per hour on a real-speech stream — with a DET curve.

Streaming protocol (stated in every result): 1 s windows every `stride_ms` over the stream (features
computed once per 20 ms hop and sliced, which equals per-window features exactly), the wake-word
posterior smoothed by a moving average over `smooth` windows, a trigger when it reaches `threshold`,
and no new trigger within `refractory_s` of the last. A positive clip is accepted when its posterior
reaches the threshold. Every trigger on the stream is a false accept (it holds no wake phrase).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data.corpus import Corpus, read_wav, resample
from .data.features import FrontEnd, dct_matrix, mel_filterbank


def stream_features(audio: np.ndarray, fe: FrontEnd, stride_ms: float) -> np.ndarray:
    """[n_windows, n_frames, n_features]: 1 s windows every stride_ms (a multiple of the hop)."""
    hop = fe.hop_length
    stride = int(round(stride_ms * fe.sample_rate / 1000 / hop))
    if stride < 1 or abs(stride * hop - stride_ms * fe.sample_rate / 1000) > 1e-6:
        from .errors import PqlrError
        raise PqlrError(f"stride {stride_ms} ms must be a multiple of the {1000 * hop / fe.sample_rate:g} ms hop")
    n_frames_total = 1 + (len(audio) - fe.frame_length) // hop
    if n_frames_total < fe.n_frames:
        return np.zeros((0, *fe.shape), np.float32)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fe.frame_length) / fe.frame_length)
    fb = mel_filterbank(fe).T
    dct = dct_matrix(fe.n_mels, fe.n_mfcc).T if fe.kind == "mfcc" else None
    frames = []
    for s in range(0, n_frames_total, 4096):                    # in chunks, to bound memory
        idx = (np.arange(s, min(s + 4096, n_frames_total))[:, None] * hop + np.arange(fe.frame_length)[None, :])
        p = np.abs(np.fft.rfft(audio[idx] * window, n=fe.n_fft, axis=1)) ** 2
        f = np.log(p @ fb + fe.log_floor)
        frames.append(f @ dct if dct is not None else f)
    frames = np.concatenate(frames).astype(np.float32)
    starts = np.arange(0, n_frames_total - fe.n_frames + 1, stride)
    return np.stack([frames[s: s + fe.n_frames] for s in starts])


def count_triggers(post: np.ndarray, threshold: float, smooth: int, stride_ms: float, refractory_s: float) -> int:
    if len(post) == 0:
        return 0
    sm = np.convolve(post, np.ones(smooth) / smooth, mode="full")[: len(post)] if smooth > 1 else post
    gap = max(1, int(round(refractory_s * 1000 / stride_ms)))
    count, last = 0, -10**9
    for i in np.nonzero(sm >= threshold)[0]:
        if i - last >= gap:
            count += 1
            last = i
    return count


def confusion(y: np.ndarray, pred: np.ndarray, n: int) -> list[list[int]]:
    m = np.zeros((n, n), dtype=int)
    for a, b in zip(y, pred):
        m[a, b] += 1
    return m.tolist()


def evaluate(model, corpus: Corpus, fe: FrontEnd, predict_fn, threshold: float = 0.8, stride_ms: float = 100.0,
             smooth: int = 3, refractory_s: float = 1.0, out: Path | None = None, name: str = "model") -> dict:
    """predict_fn(model, features [N, T, F]) → posteriors [N, C]."""
    from .data.features import corpus_features
    x, y = corpus_features(corpus, fe)
    splits = np.array([c.split for c in corpus.clips])
    engines = np.array([c.engine for c in corpus.clips])
    post = predict_fn(model, x) if len(x) else np.zeros((0, len(corpus.classes)))
    pred = post.argmax(1) if len(post) else np.zeros(0, int)
    res: dict = {"model": name, "classes": list(corpus.classes), "task": corpus.task, "splits": {}, "engines": {}}
    for s in ("train", "val", "test", "unseen"):
        m = splits == s
        if m.any():
            res["splits"][s] = {"n": int(m.sum()), "accuracy": float((pred[m] == y[m]).mean()),
                                "confusion": confusion(y[m], pred[m], len(corpus.classes))}
    for e in sorted(set(engines)):
        m = (engines == e) & (splits != "train")
        if m.any():
            res["engines"][str(e)] = {"n": int(m.sum()), "accuracy": float((pred[m] == y[m]).mean())}
    if corpus.task == "wakeword":
        res["wakeword"] = _wakeword_metrics(model, corpus, fe, predict_fn, post, y, splits, threshold, stride_ms,
                                            smooth, refractory_s, out, name)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(res, indent=1))
    return res


def _wakeword_metrics(model, corpus, fe, predict_fn, post, y, splits, threshold, stride_ms, smooth, refractory_s,
                      out, name) -> dict:
    pos = 0                                       # the wake word is class 0
    wm: dict = {"positive_class": corpus.classes[pos], "threshold": threshold, "stride_ms": stride_ms,
                "smoothing_windows": smooth, "refractory_s": refractory_s}
    for s in ("test", "unseen"):
        m = (splits == s) & (y == pos)
        if m.any():
            wm[f"false_rejection_rate_{s}"] = float((post[m, pos] < threshold).mean())
    fa = corpus.meta.get("fa_stream") or {}
    stream_post = None
    if fa.get("file"):
        audio, sr = read_wav(corpus.root / fa["file"])
        audio = resample(audio, sr, fe.sample_rate)
        feats = stream_features(audio, fe, stride_ms)
        stream_post = predict_fn(model, feats)[:, pos] if len(feats) else np.zeros(0)
        hours = len(audio) / fe.sample_rate / 3600
        n_fa = count_triggers(stream_post, threshold, smooth, stride_ms, refractory_s)
        wm.update({"false_accepts": n_fa, "stream_hours": hours, "false_accepts_per_hour": n_fa / hours,
                   "stream_sources": fa.get("sources", {})})
    else:
        wm.update({"false_accepts_per_hour": None, "reason": fa.get("reason", "the corpus has no real-speech stream")})
    # DET curve: FRR (unseen engine, else test) against false accepts per hour, over thresholds
    split_for_det = "unseen" if ((splits == "unseen") & (y == pos)).any() else "test"
    m = (splits == split_for_det) & (y == pos)
    if m.any() and stream_post is not None:
        ths = np.concatenate([np.linspace(0.05, 0.95, 19), [0.97, 0.98, 0.99, 0.995, 0.999]])
        det = [{"threshold": float(t), "frr": float((post[m, pos] < t).mean()),
                "fa_per_hour": count_triggers(stream_post, t, smooth, stride_ms, refractory_s) / wm["stream_hours"]}
               for t in ths]
        wm["det"] = {"positives": split_for_det, "points": det}
        if out is not None:
            wm["det"]["png"] = _plot_det(det, Path(out) / "det.png", name, split_for_det)
    return wm


def _plot_det(points: list[dict], path: Path, name: str, split: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fa = [max(p["fa_per_hour"], 0.01) for p in points]
    frr = [100 * p["frr"] for p in points]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(fa, frr, marker="o", ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour (real speech; 0 drawn at 0.01)")
    ax.set_ylabel(f"false rejection rate, % ({split} positives)")
    ax.set_title(f"DET: {name}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
