"""The real-speech false-accept stream: human recordings from Debian packages, concatenated.

Sources (when installed): `asterisk-core-sounds-en-wav` (telephone prompts, one speaker, 8 kHz) and
`pocketsphinx-testdata` (LibriVox read speech). None of it contains the wake phrase, so every trigger
on it is a false accept; its duration turns counts into false accepts per hour.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .corpus import SAMPLE_RATE, read_wav, resample, write_wav

SOURCES = {
    "asterisk-core-sounds-en-wav": "/usr/share/asterisk/sounds",
    "pocketsphinx-testdata": "/usr/share/pocketsphinx/test/data",
}


def stream_files() -> dict[str, list[Path]]:
    out = {}
    for pkg, d in SOURCES.items():
        root = Path(d)
        files = sorted(p for p in root.rglob("*.wav")) if root.is_dir() else []
        if pkg == "asterisk-core-sounds-en-wav":
            files = [f for f in files if "/en" in str(f)]
        if files:
            out[pkg] = files
    return out


def build_stream(path: Path, max_seconds: float | None = None) -> dict:
    """Concatenate the recordings (resampled to 16 kHz) into one WAV; returns what it holds."""
    parts, used, total = [], {}, 0
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    for pkg, files in stream_files().items():
        n = 0
        for f in files:
            if limit is not None and total >= limit:
                break
            try:
                x, sr = read_wav(f)
            except Exception:
                continue                       # a file we cannot read is skipped, not fatal
            x = resample(x, sr, SAMPLE_RATE)
            parts.append(x)
            total += len(x)
            n += 1
        if n:
            used[pkg] = n
    if not parts:
        return {"file": None, "seconds": 0.0, "sources": {},
                "reason": "no real speech installed: `sudo apt-get install asterisk-core-sounds-en-wav "
                          "pocketsphinx-testdata`"}
    x = np.concatenate(parts)
    if limit is not None:
        x = x[:limit]
    write_wav(path, x)
    return {"file": Path(path).name, "seconds": len(x) / SAMPLE_RATE, "sources": used,
            "note": "human speech without the wake phrase; every trigger is a false accept"}
