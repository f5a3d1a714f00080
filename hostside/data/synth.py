"""Synthetic keyword-spotting corpora, honest about what they are.

Tasks:
- `wakeword`: classes <phrase as label> (e.g. hey_kimi), unknown (other words, including near-misses), silence.
- `commands12`: the MLPerf Tiny / Speech Commands 12 classes (yes no up down left right on off stop go
  unknown silence), synthetic — for comparison with that setup's geometry, not its numbers.

Speech comes from espeak-ng (accents × voice variants), flite and festival (when installed), with speed,
pitch and amplitude jitter, mixed with background noise at a random SNR. Splits are by voice: a voice
is in exactly one of train / val / test. Test clips are mixed with held-out noise sources. The
`unseen` split is spoken by piper (a neural engine no model ever trains or selects on). A real-speech
stream (Debian's asterisk prompts and pocketsphinx test recordings) measures false accepts per hour.

Generation is parallel, shows a progress bar, is deterministic for a seed, and is cached by config.
"""
from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import PqlrError, ToolchainMissing
from .corpus import CLIP_SAMPLES, SAMPLE_RATE, Clip, Corpus, load_corpus, resample, save_corpus, write_wav
from .engines import ENGINES
from .noise import mix, noise_clip, noise_sources

UNKNOWN_WAKEWORD = ("hey jimmy", "hey kiwi", "okay kimi", "kimono", "hi kenny", "hey kitty", "hey timmy",
                    "key me", "kimchi", "hello", "hey there", "hey", "kimi", "yes", "no", "stop", "go",
                    "kitchen", "happy", "seven", "music", "weather", "timer", "lights on", "good morning",
                    "thank you", "what time is it", "play some music", "turn it off", "ok google")
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_COMMANDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero",
                    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "forward",
                    "backward", "follow", "learn", "visual")
TASKS = ("wakeword", "commands12")


def label_of(phrase: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


@dataclass(frozen=True)
class SynthConfig:
    task: str = "wakeword"
    phrase: str = "hey kimi"
    engines: tuple[str, ...] = ("espeak-ng", "flite", "festival")   # training engines, where installed
    voices: int = 140                     # espeak-ng accent×variant voices (at most 161)
    positives_per_voice: int = 2          # per keyword class
    unknown_per_voice: int = 2
    few_voice_repeats: int = 8            # engines with few voices (flite, festival) speak this many times more
    silence_clips: int = 120
    unseen_engine: str = "piper"          # "" for none
    unseen_positives: int = 60            # per keyword class
    unseen_unknown: int = 60
    fa_stream_seconds: float = -1.0       # real-speech stream: -1 all available, 0 none
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    snr_db: tuple[float, float] = (5.0, 30.0)
    workers: int = 4

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> None:
        if self.task not in TASKS:
            raise PqlrError(f"unknown task {self.task!r}; known: {', '.join(TASKS)}")
        if not label_of(self.phrase):
            raise PqlrError(f"the phrase {self.phrase!r} has no letters")
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown:
            raise PqlrError(f"unknown engine(s) {unknown}; known: {', '.join(ENGINES)}")
        if self.unseen_engine and self.unseen_engine in self.engines:
            raise PqlrError(f"the unseen engine {self.unseen_engine!r} cannot also be a training engine")


def task_classes(cfg: SynthConfig) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]]:
    """(classes, {keyword label: texts}, unknown texts)."""
    if cfg.task == "wakeword":
        lab = label_of(cfg.phrase)
        unknown = tuple(u for u in UNKNOWN_WAKEWORD if label_of(u) != lab)
        return (lab, "unknown", "silence"), {lab: (cfg.phrase,)}, unknown
    return COMMANDS + ("unknown", "silence"), {w: (w,) for w in COMMANDS}, UNKNOWN_COMMANDS


def split_group(engine: str, voice: str) -> str:
    """Voices that are the same speaker share a split (flite's kal and kal16)."""
    return f"{engine}:{re.sub(r'[0-9]+$', '', voice) if engine == 'flite' else voice}"


