"""Boards are data: one TOML file per board in boards/, loaded into a frozen dataclass."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BoardError, BudgetError

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"


@dataclass(frozen=True)
class Partition:
    name: str
    type: str
    subtype: str
    offset: int
    size: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    chip: str
    emulated: bool
    cflags: tuple[str, ...]
    cpu_hz: int
    sram_bytes: int
    sram_budget_bytes: int
    stack_bytes: int
    stack_estimate_bytes: int
    tile_buffer_budget_bytes: int
    flash_bytes: int
    partitions: tuple[Partition, ...]
    toolchain: dict[str, Any]
    flasher: dict[str, Any]
    serial: dict[str, Any]
    current_sensor: dict[str, Any]
    cost_model: dict[str, Any]
    memory: dict[str, Any] = field(default_factory=dict)
    firmware: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def partition(self, name: str) -> Partition:
        for p in self.partitions:
            if p.name == name:
                return p
        raise BoardError(f"board {self.name!r} has no partition named {name!r} "
                         f"(it has: {', '.join(p.name for p in self.partitions)})")

    @property
    def model_partition(self) -> Partition:
        return self.partition("model")

    def model_partition_size(self, model_bytes: int) -> int:
        """The model partition sized from the artifact: model.bin rounded up to the 64 KB MMU page (so an
        xip plan can map it whole), never beyond the board's reservation or the flash."""
        part = self.model_partition
        if model_bytes > part.size:
            raise BudgetError(f"model.bin is {model_bytes} B but the model partition holds {part.size} B")
        size = min(part.size, max(0x10000, (model_bytes + 0xFFFF) & ~0xFFFF))
        if part.offset + size > self.flash_bytes:
            raise BudgetError(f"the model partition would end at {part.offset + size:#x}, past the "
                              f"{self.flash_bytes // 1024 // 1024} MB flash")
        return size


def board_dirs(boards_dir: Path | None = None) -> list[Path]:
    """Where board files are looked up: $PQLR_BOARDS (':'-separated folders, e.g. your own boards) first,
    then the project's boards/."""
    if boards_dir is not None:
        return [Path(boards_dir)]
    extra = [Path(p) for p in os.environ.get("PQLR_BOARDS", "").split(os.pathsep) if p]
    return extra + [BOARDS_DIR]


def known_boards(boards_dir: Path | None = None) -> list[str]:
    return sorted({p.stem for d in board_dirs(boards_dir) for p in d.glob("*.toml")})


def load_board(name: str, boards_dir: Path | None = None) -> Board:
    path = next((d / f"{name}.toml" for d in board_dirs(boards_dir) if (d / f"{name}.toml").is_file()), None)
    if path is None:
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(known_boards(boards_dir))} "
                         f"(one TOML file each in {', '.join(str(d) for d in board_dirs(boards_dir))})")
    try:
        raw = tomllib.loads(path.read_text())
        mem = raw["memory"]
        return Board(
            name=raw["name"],
            description=raw["description"],
            chip=raw["chip"],
            emulated=bool(raw["emulated"]),
            cflags=tuple(raw["isa"]["cflags"]),
            cpu_hz=int(raw["clock"]["cpu_hz"]),
            sram_bytes=int(mem["sram_bytes"]),
            sram_budget_bytes=int(mem["sram_budget_bytes"]),
            stack_bytes=int(mem["stack_bytes"]),
            stack_estimate_bytes=int(mem["stack_estimate_bytes"]),
            tile_buffer_budget_bytes=int(mem["tile_buffer_budget_bytes"]),
            flash_bytes=int(mem["flash_bytes"]),
            partitions=tuple(Partition(p["name"], p["type"], str(p["subtype"]), int(p["offset"]), int(p["size"]))
                             for p in raw["partitions"]),
            toolchain=dict(raw["toolchain"]),
            flasher=dict(raw["flasher"]),
            serial=dict(raw["serial"]),
            current_sensor=dict(raw["current_sensor"]),
            cost_model=dict(raw["cost_model"]),
            memory=dict(mem),
            firmware=dict(raw.get("firmware", {})),
            path=str(path),
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise BoardError(f"board file {path} is malformed: {exc!r}") from None


def as_board(board: "str | Board") -> Board:
    """The API's one conversion from a board name (scripts, notebooks) to its Board; the CLI resolves names
    itself, once, and passes the Board on."""
    return board if isinstance(board, Board) else load_board(board)
