"""Synthetic wake-word corpus from espeak-ng: positives, other words, and background noise,
split by voice (a voice never appears in two splits). Deterministic for a seed, parallel, cached.

Every clip is 1 s of 16 kHz mono int16, written as WAV with the standard library's `wave`.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PqlrError, ToolchainMissing

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE
CLASSES = ("hey_kimi", "unknown", "silence")

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "adam", "Andy", "david", "edward", "john", "linda", "max", "paul", "robert", "steph", "zac")
# Words that are not the wake word, including near-misses that a sloppy detector would accept.
UNKNOWN_WORDS = ("hey jimmy", "hey kiwi", "okay kimi", "kimono", "hi kenny", "hello", "yes", "no",
                 "stop", "go", "left", "right", "kitchen", "hey there", "key me", "kimchi", "happy",
                 "seven", "music", "weather", "timer", "lights on", "good morning", "thank you")


@dataclass(frozen=True)
class SynthConfig:
    phrase: str = "hey kimi"
    voices: int = 140                # (accent, variant) pairs used, at most len(ACCENTS)*len(VARIANTS)
    positives_per_voice: int = 2
    unknown_per_voice: int = 2
    silence_clips: int = 120
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)   # train, val, test by voice
    snr_db: tuple[float, float] = (10.0, 30.0)
    workers: int = 4

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Clip:
    file: str
    label: str
    split: str
    voice: str
    text: str
    engine: str = "espeak-ng"


@dataclass
class Corpus:
    root: Path
    clips: list[Clip] = field(default_factory=list)
    classes: tuple[str, ...] = CLASSES

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]


def all_voices() -> list[str]:
    return [f"{a}+{v}" for a in ACCENTS for v in VARIANTS]


def voice_split(voice: str, seed: int, fractions: tuple[float, float, float]) -> str:
    """A voice's split is a pure function of its name and the seed, so no voice lands in two splits."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{voice}".encode()).digest()[:8], "little") / 2**64
    if h < fractions[0]:
        return "train"
    if h < fractions[0] + fractions[1]:
        return "val"
    return "test"


