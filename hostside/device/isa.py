"""Which instructions an ELF holds, against the ISA a board file names (RV32IMAC + Zicsr + Zifencei for the
ESP32-C6): a build that slipped in an extension the core lacks (F, Zb*, vector) is caught before it is flashed.
Disassembled with the RISC-V binutils' objdump (canonical mnemonics, -M no-aliases)."""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from ..errors import ToolchainMissing

RV32I = {"lui", "auipc", "jal", "jalr", "beq", "bne", "blt", "bge", "bltu", "bgeu", "lb", "lh", "lw", "lbu", "lhu",
         "sb", "sh", "sw", "addi", "slti", "sltiu", "xori", "ori", "andi", "slli", "srli", "srai", "add", "sub", "sll",
         "slt", "sltu", "xor", "srl", "sra", "or", "and", "fence", "fence.tso", "ecall", "ebreak", "unimp"}
M = {"mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"}
A = {"lr.w", "sc.w", "amoswap.w", "amoadd.w", "amoxor.w", "amoand.w", "amoor.w", "amomin.w", "amomax.w",
     "amominu.w", "amomaxu.w"}
C = {"c.addi4spn", "c.lw", "c.sw", "c.nop", "c.addi", "c.jal", "c.li", "c.addi16sp", "c.lui", "c.srli", "c.srai",
     "c.andi", "c.sub", "c.xor", "c.or", "c.and", "c.j", "c.beqz", "c.bnez", "c.slli", "c.lwsp", "c.jr", "c.mv",
     "c.ebreak", "c.jalr", "c.add", "c.swsp", "c.unimp"}
ZICSR = {"csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"}
ZIFENCEI = {"fence.i"}
PRIVILEGED = {"mret", "sret", "wfi", "sfence.vma"}      # machine-mode code (interrupt return, idle)
EXTENSIONS = {"i": RV32I, "m": M, "a": A, "c": C, "zicsr": ZICSR, "zifencei": ZIFENCEI, "privileged": PRIVILEGED}


def allowed(march: str = "rv32imac_zicsr_zifencei") -> set[str]:
    base, *z = march.lower().split("_")
    if not base.startswith("rv32"):
        raise ValueError(f"{march}: only RV32 is checked")
    out = set(RV32I) | PRIVILEGED
    for letter in base[4:]:
        out |= EXTENSIONS.get(letter, set())
    for ext in z:
        out |= EXTENSIONS.get(ext, set())
    return out


def instructions(elf: Path) -> Counter:
    """Mnemonic → count over every executable section."""
    objdump = shutil.which("riscv64-unknown-elf-objdump")
    if objdump is None:
        raise ToolchainMissing("riscv64-unknown-elf-objdump not found: install binutils-riscv64-unknown-elf")
    out = subprocess.run([objdump, "-d", "-M", "no-aliases", str(elf)], capture_output=True, text=True, check=True).stdout
    counts: Counter = Counter()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and re.match(r"^\s*[0-9a-f]+:$", parts[0]):
            counts[re.sub(r"\.(aq|rl|aqrl)$", "", parts[2].split()[0]) if parts[2].split() else "?"] += 1
    return counts


def check(elf: Path, march: str = "rv32imac_zicsr_zifencei") -> dict:
    """{'instructions': n, 'mnemonics': {...}, 'outside': {mnemonic: count}} — outside is empty when the ELF holds
    only what march allows (plus the privileged mret/wfi)."""
    counts = instructions(elf)
    ok = allowed(march)
    return {"march": march, "instructions": sum(counts.values()), "mnemonics": dict(counts),
            "outside": {m: n for m, n in counts.items() if m not in ok}}
