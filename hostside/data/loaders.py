"""Real-data loaders: the Google Speech Commands v2 folder layout, and a generic <class>/<file>.wav layout.

Speech Commands v2: <root>/<word>/<speaker>_nohash_<n>.wav, validation_list.txt and testing_list.txt
(paths relative to root; everything else trains), _background_noise_/*.wav. Tasks:
- `mlperf12` (the MLPerf Tiny KWS mapping): yes no up down left right on off stop go, every other word
  → unknown, and silence: 1 s windows cut from _background_noise_ (seeded offsets), in each split;
- `all`: every word folder is a class.
Generic: each folder under root (not starting with '_' or '.') is a class; a speaker is the part of the
file name before '_nohash_' (else the whole stem); speakers are split by hash, so none is in two splits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import PqlrError
from .corpus import CLIP_SAMPLES, SAMPLE_RATE, Clip, Corpus, read_wav

MLPERF12 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "unknown", "silence")


def _cache_dir(root: Path) -> Path:
    return Path("build/cache") / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]


def _speaker(path: Path) -> str:
    stem = path.stem
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem


def _hash_split(key: str, fractions=(0.8, 0.1, 0.1)) -> str:
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") / 2**64
    return "train" if h < fractions[0] else ("val" if h < fractions[0] + fractions[1] else "test")


def _silence_clips(root: Path, n_per_split: dict[str, int], seed: int = 0) -> list[Clip]:
    noise_dir = root / "_background_noise_"
    files = sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    if not files:
        return []
    rng = np.random.default_rng(seed)
    clips = []
    for split, n in n_per_split.items():
        for _ in range(n):
            f = files[int(rng.integers(0, len(files)))]
            x, sr = read_wav(f)
            span = int(round(sr * CLIP_SAMPLES / SAMPLE_RATE))
            off = int(rng.integers(0, max(1, len(x) - span + 1)))
            clips.append(Clip(file=str(f.relative_to(root)), label="silence", split=split, voice=f.stem,
                              engine="none", offset=off, noise=f.stem))
    return clips


def load_speech_commands(root: Path, task: str = "mlperf12", silence_fraction: float = 0.1) -> Corpus:
    root = Path(root)
    def read_list(name):
        p = root / name
        return {line.strip() for line in p.read_text().splitlines() if line.strip()} if p.is_file() else set()
    val, test = read_list("validation_list.txt"), read_list("testing_list.txt")
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if not words:
        raise PqlrError(f"{root}: no word folders found (expected <root>/<word>/*.wav)")
    clips = []
    for w in words:
        for f in sorted((root / w).glob("*.wav")):
            rel = f"{w}/{f.name}"
            split = "val" if rel in val else ("test" if rel in test else "train")
            label = w if task == "all" or w in MLPERF12[:10] else "unknown"
            clips.append(Clip(file=rel, label=label, split=split, voice=_speaker(f), text=w, engine="human"))
    if task == "mlperf12":
        classes = MLPERF12
        counts = {s: max(1, int(round(silence_fraction * sum(c.split == s for c in clips)))) for s in ("train", "val", "test")}
        clips += _silence_clips(root, counts)
    elif task == "all":
        classes = tuple(words)
    else:
        raise PqlrError(f"unknown Speech Commands task {task!r}; known: mlperf12, all")
    missing = sorted({c.label for c in clips} - set(classes))
    if missing:
        raise PqlrError(f"{root}: labels {missing} are not classes of task {task}")
    return Corpus(root=root, clips=clips, classes=classes, task=f"speech_commands_{task}",
                  meta={"layout": "speech_commands_v2"}, cache_dir=_cache_dir(root))


def load_folder(root: Path) -> Corpus:
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    if not classes:
        raise PqlrError(f"{root}: not a corpus (no manifest.json, no Speech Commands lists, no <class>/ folders)")
    clips = []
    for c in classes:
        for f in sorted((root / c).rglob("*.wav")):
            spk = _speaker(f)
            clips.append(Clip(file=str(f.relative_to(root)), label=c, split=_hash_split(spk), voice=spk,
                              engine="human"))
    if not clips:
        raise PqlrError(f"{root}: the class folders hold no .wav files")
    return Corpus(root=root, clips=clips, classes=tuple(classes), task="folder", meta={"layout": "folder"},
                  cache_dir=_cache_dir(root))
