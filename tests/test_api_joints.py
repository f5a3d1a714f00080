"""The API's joints: dependencies point one way (cli → api → stages, device/ the only package that touches a
toolchain, port or emulator), names are resolved once, objects (Board, Artifact, Firmware) travel between
stages instead of paths that each stage re-reads, and a saved run can be re-rendered."""
from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hostside
from hostside import api
from hostside.boards import load_board

PKG = Path(hostside.__file__).parent


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        yield path.relative_to(PKG), ast.parse(path.read_text())


def _imports(rel: Path, tree: ast.AST) -> set[str]:
    """Every hostside module a file imports, at module level or inside functions, as dotted names."""
    pkg = ["hostside", *rel.parent.parts]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("hostside") or m.split(".")[0] in ("torch",)}


def _calls(tree: ast.AST) -> set[str]:
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}


RULES = [  # (files under, must not import anything starting with, why)
    ("compress", ("hostside.api", "hostside.cli", "hostside.codegen", "hostside.device"),
     "compression is a stage before export: it neither renders nor builds firmware, nor reaches into the API"),
    ("export", ("hostside.compress", "hostside.api"), "export lowers a model; it does not depend on compression"),
    ("report", ("hostside.device", "hostside.api"), "a report formats measurements; it runs no toolchain"),
    ("plan", ("hostside.artifact", "hostside.codegen", "hostside.device", "hostside.api"),
     "the planner sizes tiles and the arena; the artifact's byte format is not its business"),
    ("reference", ("torch",), "the integer reference is numpy only (DESIGN.md)"),
    ("data", ("hostside.api", "hostside.cli", "hostside.device"), "data is the first stage"),
]


@pytest.mark.parametrize("under,banned,why", RULES, ids=[r[0] for r in RULES])
def test_dependencies_point_one_way(under, banned, why):
    bad = {str(rel): sorted(m for m in _imports(rel, tree) if m.startswith(banned))
           for rel, tree in _modules() if rel.parts[0] == under}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"{why}: {bad}"


def test_only_the_cli_and_the_api_facade_import_the_api():
    users = [str(rel) for rel, tree in _modules()
             if any(m == "hostside.api" or m.startswith("hostside.api.") for m in _imports(rel, tree))
             and str(rel) not in ("cli.py", "api.py")]
    assert users == []


def test_tile_byte_format_belongs_to_the_artifact():
    defs = {rel.parts[0] if len(rel.parts) > 1 else rel.stem:
            {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)} for rel, tree in _modules()}
    for fn in ("pack_channels", "pack_int4", "unpack_int4", "row_bytes"):
        assert fn in defs["tiles"], fn
        assert fn not in defs["plan"], f"{fn} is defined in the planner"


def test_board_names_are_resolved_in_one_place():
    callers = sorted(str(rel) for rel, tree in _modules() if "load_board" in _calls(tree))
    assert callers == ["boards.py", "cli.py"], callers


def test_transports_are_chosen_only_in_device():
    ctors = {"SerialTransport", "ProcessTransport", "QemuBoard", "LabgridTransport"}
    users = sorted(str(rel) for rel, tree in _modules() if _calls(tree) & ctors and rel.parts[0] != "device")
    assert users == [], f"transports constructed outside hostside/device: {users}"


def test_transport_uses_the_board_files_baud(monkeypatch):
    """mlperf and bench share one transport selection; a serial board is opened at its board file's baud."""
    from hostside.device import transport
    opened = []

    class Recorder:
        def __init__(self, url, baud=115200):
            opened.append((url, baud))

        def close(self):
            pass
    monkeypatch.setattr(transport, "SerialTransport", Recorder)
    c6 = load_board("esp32c6")
    fast = dataclasses.replace(c6, serial=c6.serial | {"baud": 921600})
    with transport.open_transport(fast, Path("fw.elf"), Path("model.bin"), port="/dev/ttyFAKE0"):
        pass
    assert opened == [("/dev/ttyFAKE0", 921600)]


def _count(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*a, **k):
        calls.append(a)
        return real(*a, **k)
    monkeypatch.setattr(module, name, counted)
    return calls


def test_cli_resolves_the_board_once(small_model, tmp_path, monkeypatch, capsys):
    from hostside import boards, cli
    calls = _count(monkeypatch, boards, "load_board")
    assert cli.main(["build", "--board", "host", "--model", str(small_model[0]), "--out", str(tmp_path / "fw")]) == 0
    assert len(calls) == 1, calls


def test_bench_reads_the_model_once(small_model, tmp_path, monkeypatch):
    from hostside import artifact
    src = tmp_path / "model.bin"
    shutil.copy(small_model[0], src)
    parses = _count(monkeypatch, artifact, "_parse")
    r = api.bench(load_board("host"), src, tmp_path / "bench", runs=2)
    assert r["report"]["bit_exact"] is True
    assert len(parses) == 1, f"model.bin parsed {len(parses)} times in one bench"


