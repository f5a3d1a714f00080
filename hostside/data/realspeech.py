"""Real human speech for false-accept measurement, from Debian packages that work offline.

Sources, selected by directory and language code, never by a substring of the path:
- asterisk's prompts under /usr/share/asterisk/sounds: one folder per voice named `<lang>_<REGION>_<g>_<Name>`
  (asterisk-core-sounds-{en,es,fr,it,ru}-wav: en_US_f_Allison, es_MX_f_Allison, fr_CA_f_June, it_IT_m_Carlo,
  ru_RU_f_IvrvoiceRU; asterisk-prompt-it-menardi-wav: it_IT_f_Menardi), or a bare language folder `<lang>`
  (asterisk-prompt-es-co, asterisk-prompt-fr-armelle, GSM), whose `digits/<lang>`, `letters/<lang>`,
  `phonetic/<lang>` and `dictate/<lang>` folders belong to the same voice. The same prompt installed in two
  encodings is used once (WAV first).
- pocketsphinx-testdata: read English speech (LibriVox) and prompts, 16 kHz (.wav and headerless .raw).
- Fish Fillets NG's spoken dialogue (fillets-ng-data: English, fillets-ng-data-cs: Czech, fillets-ng-data-nl:
  Dutch): actors in conversation, one folder per level and language (`sound/<level>/<lang>/*.ogg`). Not in the
  test streams: it is the real conversational speech that validation can choose an operating point on
  (`dialogue_sources`), disjoint from the test streams by package and language.
Every voice becomes its own continuous stream (fa_stream/<voice>.wav, 16 kHz). None of it holds the wake
phrase, so every trigger on it is a false accept; the streams' durations turn counts into false accepts per
hour.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import SAMPLE_RATE, read_audio, resample, write_wav

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
KLETTRES = Path("/usr/share/klettres")
POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
ASTERISK_SHARED = ("digits", "letters", "phonetic", "dictate")          # hold <lang>/ sub-folders
AUDIO_SUFFIXES = (".wav", ".gsm", ".raw")                              # in order of preference
_LANG_DIR = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")
_VOICE_DIR = re.compile(r"^(?P<lang>[a-z]{2})(?:_(?P<region>[A-Z]{2})_[a-z]_[A-Za-z0-9]+)?$")
FILLETS_SOUNDS = Path("/usr/share/games/fillets-ng/sound")
_DIALOGUE_LANG = re.compile(r"^[a-z]{2}$")
DIALOGUE_INSTALL = "sudo apt-get install fillets-ng-data fillets-ng-data-cs fillets-ng-data-nl sox"
INSTALL = "sudo apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav " \
          "asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav " \
          "asterisk-prompt-it-menardi-wav asterisk-prompt-es-co asterisk-prompt-fr-armelle pocketsphinx-testdata sox"


@dataclass(frozen=True)
class SpeechSource:
    voice: str                  # a stream: one speaker (or one package's recordings)
    language: str               # ISO 639-1, from the folder name
    package: str
    files: tuple[Path, ...]


def _dedupe(files) -> list[Path]:
    """One file per prompt: WAV before GSM before raw."""
    best: dict = {}
    for f in sorted(files):
        key = f.with_suffix("")
        if key not in best or AUDIO_SUFFIXES.index(f.suffix) < AUDIO_SUFFIXES.index(best[key].suffix):
            best[key] = f
    return sorted(best.values())


def asterisk_sources(root: Path) -> list[SpeechSource]:
    out = []
    if not root.is_dir():
        return out
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        m = _VOICE_DIR.match(d.name)
        if not m or d.is_symlink():             # a symlink (asterisk-core-sounds-<lang>) names another voice
            continue
        files = [f for f in d.rglob("*") if f.suffix in AUDIO_SUFFIXES]
        if not m.group("region"):               # a bare language folder: its shared sub-folders are its voice's
            for shared in ASTERISK_SHARED:
                files += [f for f in (root / shared / d.name).rglob("*") if f.suffix in AUDIO_SUFFIXES]
        files = _dedupe(files)
        if files:
            out.append(SpeechSource(f"asterisk:{d.name}", m.group("lang"), "asterisk", tuple(files)))
    return out


def pocketsphinx_sources(root: Path) -> list[SpeechSource]:
    files = _dedupe(f for f in root.rglob("*") if f.suffix in (".wav", ".raw")) if root.is_dir() else []
    return [SpeechSource("pocketsphinx:testdata", "en", "pocketsphinx-testdata", tuple(files))] if files else []


def klettres_sources(root: Path | None = None) -> list[SpeechSource]:
    """KLettres' recordings (Debian klettres-data): letters and syllables read by people, one folder per
    language (`<lang>/alpha`, `<lang>/syllab`). Used for training and validation negatives, never in the
    false-accept test streams."""
    root = Path(root or KLETTRES)
    out = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and _LANG_DIR.match(p.name)):
            files = sorted(f for f in d.rglob("*.ogg"))
            if files:
                out.append(SpeechSource(f"klettres:{d.name}", d.name.split("_")[0], "klettres-data", tuple(files)))
    return out


def dialogue_sources(languages: tuple[str, ...] = (), root: Path | None = None) -> list[SpeechSource]:
    """Fish Fillets NG's dialogue, one source per language folder (several actors each). A file is speech when
    its folder's name is a two-letter language code (`<level>/<lang>/`, `share/<topic>/<lang>/`); the game's
    sound effects (`share/sp-*.ogg`) and music sit elsewhere and are never taken."""
    root = Path(root or FILLETS_SOUNDS)
    by_lang: dict[str, list[Path]] = {}
    if root.is_dir():
        for f in sorted(root.rglob("*.ogg")):
            d = f.parent
            if d.parent != root and d != root and _DIALOGUE_LANG.match(d.name) and not d.is_symlink():
                by_lang.setdefault(d.name, []).append(f)
    return [SpeechSource(f"fillets-ng:{lang}", lang, "fillets-ng-data" if lang == "en" else f"fillets-ng-data-{lang}",
                         tuple(fs)) for lang, fs in sorted(by_lang.items()) if not languages or lang in languages]


def speech_sources(languages: tuple[str, ...] = (), asterisk_root: Path | None = None,
                   pocketsphinx_root: Path | None = None) -> list[SpeechSource]:
    """Every installed source, or those whose language is in `languages`."""
    srcs = asterisk_sources(Path(asterisk_root or ASTERISK_SOUNDS)) + \
        pocketsphinx_sources(Path(pocketsphinx_root or POCKETSPHINX_DATA))
    return [s for s in srcs if not languages or s.language in languages]


DECODERS = 4                    # files decoded at once by build_streams


def _decode(f: Path) -> np.ndarray | None:
    """A file at 16 kHz, or None when it cannot be decoded."""
    try:
        x, sr = read_audio(f)
    except Exception:
        return None
    return resample(x, sr, SAMPLE_RATE)


def build_streams(out_dir: Path, max_seconds: float | None = None, languages: tuple[str, ...] = (),
                  progress=None, sources: list[SpeechSource] | None = None) -> dict:
    """Write one 16 kHz stream per voice into out_dir; returns what they hold. max_seconds caps the total.
    The sources are the test streams' (`speech_sources(languages)`) unless given."""
    out_dir = Path(out_dir)
    streams, total = [], 0.0
    for src in (speech_sources(languages) if sources is None else sources):
        if max_seconds is not None and total >= max_seconds:
            break
        parts, used, skipped = [], 0, 0
        # every file decoded (sox, one process a file) a few at a time when all of them are taken; one after
        # another, stopping at the cap, when capped
        if max_seconds is None:
            with ThreadPoolExecutor(DECODERS) as pool:
                decoded = list(pool.map(_decode, src.files))
        else:
            decoded = map(_decode, src.files)
        for x in decoded:
            if max_seconds is not None and total + sum(len(p) for p in parts) / SAMPLE_RATE >= max_seconds:
                break
            if x is None:
                skipped += 1                    # a file we cannot decode is skipped and counted, not fatal
                continue
            parts.append(x)
            used += 1
        if not parts:
            continue
        x = np.concatenate(parts)
        if max_seconds is not None:
            x = x[: int(round((max_seconds - total) * SAMPLE_RATE))]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", src.voice) + ".wav"
        write_wav(out_dir / name, x)
        total += len(x) / SAMPLE_RATE
        streams.append({"file": f"{out_dir.name}/{name}", "voice": src.voice, "language": src.language,
                        "package": src.package, "files": used, "skipped": skipped, "seconds": len(x) / SAMPLE_RATE})
        if progress:
            progress()
    if not streams:
        return {"streams": [], "seconds": 0.0,
                "reason": f"no real speech installed: `{INSTALL if sources is None else DIALOGUE_INSTALL}`"}
    return {"streams": streams, "seconds": total, "languages": sorted({s["language"] for s in streams}),
            "note": "human speech without the wake phrase; every trigger is a false accept"}
