"""Clips, corpora and audio I/O shared by the synthetic corpus and the real-data loaders."""
from __future__ import annotations

import io
import json
import os
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PqlrError

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE
CORPUS_FILE = "manifest.json"          # what makes a folder a pqlr corpus


@dataclass
class Clip:
    file: str                      # relative to the corpus root
    label: str
    split: str                     # train | val | test | unseen (an engine never used for training)
    voice: str = ""                # speaker / TTS voice; a voice is in exactly one split
    text: str = ""
    engine: str = "espeak-ng"      # espeak-ng | flite | festival | piper | human | none
    offset: int = 0                # first sample (at the file's rate) of the 1 s window
    noise: str = ""                # noise source mixed in, if any
    style: str = ""                # normal | fast | slow | whisper (speech clips)
    room: int = -1                 # index of the room impulse response in the split's bank, -1 dry
    spoken: int = -1               # samples (16 kHz) of speech synthesis made, trimmed of silence, before placing it;
                                   # more than 1 s: the window holds its last second (a sentence's: a random one);
                                   # -1 not recorded


@dataclass
class Corpus:
    root: Path
    clips: list[Clip] = field(default_factory=list)
    classes: tuple[str, ...] = ()
    task: str = ""
    meta: dict = field(default_factory=dict)
    cache_dir: Path | None = None

    def __post_init__(self):
        self.root = Path(self.root)
        if self.cache_dir is None:
            self.cache_dir = self.root

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]

    def audio(self, clip: Clip, sr: int = SAMPLE_RATE) -> np.ndarray:
        """The clip's 1 s window at sr (float, [-1, 1))."""
        x, file_sr = read_wav(self.root / clip.file)
        x = x[clip.offset: clip.offset + int(round(file_sr * CLIP_SAMPLES / SAMPLE_RATE))]
        return resample(x, file_sr, sr)

    def to_manifest(self) -> dict:
        return {"task": self.task, "classes": list(self.classes), "meta": self.meta,
                "clips": [asdict(c) for c in self.clips]}


def read_wav(src: bytes | Path) -> tuple[np.ndarray, int]:
    """Read 16-bit PCM WAV (mono, or the mean of its channels): float samples in [-1, 1) and the rate."""
    try:
        f = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else open(src, "rb")
        with f, wave.open(f, "rb") as w:
            if w.getsampwidth() != 2:
                raise PqlrError(f"{src if not isinstance(src, bytes) else 'audio'}: only 16-bit PCM WAV is "
                                f"supported (got {8 * w.getsampwidth()}-bit)")
            raw = w.readframes(w.getnframes())
            ch, sr = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise PqlrError(f"{src if not isinstance(src, bytes) else 'audio'}: not a readable WAV file ({exc})") from None
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if ch > 1:
        x = x[: len(x) // ch * ch].reshape(-1, ch).mean(axis=1)
    return x, sr


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read any audio file pqlr meets in Debian's packages: WAV with the standard library; GSM (asterisk
    prompts), FLAC (sonic-pi samples) and headerless 16 kHz 16-bit .raw (pocketsphinx) decoded by sox.
    Deterministic: sox's automatic dither (on by default wherever it writes fewer bits than the file holds: the
    24-bit sonic-pi samples) draws fresh noise on every call, which made the training noise bank, and with it
    every training run, differ from one process to the next; -D turns it off (the 24-bit samples are rounded)."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return read_wav(path)
    import shutil
    import subprocess
    if shutil.which("sox") is None:
        raise PqlrError(f"{path}: decoding {path.suffix} needs sox: `sudo apt-get install sox` (or `make deps`)")
    raw = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1"] if path.suffix.lower() == ".raw" else []
    p = subprocess.run(["sox", "-D", *raw, str(path), "-t", "wav", "-e", "signed", "-b", "16", "-"],
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        raise PqlrError(f"{path}: sox could not decode it ({p.stderr.decode(errors='replace').strip()})")
    return read_wav(p.stdout)


def write_wav(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    pcm = np.clip(np.round(np.asarray(x) * 32767.0), -32768, 32767).astype("<i2")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling by truncating / zero-padding the spectrum."""
    x = np.asarray(x, dtype=np.float64)
    if sr_in == sr_out or len(x) == 0:
        return x
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    out = np.zeros(keep, dtype=complex)
    m = min(keep, len(spec))
    out[:m] = spec[:m]
    return np.fft.irfft(out, n_out) * (n_out / len(x))


def save_corpus(corpus: Corpus) -> None:
    """Write manifest.json whole (a new file moved into place: a reader never sees half of one, and a corpus
    copied with hard links does not change its original's)."""
    tmp = corpus.root / "manifest.json.tmp"
    tmp.write_text(json.dumps(corpus.to_manifest(), indent=1))
    os.replace(tmp, corpus.root / "manifest.json")


def load_corpus(root: Path) -> Corpus:
    """A pqlr corpus (manifest.json), a Google Speech Commands v2 folder, or a <class>/<file>.wav folder."""
    root = Path(root)
    manifest = root / "manifest.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        return Corpus(root=root, clips=[Clip(**c) for c in meta["clips"]], classes=tuple(meta["classes"]),
                      task=meta.get("task", ""), meta=meta.get("meta", {}))
    if not root.is_dir():
        raise PqlrError(f"no corpus at {root}: run `pqlr data synth --out {root}`, or point --corpus at a "
                        f"Speech Commands v2 folder or a <class>/<file>.wav folder")
    from .loaders import load_folder, load_speech_commands
    if (root / "validation_list.txt").is_file() or (root / "testing_list.txt").is_file():
        return load_speech_commands(root)
    return load_folder(root)



def split_audio(corpus: Corpus, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A split's clips as int16 one-second audio [n, 16000] (shorter clips zero-padded) and class indices."""
    clips = corpus.split(split)
    audio = np.zeros((len(clips), CLIP_SAMPLES), dtype=np.int16)
    for i, c in enumerate(clips):
        a = corpus.audio(c)[:CLIP_SAMPLES]
        audio[i, : len(a)] = np.clip(np.round(a * 32767), -32768, 32767)
    return audio, np.array([corpus.classes.index(c.label) for c in clips], dtype=np.int64)
