"""Shared fixtures. Small, seeded models; the emulator tier needs the cross gcc and QEMU that
`make test` / .ci/run install; board tests need --board/--port."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from hostside.boards import known_boards, load_board


def pytest_addoption(parser):
    parser.addoption("--board", choices=known_boards(), default=None,
                     help="run board tests on this board (boards/*.toml)")
    parser.addoption("--port", default=None, help="serial port of the attached board, e.g. /dev/ttyACM0")


def pytest_collection_modifyitems(config, items):
    board, port = config.getoption("--board"), config.getoption("--port")
    skip_board = pytest.mark.skip(reason="board test: attach an ESP32-C6 and pass --board esp32c6 --port /dev/ttyACM0")
    missing = [t for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32") if shutil.which(t) is None]
    skip_emu = pytest.mark.skip(reason=f"emulator test: {', '.join(missing)} missing; run `make deps` or "
                                       "`sudo apt-get install gcc-riscv64-unknown-elf qemu-system-misc`")
    for item in items:
        if "board" in item.keywords and not (board and port):
            item.add_marker(skip_board)
        if "emulator" in item.keywords and missing:
            item.add_marker(skip_emu)


def random_graph(seed: int, input_shape=(13, 10), channels=5, blocks=1, n_classes=3, stem_kernel=(3, 3),
                 stem_stride=(2, 1), calib_n=16):
    """A randomly initialised DS-CNN with random BatchNorm statistics, quantised by the real PTQ path."""
    from hostside.export import quantize_ptq
    from hostside.models.dscnn import DSCNN, DSCNNConfig
    torch.manual_seed(seed)
    m = DSCNN(DSCNNConfig(input_shape=input_shape, n_classes=n_classes, channels=channels, blocks=blocks,
                          stem_kernel=stem_kernel, stem_stride=stem_stride))
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
    m.eval()
    rng = np.random.default_rng(seed)
    calib = rng.normal(0, 2, size=(calib_n, *input_shape)).astype(np.float32)
    return m, quantize_ptq(m, calib, tuple(f"c{i}" for i in range(n_classes))), calib


def random_inputs(graph, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, size=(n, *graph.input_shape)).astype(np.int8)


def run_firmware(art, board, graph, xs, folder, kernels: str = "rv32", timeout: float = 60):
    """Render and build `art` (written as folder/model.bin) for `board` with `kernels`, run the inputs `xs` on it — a
    host process, or QEMU's emulated board on its flash image — checked against `graph`'s reference; the Session's
    result."""
    from hostside.codegen import render_firmware
    from hostside.device.build import build_firmware
    from hostside.device.session import Session
    fw = build_firmware(board, render_firmware(art, board, folder / "fw", kernels=kernels))
    if board.name == "host":
        from hostside.device.transport import ProcessTransport
        t = ProcessTransport([str(fw), str(folder / "model.bin")])
        try:
            return Session(t, art.model_sha256, timeout).run(xs, graph)
        finally:
            t.close()
    from hostside.device.qemu import QemuBoard, make_flash_image
    img = make_flash_image(board, folder / "model.bin", folder / "flash.img")
    with QemuBoard(board, fw, img) as transport:
        return Session(transport, art.model_sha256, timeout=timeout).run(xs, graph)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A random small model written as model.bin for rv32-virt (no training: fast)."""
    from hostside.artifact import write_model_bin
    from hostside.plan import make_plan
    _, graph, _ = random_graph(1, input_shape=(20, 12), channels=9, blocks=2, stem_kernel=(4, 3), stem_stride=(2, 2))
    path = tmp_path_factory.mktemp("small") / "model.bin"
    art = write_model_bin(path, graph, make_plan(graph, load_board("rv32-virt")))
    return path, art


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory):
    """The real data path on a tiny corpus: espeak-ng → features → train 2 epochs → int8 → model.bin."""
    from hostside import api
    root = tmp_path_factory.mktemp("pipeline")
    corpus = root / "corpus"
    api.synth(corpus, progress=False, voices=24, positives_per_voice=2, unknown_per_voice=2, silence_clips=24,
              few_voice_repeats=2, unseen_positives=4, unseen_unknown=4, fa_stream_seconds=20, tts_stream_seconds=20,
              seed=3, workers=2)
    api.train(corpus, root / "m.pt", epochs=2, seed=0, channels=12, blocks=2, progress=False)
    art = api.export(root / "m.pt", corpus, "rv32-virt", root / "model.bin", calib_size=50)
    return {"root": root, "corpus": corpus, "model_bin": root / "model.bin", "art": art}
