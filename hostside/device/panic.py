"""A crash on the board, in source terms: ESP-IDF panic output (Guru Meditation, MEPC/RA, Backtrace lines) kept
from the console, with its code addresses turned into functions and lines by Espressif's esp-idf-panic-decoder
(addr2line over the firmware ELF). Optional: without the package (pip install esp-idf-panic-decoder, part of
the `platformio` extra) or the RISC-V binutils, nothing is decoded and the raw lines are still kept."""
from __future__ import annotations

import shutil
from pathlib import Path

PANIC_MARKERS = ("Guru Meditation", "Backtrace:", "MEPC", "abort() was called", "Stack canary", "assert failed")


def looks_like_a_panic(lines: list[str]) -> bool:
    return any(m in line for line in lines for m in PANIC_MARKERS)


def decode(lines: list[str], elf: Path) -> list[str] | None:
    """The console lines with each code address followed by 'function at file:line'; None when the decoder or
    addr2line is not available."""
    try:
        from esp_idf_panic_decoder import PcAddressDecoder
    except ImportError:
        return None
    prefix = next((p for p in ("riscv32-esp-elf-", "riscv64-unknown-elf-") if shutil.which(p + "addr2line")), None)
    if prefix is None or not Path(elf).is_file():
        return None
    dec = PcAddressDecoder(prefix, str(elf))
    out = []
    for line in lines:
        out.append(line)
        found = dec.decode_address(line.encode())
        if found:
            out += ["    " + x for x in found.splitlines()]
    return out
