"""Boards are data: one TOML file per board in boards/, loaded into a frozen dataclass."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BoardError, BudgetError

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"


PARTITION_TYPES = {"app": 0x00, "data": 0x01}
PARTITION_SUBTYPES = {"app": {"factory": 0x00, "test": 0x20},
                      "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
                               "efuse": 0x05, "undefined": 0x06, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83}}
COUNTERS = ("cpu-cycles", "wall-clock-ns")


@dataclass(frozen=True)
class Partition:
    """One row of the ESP-IDF partition table. type: app, data, or a custom type 0x40–0xFE (ESP-IDF's range
    for data in a format ESP-IDF does not know, e.g. a pqlr model); subtype: a name known for app/data, or a
    number (any 0x00–0xFE under a custom type)."""
    name: str
    type: str
    subtype: str
    offset: int
    size: int

    @property
    def type_id(self) -> int:
        if self.type in PARTITION_TYPES:
            return PARTITION_TYPES[self.type]
        value = _number(self.type)
        if value is None or not 0x40 <= value <= 0xFE:
            raise BoardError(f"partition {self.name}: type {self.type!r} is neither app, data nor a custom "
                             f"type 0x40-0xFE")
        return value

    @property
    def subtype_id(self) -> int:
        value = _number(self.subtype)
        if value is None:
            value = PARTITION_SUBTYPES.get(self.type, {}).get(self.subtype)
        if value is None or not 0 <= value <= 0xFE:
            raise BoardError(f"partition {self.name}: unknown subtype {self.subtype!r} for type {self.type!r}")
        return value


def _number(text: str) -> int | None:
    try:
        return int(str(text), 0)
    except ValueError:
        return None


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
    clock: dict[str, Any] = field(default_factory=dict)
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

    @property
    def counter(self) -> str:
        """What the firmware's cycle counter counts (board file: clock.counter): the CPU's cycles at cpu_hz,
        or the host's wall clock in nanoseconds."""
        return self.clock.get("counter", "cpu-cycles")


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
        board = Board(
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
            clock=dict(raw["clock"]),
            path=str(path),
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise BoardError(f"board file {path} is malformed: {exc!r}") from None
    if board.counter not in COUNTERS:
        raise BoardError(f"board file {path}: clock.counter {board.counter!r} is not one of {', '.join(COUNTERS)}")
    for p in board.partitions:          # reading the ids raises BoardError for a type/subtype ESP-IDF does not know
        _ = (p.type_id, p.subtype_id)
    return board


def kind_of(board: Board, section: str, registry: dict):
    """The behaviour registered for the kind a board file names in [section] (toolchain, flasher): one lookup,
    one error that lists the known kinds."""
    kind = getattr(board, section).get("kind")
    if kind not in registry:
        raise BoardError(f"board {board.name}: {section}.kind {kind!r} is not one of {', '.join(registry)}")
    return registry[kind]


def as_board(board: "str | Board") -> Board:
    """The API's one conversion from a board name (scripts, notebooks) to its Board; the CLI resolves names
    itself, once, and passes the Board on."""
    return board if isinstance(board, Board) else load_board(board)