def test_build_returns_a_firmware_object(small_model, tmp_path):
    host = load_board("host")
    art = small_model[1]
    fw = api.build(host, api.render(art, host, tmp_path / "fw"))
    assert isinstance(fw, api.Firmware) and fw.model_sha256 == art.model_sha256 and fw.board == "host"
    assert Path(fw).is_file() and fw.dir == tmp_path / "fw"


def test_report_rerenders_a_saved_run(small_model, tmp_path):
    from hostside import cli
    src = tmp_path / "model.bin"
    shutil.copy(small_model[0], src)
    r = api.bench(load_board("host"), src, tmp_path / "bench", runs=2)
    md = Path(r["paths"]["md"])
    before = md.read_text()
    md.unlink()
    assert cli.main(["report", str(tmp_path / "bench" / "report.json"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.md").read_text() == before
    assert json.loads((tmp_path / "again" / "report.json").read_text()) == r["report"]
    (tmp_path / "junk.json").write_text('{"not": "a run"}')
    assert cli.main(["report", str(tmp_path / "junk.json")]) == 2


def test_demo_runs_through_bench(trained_pipeline, tmp_path):
    """The demo's board half is `bench`: the same pinned model, report fields and partial-result handling."""
    rep = api.demo(tmp_path / "demo", board=load_board("host"), epochs=1, runs=3, corpus_dir=trained_pipeline["corpus"],
                   progress=False, log=lambda *a: None, model="dscnn", features="logmel40")
    assert rep["status"] == "complete" and rep["runs"] == 3 and rep["bit_exact"] is True
    assert rep["model_file"]["sha256"] == rep["model_sha256"]
    assert rep["wakeword"] is not None and "train" in rep and rep["timings_s"]["total_s"] > 0
    saved = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert saved["timings_s"] == rep["timings_s"]
    import torch
    ck = torch.load(tmp_path / "demo" / "dscnn.pt", map_location="cpu", weights_only=False)
    assert tuple(ck["train_config"]["vtlp"]) == api.DEMO_VTLP          # the demo's recipe trains with VTLP
    assert ck["train_config"]["ema"] == 0.0             # one epoch of a small corpus is too short for DEMO_EMA's average
    from hostside.train import ema_too_slow
    assert ema_too_slow(api.DEMO_EMA, api.DEMO_EPOCHS * 74) is None    # the demo's 25 epochs of its corpus: it fits
    w = rep["wakeword"]
    assert isinstance(w["val_estimated_fa_per_hour"], float)
    md = (tmp_path / "demo" / "report.md").read_text()
    if w["real_speech_hours"]:
        assert "what validation expected at this point" in md
    # the demo's detector reads the phoneme score, and the board computes it (its last output, bit-exact)
    assert w["score"] == "phonemes" and ck["phoneme_ctc"]["keywords"]["hey_kimi"]
    assert [L["op"] for L in rep["layers"][-3:]] == ["avgpool", "pwconv2d", "ctc"]
    ws = rep["wake_score_on_clips"]
    assert ws["wake_word_clips"] + ws["other_clips"] == 3 and "wake score on the test clips" in md
    # over the span that holds 99 % of the training phrases (`--span auto`), on the board too (its ctc keeps state)
    from hostside.artifact import read_model_bin
    from hostside.keyword import graph_span
    from hostside.train import load_checkpoint
    net, _ = load_checkpoint(tmp_path / "demo" / "dscnn.pt")
    from hostside.keyword import corpus_span
    span = corpus_span("auto", net, ck, trained_pipeline["corpus"], 100.0)
    g = read_model_bin(tmp_path / "demo" / "model.bin").graph
    assert w["score_span_s"] == pytest.approx(span) and g.streaming == (span > 1.0 + 1e-9)
    assert (graph_span(g, ck["frontend"]) or {"span_s": 1.0})["span_s"] == pytest.approx(span)
    if g.streaming:       # each clip a stream of its own ('n'): the clips do not read each other
        assert ws["wake_word_median"] is not None and "stream of its own" in ws["note"]
    # the detector on the board: the unseen voices' wake-word files, a stream each, read by the detector the
    # evaluation uses; the misses equal those of the host's integer evaluation of the same files
    d = rep["detector_on_board"]
    from hostside.data.corpus import load_corpus
    from hostside.data.features import FrontEnd
    from hostside.evaluate import Detector, _missed, _positive_posteriors
    from hostside.keyword import GraphPredictor
    g.frontend = ck["frontend"]
    clips, posts = _positive_posteriors(None, load_corpus(trained_pipeline["corpus"]),
                                        FrontEnd.from_dict(ck["frontend"]), GraphPredictor(g, stream=True), "unseen",
                                        w["stride_ms"], 0)
    sent = set(np.load(tmp_path / "demo" / api.WAKEFILES)["files"].tolist())
    posts = [p for c, p in zip(clips, posts) if c.file in sent]
    host = _missed(Detector(w["threshold"], w["smoothing_windows"], w["stride_ms"], w["refractory_s"]), posts,
                   w["threshold"])
    u = d["splits"]["unseen"]
    assert d["bit_exact"] and d["files"] == u["files"] == len(posts) == min(len(clips), api.DEMO_WAKE_FILES) > 0
    # each file's stream begins with the room before it (evaluate.room_lead), read by the span, not counted
    from hostside.evaluate import lead_windows
    # (the span's part before the window, and Q blocks of 0.2 s further back: its blocks are read from windows' centres)
    from hostside.graph import ctc_offset
    q = ctc_offset(g.output_layer) if g.streaming else 0
    assert q == (2 if g.streaming else 0)
    assert d["lead_windows"] == lead_windows(span - 1.0 + 0.2 * q, w["stride_ms"]) and (d["lead_windows"] > 0) == g.streaming
    if g.streaming:       # the host's integer evaluation reads the same room before each file
        assert GraphPredictor(g, stream=True).history_s == pytest.approx(span - 1.0 + 0.2 * q)
    assert d["windows"] == sum(map(len, posts)) + d["files"] * d["lead_windows"]
    assert u["missed_board"] == int(host.sum()) and u["frr_board"] == u["frr_reference"] == host.mean()
    ev = json.loads((tmp_path / "demo" / "eval" / "eval.json").read_text())["wakeword"]
    assert u["frr_fp32"] == np.mean([f in ev["missed_files_unseen"] for f in sorted(sent)])
    assert "The detector on the board" in md
    assert d["false_accepts"] is None and d["false_accepts_reason"]
    assert d["instructions_per_inference"] is None      # the host board counts no instructions (rv32-virt does)


def test_no_board_name_decides_behaviour():
    """Boards are data: behaviour comes from the kinds a board file names (device/kinds.py, codegen Port
    classes), never from comparing a board's name."""
    from hostside.boards import known_boards
    names = set(known_boards())
    bad = []
    for rel, tree in _modules():
        for node in ast.walk(tree):     # compared with, used as a dict key or an index: a name deciding something
            parts = (node.comparators + [node.left] if isinstance(node, ast.Compare) else
                     [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else
                     [node.slice] if isinstance(node, ast.Subscript) else [])
            consts = {c.value for p in parts for c in ast.walk(p) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
            if consts & names:
                bad.append(f"{rel}:{node.lineno}")
    assert bad == [], f"board names deciding behaviour: {bad}"


def test_each_kind_is_one_class():
    from hostside.codegen.render import PORTS
    from hostside.device.kinds import FLASHERS, TOOLCHAINS
    kinds = {(load_board(n).toolchain["kind"], load_board(n).flasher["kind"]) for n in ("host", "rv32-virt", "esp32c6")}
    for tc, fl in kinds:
        assert tc in TOOLCHAINS and tc in PORTS and fl in FLASHERS
    from hostside.device.kinds import toolchain_for
    from hostside.errors import PqlrError
    odd = dataclasses.replace(load_board("host"), toolchain={"kind": "make"})
    with pytest.raises(PqlrError, match="toolchain.kind 'make' is not one of"):
        toolchain_for(odd)


def test_wake_files_of_another_model_are_not_read(small_model, tmp_path):
    """wakefiles.npz holds one model's int8 inputs: beside another model.bin the bench says so and runs nothing of it."""
    src = tmp_path / "model.bin"
    shutil.copy(small_model[0], src)
    art = small_model[1]
    x = np.zeros((4, *art.graph.input_shape), np.int8)
    common = dict(windows=x, starts=np.array([0, 2]), splits=np.array(["unseen", "unseen"]),
                  files=np.array(["a.wav", "b.wav"]), fp32_missed=np.array([0, 1]), threshold=0.5, smooth=5,
                  stride_ms=100.0, refractory_s=1.0)
    np.savez(tmp_path / api.WAKEFILES, model_sha256="0" * 64, **common)
    d = api.bench(load_board("host"), src, tmp_path / "bench", runs=2)["report"]["detector_on_board"]
    assert d["value"] is None and "another model.bin" in d["reason"]
    np.savez(tmp_path / api.WAKEFILES, model_sha256=art.model_sha256, **common)
    d = api.bench(load_board("host"), src, tmp_path / "bench2", runs=2, wake_files=1)["report"]["detector_on_board"]
    assert d["files"] == 1 and d["windows"] == 2 and d["bit_exact"] and d["splits"]["unseen"]["frr_fp32"] == 0.0
