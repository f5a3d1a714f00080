"""The ESP-IDF partition table in its binary form (what gen_esp32part.py writes at 0x8000), generated
from a board file, and read back: 32-byte entries (magic AA 50, type, subtype, offset, size, 16-byte label,
flags), an MD5 entry (EB EB, 14 × FF, MD5 of the entries), padded with FF to 0xC00."""
from __future__ import annotations

import hashlib
import struct

from ..boards import Board
from ..errors import PqlrError

TABLE_OFFSET = 0x8000
TABLE_SIZE = 0xC00


def table_bin(board: Board) -> bytes:
    """The board's partition table, byte for byte what ESP-IDF's gen_esp32part.py writes for the partitions.csv
    pqlr renders from the same board file (the model partition at the board's full reservation)."""
    out = b""
    for p in board.partitions:
        out += struct.pack("<2sBBII16sI", b"\xaa\x50", p.type_id, p.subtype_id, p.offset, p.size,
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
