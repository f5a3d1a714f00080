#!/usr/bin/env python3
"""riscv32-esp-elf-<tool> → Debian's riscv64-unknown-elf-<tool>, for building ESP-IDF v6 offline.

ESP-IDF calls Espressif's toolchain (riscv32-esp-elf-gcc 14). Debian 12 has riscv64-unknown-elf-gcc 12.2, which
targets the same RV32IMAC cores with these adjustments (facts in shared/TOOLCHAIN.md, "A real ESP32-C6 image
offline"): response files expanded; -march=rv32imac_zicsr_zifencei[...] written as -march=rv32imac with
-misa-spec=2.2 (the same ISA; GCC 12 picks its multilib by the exact -march string); compat headers for what
Debian's picolibc lacks (tools/idf_offline/compat); a few flags GCC 12 does not know dropped; g++ links get an empty libstdc++ (no rv32 libstdc++ in
Debian: C++ apps do not build this way). Every other tool (ar, objcopy, size, …) is passed through unchanged.
Installed as symlinks named riscv32-esp-elf-<tool> by tools/idf_offline/setup.sh. With Espressif's own
toolchain none of this applies.
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

DEBIAN = "riscv64-unknown-elf-"
COMPILERS = ("gcc", "g++", "c++", "cpp", "cc")
UNKNOWN_TO_GCC12 = ("-fzero-init-padding-bits=", "-fno-malloc-dce", "-mtune=esp-base", "-Wno-unterminated-string-initialization",
                    "-fstrict-flex-arrays", "-Wno-dangling-reference", "-Wno-missing-template-keyword")
HERE = Path(__file__).resolve().parent


def expand(args: list[str], depth: int = 0) -> list[str]:
    out = []
    for a in args:
        if a.startswith("@") and depth < 8 and Path(a[1:]).is_file():
            out += expand(shlex.split(Path(a[1:]).read_text()), depth + 1)
        else:
            out.append(a)
    return out


def rewrite(args: list[str], cxx: bool) -> list[str]:
    out, march = [], False
    for a in expand(args):
        if a.startswith("-march="):
            base = a.split("=", 1)[1].split("_")[0]        # rv32imac_zicsr_zifencei_zaamo_zalrsc → rv32imac
            out += [f"-march={base}", "-misa-spec=2.2"]
            march = True
        elif a.startswith(UNKNOWN_TO_GCC12):
            continue
        elif a in ("-std=gnu23", "-std=c23"):              # GCC 12 names C23 by its draft name, and its
            out += [a.replace("23", "2x"), "-include", "stdbool.h"]   # bool is not yet a keyword there
        else:
            out.append(a)
    if not march:
        out += ["-march=rv32imac", "-misa-spec=2.2"]
    if "-mabi=ilp32" not in out:
        out.append("-mabi=ilp32")
    if not any(a.startswith(("-specs=", "--specs=")) for a in out):    # ESP-IDF passes its picolibc specs itself
        out = ["--specs=picolibc.specs"] + out
    # after the command's own -I (ESP-IDF's platform headers win), before the C library's -isystem (compat wins)
    out = out + ["-I", str(HERE / "compat")]
    linking = not any(a in ("-c", "-S", "-E", "-M", "-MM") for a in out)
    if cxx and linking:
        out += ["-L", os.environ.get("PQLR_IDF_STUBS", str(HERE / "stubs"))]
    return out


def main() -> int:
    name = Path(sys.argv[0]).name
    m = re.match(r"riscv32-esp-elf-(.+)$", name)
    tool = m.group(1) if m else "gcc"
    args = sys.argv[1:]
    if tool in COMPILERS:
        args = rewrite(args, cxx=tool in ("g++", "c++"))
    exe = DEBIAN + tool
    os.execvp(exe, [exe, *args])
    return 127


if __name__ == "__main__":
    sys.exit(main())
