"""Hard-negative mining: fine-tune a trained student on the moments of long real speech that fire it.

Random cuts of conversation as negatives teach a student to say "unknown" to speech in general, wake words
included (attempts.md §8). Production wake-word systems instead run the detector over hours of speech that
never contains the phrase and train on what it fires on. This does that with the speech this machine has that
no test stream uses: Fish Fillets NG's dialogue (Czech, Dutch, English actors in conversation), the training
game levels only — the level split is the corpus's own (`synth.dialogue_splits`, by its seed), so the validation
levels stay unseen, and the test streams (asterisk's prompts, pocketsphinx) are never read.

    1. the student's wake-word posterior on every 1 s window of each training-level recording, every stride_ms;
    2. its peaks, each suppressing its neighbours within the detector's refractory period (one peak: one
       would-be false accept), highest first, those at or above `floor`, at most `negatives` of them;
    3. the windows under those peaks, labelled unknown, added to the training split, and `epochs` of
       fine-tuning from the trained weights (its TrainConfig, a lower learning rate), selected on validation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data.features import FrontEnd
from .errors import PqlrError, ToolchainMissing


@dataclass(frozen=True)
class Mined:
    audio: np.ndarray           # int16 [n, clip_samples]: the windows the student fired on
    scores: np.ndarray          # their posteriors (the peak's, unsmoothed)
    sources: list[str]          # the recording (source voice / level) of each
    hours: float                # how much speech was searched
    windows: int                # how many windows were scored
    above_floor: int            # how many separate peaks reached the floor (before the cap)


def dialogue_recordings(corpus_seed: int, max_hours: float | None = None,
                        split: str = "train") -> list[tuple[str, np.ndarray]]:
    """(name, 16 kHz float audio) of the dialogue of every game level in `split` ("train": what mining reads; "val":
    the validation levels, which it never reads), one recording per language and level; max_hours caps the speech read, shared
    evenly between the languages (None: all of it)."""
    from .data.corpus import SAMPLE_RATE, read_audio, resample
    from .data.realspeech import DIALOGUE_INSTALL, dialogue_sources
    from .data.synth import SynthConfig, _dialogue_level, dialogue_splits
    srcs = dialogue_sources()
    if not srcs:
        raise ToolchainMissing(f"mining needs Fish Fillets NG's dialogue: `{DIALOGUE_INSTALL}` (or `make deps`)")
    levels = dialogue_splits(SynthConfig(seed=corpus_seed), srcs)
    out = []
    cap = None if max_hours is None else max_hours * 3600 * SAMPLE_RATE / len(srcs)
    for src in srcs:
        by_level: dict[str, list[np.ndarray]] = {}
        taken = 0
        for f in src.files:
            lv = _dialogue_level(f)
            if levels[lv] != split or (cap is not None and taken >= cap):
                continue
            try:
                x, sr = read_audio(f)
            except Exception:
                continue                        # an undecodable file is skipped, as in the test streams
            by_level.setdefault(lv, []).append(resample(x, sr, SAMPLE_RATE).astype(np.float32))
            taken += len(by_level[lv][-1])
        out += [(f"{src.voice}/{lv}", np.concatenate(parts)) for lv, parts in sorted(by_level.items())]
    return out


def peaks(post: np.ndarray, gap: int) -> np.ndarray:
    """Indices of the separate peaks of a posterior stream, highest first: greedily the highest window not yet
    suppressed, which suppresses the windows within `gap` of it (any window can be one, not only a local maximum
    as in evaluate.event_peaks, so that a mined window is where the posterior is highest)."""
    taken = np.zeros(len(post), dtype=bool)
    out = []
    for i in np.argsort(-post, kind="stable"):
        if not taken[i]:
            out.append(i)
            taken[max(0, i - gap + 1): i + gap] = True
    return np.array(out, dtype=np.int64)


def mine(model, fe: FrontEnd, recordings: list[tuple[str, np.ndarray]], negatives: int, floor: float,
         stride_ms: float = 100.0, refractory_s: float = 1.0, pos: int = 0, progress: bool = True) -> Mined:
    """The windows of `recordings` the model fires on most (at most `negatives`, posterior ≥ floor)."""
    from .evaluate import stream_posteriors
    from .progress import progress_bar
    from .train import predict
    stride = int(round(stride_ms * fe.sample_rate / 1000))
    gap = max(1, int(round(refractory_s * 1000 / stride_ms)))
    cands, windows = [], 0                      # (score, recording, window index)
    with progress_bar("mining", len(recordings), enabled=progress) as advance:
        for r, (_, x) in enumerate(recordings):
            post = stream_posteriors(model, predict, x, fe, stride_ms, pos=pos)
            windows += len(post)
            cands += [(float(post[i]), r, int(i)) for i in peaks(post, gap) if post[i] >= floor]
            advance()
    cands.sort(key=lambda c: -c[0])
    kept = cands[:negatives]
    audio = np.stack([np.clip(np.round(recordings[r][1][i * stride: i * stride + fe.clip_samples] * 32767), -32768,
                              32767).astype(np.int16) for _, r, i in kept]) if kept \
        else np.zeros((0, fe.clip_samples), np.int16)
    hours = sum(len(x) for _, x in recordings) / fe.sample_rate / 3600
    return Mined(audio, np.array([c[0] for c in kept]), [recordings[r][0] for _, r, _ in kept], hours, windows,
                 len(cands))


def finetune(checkpoint: Path, corpus_dir: Path, out: Path, negatives: int = 1000, floor: float = 0.5,
             epochs: int = 5, lr: float = 3e-4, seed: int | None = None, max_hours: float | None = None,
             repeat: int = 1, progress: bool = True) -> dict:
    """Mine a checkpoint's false accepts on the training levels' dialogue, fine-tune on them (each mined window
    `repeat` times an epoch), write `out`. negatives=0 mines nothing: the same fine-tuning without them, the
    control that says how much of a change is the mining's."""
    from .data.corpus import load_corpus, split_audio
    from .data.features import load_features
    from .data.noise import noise_bank
    from .train import TrainConfig, accuracy, load_checkpoint, save_checkpoint
    from .train import train as fit
    if negatives < 0 or epochs < 1 or repeat < 1 or not 0.0 <= floor < 1.0 or lr <= 0 or \
            (max_hours is not None and max_hours <= 0):
        raise PqlrError(f"mining: negatives ≥ 0 ({negatives}; 0: the control), epochs ({epochs}) and repeat ({repeat}) "
                        f"≥ 1, a floor in [0, 1) ({floor}), lr > 0 ({lr}), hours > 0 ({max_hours})")
    net, ck = load_checkpoint(Path(checkpoint))
    corpus = load_corpus(Path(corpus_dir))
    if list(corpus.classes) != list(ck["classes"]) or corpus.task != "wakeword":
        raise PqlrError(f"mining needs a wake-word checkpoint and its corpus; classes {ck['classes']} against "
                        f"{list(corpus.classes)} (task {corpus.task})")
    fe = FrontEnd.from_dict(ck["frontend"])
    corpus_seed = int(corpus.meta.get("config", {}).get("seed", 0))
    found = mine(net, fe, dialogue_recordings(corpus_seed, max_hours), negatives, floor, progress=progress) \
        if negatives else Mined(np.zeros((0, fe.clip_samples), np.int16), np.zeros(0), [], 0.0, 0, 0)
    if negatives and len(found.audio) == 0:
        raise PqlrError(f"the student fires on nothing at or above {floor} in {found.hours:.2f} h of training "
                        f"dialogue: nothing to mine (lower --floor)")
    _, xv, yv = load_features(Path(corpus_dir), "val", fe)
    before = accuracy(net, xv, yv)
    audio, y = split_audio(corpus)
    unknown = list(corpus.classes).index("unknown")
    extra_audio = np.repeat(found.audio, repeat, axis=0)
    audio = np.concatenate([audio, extra_audio if audio.dtype == np.int16 else extra_audio.astype(np.float32) / 32768.0])
    y = np.concatenate([y, np.full(len(extra_audio), unknown, dtype=y.dtype)])
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in ck.get("train_config", {}).items()}
    cfg = replace(TrainConfig(**base), epochs=epochs, lr=lr, seed=ck.get("seed", 0) if seed is None else seed)
    pairing = {}
    if cfg.pair_weight > 0:                 # a student trained with --pair-loss keeps it; mined windows have no voice
        from .data.pairs import corpus_partners
        partners, pairing["wake"] = corpus_partners(corpus)
        pairing["partners"] = partners + [np.zeros(0, np.int64)] * len(extra_audio)
    net, info = fit(net, fe, audio, y, xv, yv, cfg, noise_bank=noise_bank(seed=cfg.seed), progress=progress,
                    **pairing)
    per_source = dict(Counter(s.split("/")[0] for s in found.sources))
    mined = {"from": str(checkpoint), "negatives": len(found.audio), "cap": negatives, "floor": floor,
             "peaks_above_floor": found.above_floor, "hours_searched": round(found.hours, 3),
             "windows_scored": found.windows, "lowest_score": float(found.scores.min()) if len(found.scores) else None,
             "repeat": repeat,
             "by_source": per_source, "epochs": epochs, "lr": lr, "val_acc_before": before,
             "note": "Fish Fillets NG's dialogue, training game levels only (the corpus's level split)"}
    metrics = {"val_acc": accuracy(net, xv, yv)}
    extra = {k: v for k, v in ck.items() if k not in ("state_dict", "model", "kind", "config", "params")}
    extra.update(metrics=metrics, mined=mined, history=info["history"], best_val_acc=info["best_val_acc"],
                 train_config=info["train_config"], finetune_of=str(checkpoint))
    save_checkpoint(Path(out), net, ck.get("model", "dscnn"), extra)
    return {"checkpoint": str(out), "metrics": metrics, "mined": mined}