def espeak_available() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ToolchainMissing("espeak-ng is not installed: run `sudo apt-get install espeak-ng` "
                               "(or `make deps`), then try again")
    return exe


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling by zero-padding/truncating the spectrum (exact for periodic signals)."""
    if sr_in == sr_out:
        return x.astype(np.float64)
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = n_out // 2 + 1
    out_spec = np.zeros(keep, dtype=complex)
    m = min(keep, len(spec))
    out_spec[:m] = spec[:m]
    return np.fft.irfft(out_spec, n_out) * (n_out / len(x))


def read_wav(data: bytes | Path) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit WAV; returns float samples in [-1, 1) and the sample rate."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else open(data, "rb")
    with src, wave.open(src, "rb") as w:
        if w.getsampwidth() != 2:
            raise PqlrError(f"only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
        raw = w.readframes(w.getnframes())
        ch = w.getnchannels()
        sr = w.getframerate()
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, sr


def write_wav(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def speak(text: str, voice: str, speed: int, pitch: int, amplitude: int) -> np.ndarray:
    exe = espeak_available()
    proc = subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude),
                           "--stdout", text], capture_output=True, timeout=30)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise PqlrError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
    x, sr = read_wav(proc.stdout)
    return resample(x, sr, SAMPLE_RATE)


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Generated background noise: white, pink (1/f) or brown (1/f²), unit RMS."""
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec = spec / (np.sqrt(f) if kind == "pink" else f)
        x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def place(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trim leading/trailing silence and place the utterance at a random offset in a 1 s window."""
    env = np.abs(speech)
    thr = 0.02 * (env.max() + 1e-9)
    idx = np.nonzero(env > thr)[0]
    if len(idx):
        speech = speech[idx[0]: idx[-1] + 1]
    if len(speech) > CLIP_SAMPLES:
        start = (len(speech) - CLIP_SAMPLES) // 2
        speech = speech[start: start + CLIP_SAMPLES]
    out = np.zeros(CLIP_SAMPLES)
    off = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    out[off: off + len(speech)] = speech
    return out


def mix(signal: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    kind = ("white", "pink", "brown")[int(rng.integers(0, 3))]
    nz = noise(kind, len(signal), rng)
    rms = np.sqrt(np.mean(signal ** 2))
    snr = rng.uniform(*snr_db)
    out = signal + nz * rms / (10 ** (snr / 20))
    peak = np.abs(out).max()
    return out * (0.9 / peak) if peak > 0.99 else out


def _plan_jobs(cfg: SynthConfig) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    voices = all_voices()
    rng.shuffle(voices)
    voices = voices[: cfg.voices]
    jobs: list[dict] = []
    for v in voices:
        split = voice_split(v, cfg.seed, cfg.split_fractions)
        for i in range(cfg.positives_per_voice):
            jobs.append(dict(label="hey_kimi", text=cfg.phrase, voice=v, split=split))
        for i in range(cfg.unknown_per_voice):
            jobs.append(dict(label="unknown", text=UNKNOWN_WORDS[int(rng.integers(0, len(UNKNOWN_WORDS)))],
                             voice=v, split=split))
    # silence: noise only; assigned to splits by its own index, in the same proportions
    for i in range(cfg.silence_clips):
        jobs.append(dict(label="silence", text="", voice=f"noise{i}",
                         split=voice_split(f"noise{i}", cfg.seed, cfg.split_fractions)))
    for j, job in enumerate(jobs):
        job["index"] = j
        job["seed"] = int(rng.integers(0, 2**31))
    return jobs


def _render(job: dict, cfg: SynthConfig, out_dir: Path) -> Clip:
    rng = np.random.default_rng(job["seed"])
    if job["label"] == "silence":
        sig = noise(("white", "pink", "brown")[job["index"] % 3], CLIP_SAMPLES, rng) * rng.uniform(0.001, 0.05)
        engine = "none"
    else:
        speech = speak(job["text"], job["voice"], speed=int(rng.integers(130, 200)),
                       pitch=int(rng.integers(30, 70)), amplitude=int(rng.integers(80, 160)))
        sig = mix(place(speech, rng), rng, cfg.snr_db)
        engine = "espeak-ng"
    name = f"{job['index']:05d}_{job['label']}.wav"
    write_wav(out_dir / "clips" / name, sig)
    return Clip(file=f"clips/{name}", label=job["label"], split=job["split"], voice=job["voice"],
                text=job["text"], engine=engine)


def synth_corpus(out_dir: Path, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> Corpus:
    """Generate (or reuse, if the same config was generated there before) the corpus in out_dir."""
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        if meta.get("config_key") == cfg.key():
            return load_corpus(out_dir)
    espeak_available()
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    jobs = _plan_jobs(cfg)
    clips: list[Clip] = [None] * len(jobs)  # type: ignore[list-item]
    from ..progress import progress_bar
    with progress_bar("synthesising corpus", len(jobs), enabled=progress) as advance, \
            ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        for job, clip in zip(jobs, pool.map(lambda j: _render(j, cfg, out_dir), jobs)):
            clips[job["index"]] = clip
            advance()
    meta = {"config": asdict(cfg), "config_key": cfg.key(), "classes": list(CLASSES),
            "sample_rate": SAMPLE_RATE, "clips": [asdict(c) for c in clips],
            "note": "synthetic speech from espeak-ng mixed with generated noise; splits by voice"}
    manifest.write_text(json.dumps(meta, indent=1))
    return load_corpus(out_dir)


def load_corpus(root: Path) -> Corpus:
    root = Path(root)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise PqlrError(f"no corpus at {root} (manifest.json missing): run `pqlr data synth --out {root}`")
    meta = json.loads(manifest.read_text())
    return Corpus(root=root, clips=[Clip(**c) for c in meta["clips"]], classes=tuple(meta["classes"]))