def voice_split(group: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """A voice's split is a pure function of its name and the seed, so no voice lands in two splits."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "little") / 2**64
    if h < fractions[0]:
        return "train"
    return "val" if h < fractions[0] + fractions[1] else "test"


def _plan_jobs(cfg: SynthConfig) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    classes, keywords, unknown = task_classes(cfg)
    jobs: list[dict] = []

    def speech_jobs(engine: str, voice: str, split: str, n_pos: int, n_unk: int) -> None:
        for lab, texts in keywords.items():
            for _ in range(n_pos):
                jobs.append(dict(label=lab, text=texts[int(rng.integers(0, len(texts)))], voice=voice,
                                 engine=engine, split=split))
        for _ in range(n_unk):
            jobs.append(dict(label="unknown", text=unknown[int(rng.integers(0, len(unknown)))], voice=voice,
                             engine=engine, split=split))

    for name in cfg.engines:
        eng = ENGINES[name]
        if not eng.available():
            if name == "espeak-ng":
                raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)")
            continue
        voices = eng.voices()
        if name == "espeak-ng":
            voices = [voices[i] for i in rng.permutation(len(voices))[: cfg.voices]]
            rep = 1
        else:
            rep = cfg.few_voice_repeats
        for v in voices:
            split = voice_split(split_group(name, v), cfg.seed, cfg.split_fractions)
            speech_jobs(name, v, split, cfg.positives_per_voice * rep, cfg.unknown_per_voice * rep)
    if cfg.unseen_engine:
        eng = ENGINES[cfg.unseen_engine]
        if eng.available():
            for v in eng.voices():
                speech_jobs(eng.name, v, "unseen", cfg.unseen_positives, cfg.unseen_unknown)
    for i in range(cfg.silence_clips):
        jobs.append(dict(label="silence", text="", voice=f"noise{i}", engine="none",
                         split=voice_split(f"noise{i}", cfg.seed, cfg.split_fractions)))
    for j, job in enumerate(jobs):
        job["index"] = j
        job["seed"] = int(rng.integers(0, 2**31))
    return jobs


def place(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim leading/trailing silence and place the utterance at a random offset in a 1 s window."""
    env = np.abs(speech)
    idx = np.nonzero(env > 0.02 * (env.max() + 1e-9))[0]
    if len(idx):
        speech = speech[idx[0]: idx[-1] + 1]
    if len(speech) > CLIP_SAMPLES:
        start = (len(speech) - CLIP_SAMPLES) // 2
        speech = speech[start: start + CLIP_SAMPLES]
    out = np.zeros(CLIP_SAMPLES)
    off = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    out[off: off + len(speech)] = speech
    return out


def _render(job: dict, cfg: SynthConfig, out_dir: Path, pools: dict) -> Clip:
    rng = np.random.default_rng(job["seed"])
    pool = pools["test" if job["split"] in ("test", "unseen") else "train"]
    src = pool[int(rng.integers(0, len(pool)))]
    if job["label"] == "silence":
        level = rng.choice([0.0005, 0.005, 0.02, 0.08])
        sig = noise_clip(src, rng) * level * rng.uniform(0.5, 1.5)
    else:
        audio, sr = ENGINES[job["engine"]].speak(job["text"], job["voice"], rng)
        sig = mix(place(resample(audio, sr, SAMPLE_RATE), rng), noise_clip(src, rng), rng.uniform(*cfg.snr_db))
    name = f"clips/{job['index']:06d}_{job['label']}.wav"
    write_wav(out_dir / name, sig)
    return Clip(file=name, label=job["label"], split=job["split"], voice=job["voice"], text=job["text"],
                engine=job["engine"], noise=src.id)


def synth_corpus(out_dir: Path, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> Corpus:
    """Generate (or reuse, when the same config was generated there before) the corpus in out_dir."""
    cfg.validate()
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text()).get("meta", {})
        if meta.get("config_key") == cfg.key():
            return load_corpus(out_dir)
    jobs = _plan_jobs(cfg)
    srcs = noise_sources()
    pools = {p: [s for s in srcs if s.pool == p] for p in ("train", "test")}
    clips: list[Clip] = [None] * len(jobs)  # type: ignore[list-item]
    from ..progress import progress_bar
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    with progress_bar("synthesising corpus", len(jobs), enabled=progress) as advance, \
            ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        for job, clip in zip(jobs, pool.map(lambda j: _render(j, cfg, out_dir, pools), jobs)):
            clips[job["index"]] = clip
            advance()
    classes, _, _ = task_classes(cfg)
    meta = {"config": asdict(cfg), "config_key": cfg.key(), "sample_rate": SAMPLE_RATE,
            "engines_used": sorted({c.engine for c in clips}),
            "noise_pools": {k: [s.id for s in v] for k, v in pools.items()},
            "note": "synthetic speech (TTS engines) mixed with noise; splits by voice; the 'unseen' split is "
                    "an engine never used for training or model selection"}
    if cfg.fa_stream_seconds != 0:
        from .realspeech import build_stream
        meta["fa_stream"] = build_stream(out_dir / "fa_stream.wav",
                                         None if cfg.fa_stream_seconds < 0 else cfg.fa_stream_seconds)
    corpus = Corpus(root=out_dir, clips=clips, classes=classes, task=cfg.task, meta=meta)
    save_corpus(corpus)
    return corpus


__all__ = ["SynthConfig", "synth_corpus", "load_corpus", "voice_split", "TASKS"]
