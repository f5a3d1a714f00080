"""The ESP-IDF partition table in its binary form (what gen_esp32part.py writes at 0x8000), generated
from a board file, and read back: 32-byte entries (magic AA 50, type, subtype, offset, size, 16-byte label,
flags), an MD5 entry (EB EB, 14 × FF, MD5 of the entries), padded with FF to 0xC00."""
from __future__ import annotations

import hashlib
import struct

from ..boards import Board
from ..errors import PqlrError

TYPES = {"app": 0x00, "data": 0x01}
SUBTYPES = {"app": {"factory": 0x00, "test": 0x20}, "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03,
                                                              "nvs_keys": 0x04, "efuse": 0x05, "fat": 0x81, "spiffs": 0x82}}
TABLE_OFFSET = 0x8000
TABLE_SIZE = 0xC00


def _subtype(ptype: str, sub: str) -> int:
    if sub.lower().startswith("0x"):
        return int(sub, 16)
    try:
        return SUBTYPES[ptype][sub]
    except KeyError:
        raise PqlrError(f"unknown partition subtype {sub!r} for type {ptype!r}") from None


def table_bin(board: Board, model_bytes: int | None = None) -> bytes:
    """The board's table; with model_bytes, the model partition sized as the rendered partitions.csv has it."""
    model = board.model_partition.name
    out = b""
    for p in board.partitions:
        if p.type not in TYPES:
            raise PqlrError(f"board {board.name}: partition {p.name} has unknown type {p.type!r}")
        size = board.model_partition_size(model_bytes) if model_bytes is not None and p.name == model else p.size
        out += struct.pack("<2sBBII16sI", b"\xaa\x50", TYPES[p.type], _subtype(p.type, p.subtype), p.offset, size,
                           p.name.encode()[:16].ljust(16, b"\0"), 0)
    out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (TABLE_SIZE - len(out))


def parse_table(data: bytes) -> list[dict]:
    entries, i = [], 0
    while i + 32 <= len(data):
        chunk = data[i: i + 32]
        if chunk[:2] == b"\xeb\xeb":
            if hashlib.md5(data[:i]).digest() != chunk[16:]:
                raise PqlrError("partition table MD5 mismatch")
            return entries
        if chunk[:2] != b"\xaa\x50":
            break
        _, t, st, off, size, label, flags = struct.unpack("<2sBBII16sI", chunk)
        entries.append({"type": t, "subtype": st, "offset": off, "size": size,
                        "name": label.rstrip(b"\0").decode(), "flags": flags})
        i += 32
    raise PqlrError("partition table has no MD5 entry")
