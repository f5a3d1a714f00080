from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..artifact import Artifact
from ..boards import Board


def _acc(pred: np.ndarray, labels: np.ndarray) -> float | None:
    return None if len(labels) == 0 else float((np.asarray(pred) == np.asarray(labels)).mean())


def cost_model_latency_ms(board: Board, instret: float, flash_bytes: float) -> dict:
    cm = board.cost_model
    cpi, bps = float(cm.get("cycles_per_instruction", 0)), float(cm.get("flash_bytes_per_second", 0))
    if board.cpu_hz <= 0 or cpi <= 0:
        return {"value": None, "provenance": None,
                "reason": f"board {board.name}: the cost model needs clock.cpu_hz and cost_model.cycles_per_instruction "
                          f"(board file {board.path})"}
    compute = instret * cpi / board.cpu_hz * 1e3
    flash = flash_bytes / bps * 1e3 if bps else 0.0
    return {"value": compute + flash, "compute_ms": compute, "flash_ms": flash, "provenance": "estimated",
            "cost_model": {"cycles_per_instruction": cpi, "cpu_hz": board.cpu_hz, "flash_bytes_per_second": bps,
                           "formula": "instructions x CPI / cpu_hz + flash bytes / flash_bytes_per_second",
                           "note": cm.get("note", ""), "source": board.path}}


def build_report(board: Board, art: Artifact, res, ref: np.ndarray, labels: np.ndarray, fp32_pred: np.ndarray,
                 code: dict | None = None, extra: dict | None = None) -> dict:
    """The run's report (a dict that report.json holds). code: the firmware's section sizes, measured by the
    caller's toolchain (device.build.code_size), or None where the firmware is not a cross-built ELF. A span model's
    clips ran each as a stream of its own (`pqlr bench`)."""
    outs = np.array(res.outputs, dtype=np.int64).reshape(len(res.outputs), -1)
    ref = np.asarray(ref, dtype=np.int64).reshape(len(ref), -1)
    equal_rows = [bool(np.array_equal(a, b)) for a, b in zip(outs, ref)]
    bit_exact = len(outs) == len(ref) and len(outs) > 0 and all(equal_rows)
    first_bad = next((i for i, ok in enumerate(equal_rows) if not ok), None)
    instret = [i for i in res.instret if i is not None]
    flash = float(np.mean(res.flash_bytes)) if res.flash_bytes else 0.0
    g = art.graph

    per_run_ms: list[float] = []
    if instret:
        ipi = {"value": float(np.mean(instret)), "min": int(min(instret)), "max": int(max(instret)),
               "provenance": "emulated" if board.emulated else "measured",
               "per_mac": float(np.mean(instret)) / g.total_macs,
               "source": "minstret around pqlr_model_run" + (f" ({board.description})" if board.emulated else "")}
        if g.streaming and not g.frame_streaming:
            ipi["note"] = ("each clip a new stream, so the span read no earlier windows; a board listening without "
                           "pause reads the whole span: that cost is under the detector on the board")
        latency = cost_model_latency_ms(board, ipi["value"], flash)
        per_run_ms = [cost_model_latency_ms(board, i, f)["value"] for i, f in zip(instret, res.flash_bytes)]
        per_run_ms = [v for v in per_run_ms if v is not None]
    else:
        ipi = {"value": None, "provenance": None, "reason": f"board {board.name} has no instruction counter"}
        if board.counter == "wall-clock-ns":
            per_run_ms = [c / 1e6 for c in res.cycles]
            latency = {"value": float(np.median(per_run_ms)) if per_run_ms else None, "provenance": "measured",
                       "note": "wall clock of the development host (CLOCK_MONOTONIC), not a microcontroller"}
        elif board.cpu_hz > 0:
            per_run_ms = [c / board.cpu_hz * 1e3 for c in res.cycles]
            latency = {"value": float(np.median(per_run_ms)) if per_run_ms else None, "provenance": "measured",
                       "source": "the board's cycle counter around the model, at cpu_hz from the board file"}
        else:
            latency = {"value": None, "provenance": None,
                       "reason": f"board {board.name}: clock.cpu_hz is 0 and clock.counter is cpu-cycles, so cycles "
                                 f"cannot be turned into time; set cpu_hz (or counter = \"wall-clock-ns\")"}
    if per_run_ms:
        latency.update({"p50": float(np.percentile(per_run_ms, 50)), "p90": float(np.percentile(per_run_ms, 90)),
                        "p99": float(np.percentile(per_run_ms, 99)), "per_run": per_run_ms})

    stack = res.ram.get("stack_hwm")
    ram_prov = "emulated" if board.emulated else "measured"       # from the board file, nothing else
    painted = "tile_buf_used" in res.ram and "arena_used" in res.ram
    parts = {"tile_buffer": res.ram.get("tile_buf_used", res.ram.get("tile_buf")),
             "activation_arena": res.ram.get("arena_used", res.ram.get("arena")),
             "stack_high_water_mark": stack}
    if "frontend" in res.ram:                   # the on-device front end's buffers, when built in
        parts["frontend_buffers"] = res.ram["frontend"]
    peak = ({"value": sum(parts.values()), "parts": parts, "provenance": ram_prov if painted else "planned",
             "source": ("highest byte touched in the painted arena and tile buffer + painted-stack high-water mark"
                        if painted else "the buffer sizes the firmware was compiled with (not painted) + "
                        "painted-stack high-water mark"),
             "allocated": {"tile_buffer": res.ram.get("tile_buf"), "activation_arena": res.ram.get("arena")}}
            if stack is not None else
            {"value": None, "parts": parts, "provenance": None,
             "reason": f"board {board.name} cannot measure its stack high-water mark"})
    peak["planned"] = {"tile_buffer": art.tile_buffer_bytes, "activation_arena": art.arena_bytes,
                       "stack_estimate": board.stack_estimate_bytes,
                       "total": art.tile_buffer_bytes + art.arena_bytes + board.stack_estimate_bytes}

    energy = {"value": None, "provenance": None, "reason": "no current measured"}
    if res.current_ua:
        current = {"value": float(np.mean(res.current_ua)) / 1000.0, "provenance": "measured",
                   "source": board.current_sensor.get("kind"), "trace_ma": [u / 1000.0 for u in res.current_ua]}
        v = board.current_sensor.get("supply_v")
        if v and latency.get("value") is not None and latency.get("provenance") == "measured":
            energy = {"value": current["value"] * float(v) * latency["value"] / 1000.0, "unit": "mJ",
                      "provenance": "measured", "formula": "mean current x supply_v (board file) x latency"}
        else:
            energy["reason"] = "needs a measured latency and the board file's current_sensor.supply_v"
    else:
        sensor = board.current_sensor.get("kind", "none")
        reason = (f"{board.name} has no current sensor (board file: current_sensor.kind = {sensor})"
                  if sensor == "none" else f"the {sensor} current sensor did not report")
        current = {"value": None, "provenance": None, "reason": reason}

    n = len(outs)
    k = g.class_outputs                       # a phoneme-scored model's last output is its wake score, not a class
    fw_pred = outs[:, :k].argmax(1) if n else np.zeros(0, int)
    ref_pred = ref[:, :k].argmax(1) if len(ref) else np.zeros(0, int)
    layers = []
    for i, L in enumerate(g.layers):
        li = [r[i] for r in res.layer_instret if len(r) > i]
        lf = [r[i] for r in res.layer_flash if len(r) > i]
        layers.append({"name": L.name, "op": L.op, "macs": L.macs,
                       "instructions": float(np.mean(li)) if li else None,
                       "instructions_per_mac": (float(np.mean(li)) / L.macs) if li and L.macs else None,
                       "flash_bytes": float(np.mean(lf)) if lf else None,
                       "tiles": sum(1 for t in art.tiles if t.layer == i)})
    report = {
        "pqlr_version": __version__,
        "board": board.name,
        "board_description": board.description,
        "model_sha256": art.model_sha256,
        "firmware_hello": res.hello,
        "runs": n,
        "classes": list(g.classes),
        "accuracy": {
            "split": (extra or {}).get("accuracy_split", "the model's test set (testset.npz)"),
            "n": n,
            "torch_fp32": _acc(fp32_pred, labels),
            "numpy_reference": _acc(ref_pred, labels),
            "firmware": _acc(fw_pred, labels),
        },
        "wake_score_on_clips": _wake_scores(g, outs, labels, board),
        "bit_exact": bit_exact,
        "bit_exact_detail": {"compared": n, "mismatching_inputs": int(n - sum(equal_rows)),
                             "first_mismatching_input": first_bad, "comparison": "int8 output vectors, ==",
                             "first_mismatch": getattr(res, "first_mismatch", None)},
        "instructions_per_inference": ipi,
        "macs_per_inference": g.total_macs,
        "latency_ms": latency,
        "flash_bytes_per_inference": flash,
        "peak_ram_bytes": peak,
        "current_ma": current,
        "energy_per_inference_mj": energy,
        "model_bin_bytes": art.size,
        "weight_bytes": sum(t.size for t in art.tiles),
        "code_bytes": code or None,
        "layers": layers,
        "telemetry": {"records": res.stats.records, "noise_lines": res.stats.noise_lines,
                      "console_tail": res.stats.console[-50:],
                      "bad_records": res.stats.bad_records},
    }
    if extra:
        report.update({k: v for k, v in extra.items() if k != "accuracy_split"})
    return report


def _wake_scores(g, outs: np.ndarray, labels: np.ndarray, board: Board) -> dict | None:
    """A phoneme-scored model (its last output the wake word's log score per phoneme): the score the board computed
    on the test clips (one 1 s window each, no smoothing), its median on the wake-word clips and on the others."""
    if g.output_layer.op != "ctc" or not len(outs) or len(labels) != len(outs):
        return None
    score = g.wake_scores(outs)
    wake = np.asarray(labels) == 0
    med = (lambda m: float(np.median(score[m])) if m.any() else None)
    note = ("the board's wake score exp(log score per phoneme) on each 1 s test clip, before the detector's "
            "smoothing and threshold; class 0 is the wake word")
    if g.streaming:                 # a span: `pqlr bench` ran each clip as a stream of its own
        note += ("; each clip a stream of its own, so the span holds the clip's window alone (the detector's figures "
                 "below stream whole files)")
    return {"wake_word_clips": int(wake.sum()), "wake_word_median": med(wake), "other_clips": int((~wake).sum()),
            "other_median": med(~wake), "provenance": board.name, "note": note}


def _detector_md(d: dict | None, board: str) -> list[str]:
    """The detector's FRR read off the board (api.detector_on_board), beside the reference's and the fp32 model's."""
    if not d:
        return []
    if d.get("value", 0) is None:
        return ["## The detector on the board", "", f"null: {d['reason']}", ""]
    det = d["detector"]
    rows = [f"| {sp} | {v['files']} | {v['missed_board']} | {_pct(v['frr_board'])} | {_pct(v['frr_reference'])} | "
            f"{_pct(v['frr_fp32']) if v.get('frr_fp32') is not None else 'null (not recorded for these files)'} |"
            for sp, v in d["splits"].items()]
    return ["## The detector on the board", "",
            f"{d['files']} wake-word files ({d['windows']:,} windows of 1 s every {det['stride_ms']:g} ms) streamed "
            f"through {board} in {d['seconds']:.0f} s, a new stream per file (`n`)"
            + (f" that begins with {d['lead_windows']} windows of the room before the file (its own noise, which the "
               f"span reads and the detector does not count)" if d.get("lead_windows") else "")
            + f"; the threshold {det['threshold']:g} "
            f"(chosen on validation for the fp32 model) on the mean of {det['smoothing_windows']} windows of the "
            f"board's int8 wake score. Bit-exact with the numpy reference over every window: {d['bit_exact']}."
            + (f" {_fmt(c['steady_state_mean'], '', 0)} instructions per inference on the {c['steady_state_windows']:,} "
               f"windows whose stream had filled the span (max {_fmt(c['max'], '', 0)}; {c['provenance']})."
               if (c := d.get("instructions_per_inference")) and c.get("steady_state_mean") is not None else ""), "",
            "| split | files | missed on the board | FRR, board (int8) | FRR, numpy reference (int8) | FRR, fp32 |",
            "|---|---|---|---|---|---|", *rows, "",
            f"False accepts on the board: null ({d['false_accepts_reason']}).", ""]


def _fmt(v, unit: str = "", nd: int = 2) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:,.{nd}f}{unit}"
    return f"{v:,}{unit}"


def _pct(v) -> str:
    return "null" if v is None else f"{100 * v:.1f} %"


def _wakeword_md(w: dict | None) -> list[str]:
    if not w:
        return []
    per_voice = ", ".join(f"{k} {_pct(v)}" for k, v in (w.get("frr_unseen_by_voice") or {}).items())
    fa = (f"{w['real_speech_false_accepts']} false accepts in {w['real_speech_hours']:.2f} h of real human speech "
          f"({', '.join(w.get('real_speech_languages') or [])}) = {w['real_speech_fa_per_hour']:.2f} per hour; 95 % upper "
          f"bound {w['real_speech_fa_per_hour_upper95']:.2f} per hour" if w.get("real_speech_hours") else
          f"false accepts per hour: null ({w.get('reason')})")
    phonemes = str(w.get("score", "")).startswith("phonemes")
    span = w.get("score_span_s")
    over = (f"{span:g} s of audio: the window and, before it, head frames of earlier windows of the same stream (each "
            f"block from an older window's centre), so that a phrase longer than the window is read whole; the board "
            f"keeps those frames between inferences"
            if isinstance(span, (int, float)) and span > 1.0 + 1e-9 else "the window")
    repeats = " (each as one or more spikes)" if w.get("score_phoneme_repeats") else ""
    what = (f"the wake-word score (the phoneme head's: how well the phrase's phonemes in order{repeats} explain {over}; "
            "the board computes it too, in int8, as its last output)" if phonemes else "the wake-word posterior")
    return ["## The wake word at its operating point (fp32 model, streaming detector)", "",
            f"Threshold {w['threshold']:g} on {what}, averaged over {w['smoothing_windows']} windows of "
            f"1 s every {w['stride_ms']:g} ms, {w['refractory_s']:g} s refractory; chosen on {w['chosen_on']}.", "",
            f"- missed wake words (FRR): {_pct(w['frr_held_out_voices'])} on held-out synthetic voices (accent, "
            f"variant and speaker never in training), {_pct(w['frr_unseen_voices'])} on unseen voices ({per_voice})",
            f"- {fa}",
            *([f"- {w['conversation_false_accepts']} false accepts in {w['conversation_hours']:.2f} h of actors in "
               f"conversation ({', '.join(w.get('conversation_languages') or [])}; full band, as a microphone hears "
               f"people talking, where the real speech above is mostly prompts through an 8 kHz telephone line) = "
               f"{w['conversation_fa_per_hour']:.2f} per hour; 95 % upper bound "
               f"{w['conversation_fa_per_hour_upper95']:.2f} per hour"] if w.get("conversation_hours") else []),
            *([f"- what validation expected at this point: {w['val_estimated_fa_per_hour']:.2f} false accepts per hour "
               f"(tail of its negatives' peaks, hostside/evaluate.py tail_fa_rate); a real-speech figure far above it "
               f"means validation's synthetic speech does not stand for real speech"]
              if isinstance(w.get("val_estimated_fa_per_hour"), (int, float)) and w.get("real_speech_hours") else []),
            f"- clip accuracy (3 classes, 1 s clips, argmax): {_pct(w['accuracy_held_out_voices'])} held-out voices, "
            f"{_pct(w['accuracy_unseen_voices'])} unseen voices", "",
            "What these mean: the voices are text-to-speech engines, not people; FRR is the share of wake-word clips "
            "on which the detector never fires; every trigger on the real speech is a false accept, and with few "
            "hours the upper bound, not the count, says how rare false accepts are. The accuracy rows of the table "
            "above are the fp32 model, the int8 reference and the firmware on the same test clips (argmax over "
            "3 classes, no threshold).", ""]


def to_markdown(r: dict) -> str:
    acc = r["accuracy"]
    lat = r["latency_ms"]
    ram = r["peak_ram_bytes"]
    ipi = r["instructions_per_inference"]
    lines = [
        f"# pqlr report — {r['board']}",
        "",
        f"{r['board_description']}  ",
        f"model `{r['model_sha256']}`, {r['runs']} inferences, firmware {r['firmware_hello'].get('fw')}",
        "",
        "| figure | value | provenance |",
        "|---|---|---|",
        f"| accuracy, torch fp32 | {_fmt(acc['torch_fp32'], '', 4)} | host |",
        f"| accuracy, numpy int8 reference | {_fmt(acc['numpy_reference'], '', 4)} | host |",
        f"| accuracy, firmware | {_fmt(acc['firmware'], '', 4)} | {r['board']} |",
        f"| bit-exact with the reference | {r['bit_exact']} ({r['bit_exact_detail']['mismatching_inputs']} mismatching) | == on int8 outputs |",
        *([f"| wake score on the test clips (board, one window, no smoothing), median | "
           + (f"null ({ws['reason']}) | {ws['provenance']} |" if ws.get("reason") else
              f"{_fmt(ws['wake_word_median'], '', 3)} on {ws['wake_word_clips']} wake words, "
              f"{_fmt(ws['other_median'], '', 3)} on {ws['other_clips']} others | {ws['provenance']} |")]
          if (ws := r.get("wake_score_on_clips")) else []),
        f"| instructions / inference | {_fmt(ipi['value'], '', 0)}{' (' + ipi['note'] + ')' if ipi.get('note') else ''} | "
        f"{ipi['provenance'] or ipi.get('reason')} |",
        f"| MACs / inference | {r['macs_per_inference']:,} | model |",
        f"| latency (median; p90, p99) | {_fmt(lat['value'], ' ms')} ({_fmt(lat.get('p90'), ' ms')}, {_fmt(lat.get('p99'), ' ms')}) | {lat['provenance']} |",
        f"| flash read / inference | {_fmt(r['flash_bytes_per_inference'], ' B', 0)} | firmware counter |",
        f"| peak RAM | {_fmt(ram['value'], ' B')} | {ram['provenance'] or ram.get('reason')} |",
        f"| current | {_fmt(r['current_ma']['value'], ' mA')} | {r['current_ma'].get('provenance') or r['current_ma'].get('reason')} |",
        f"| energy / inference | {_fmt(r['energy_per_inference_mj']['value'], ' mJ', 4)} | {r['energy_per_inference_mj'].get('provenance') or r['energy_per_inference_mj'].get('reason')} |",
        f"| model.bin | {r['model_bin_bytes']:,} B (weights+params {r['weight_bytes']:,} B) | artifact |",
        "",
        f"Accuracy split: {acc['split']}.",
        "",
        *_wakeword_md(r.get("wakeword")),
        *_detector_md(r.get("detector_on_board"), r["board"]),
        "## Peak RAM",
        "",
        "| part | measured | planned |",
        "|---|---|---|",
        f"| tile buffer | {_fmt(ram['parts']['tile_buffer'])} | {ram['planned']['tile_buffer']:,} |",
        f"| activation arena | {_fmt(ram['parts']['activation_arena'])} | {ram['planned']['activation_arena']:,} |",
        f"| stack | {_fmt(ram['parts']['stack_high_water_mark'])} (high-water mark) | {ram['planned']['stack_estimate']:,} (estimate) |",
        "",
    ]
    if lat.get("cost_model"):
        cm = lat["cost_model"]
        lines += ["## Latency cost model (an estimate)", "",
                  f"`{cm['formula']}` with CPI = {cm['cycles_per_instruction']}, cpu_hz = {cm['cpu_hz']:,}, "
                  f"flash = {cm['flash_bytes_per_second']:,.0f} B/s → compute {lat['compute_ms']:.2f} ms + flash "
                  f"{lat['flash_ms']:.2f} ms. {cm['note']}", ""]
    lines += ["## Layers", "", "| layer | op | MACs | instructions | instr/MAC | flash B | tiles |",
              "|---|---|---|---|---|---|---|"]
    for L in r["layers"]:
        lines.append(f"| {L['name']} | {L['op']} | {L['macs']:,} | {_fmt(L['instructions'], '', 0)} | "
                     f"{_fmt(L['instructions_per_mac'])} | {_fmt(L['flash_bytes'], '', 0)} | {L['tiles']} |")
    t = r["telemetry"]
    lines += ["", f"Telemetry: {t['records']} records, {t['noise_lines']} noise lines skipped, "
                  f"{t['bad_records']} bad records rejected.", ""]
    return "\n".join(lines)


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except Exception:
        return None


def plot_latency(r: dict, path: Path) -> Path | None:
    plt = _plt()
    runs = r["latency_ms"].get("per_run") or []
    if plt is None or not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(runs, bins=min(30, max(5, len(runs) // 2)), color="#4477aa")
    ax.set_xlabel(f"latency per inference, ms ({r['latency_ms']['provenance']})")
    ax.set_ylabel("inferences")
    ax.set_title(f"{r['board']}: p50 {r['latency_ms']['p50']:.2f} / p90 {r['latency_ms']['p90']:.2f} / "
                 f"p99 {r['latency_ms']['p99']:.2f} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ram(r: dict, path: Path) -> Path | None:
    plt = _plt()
    parts = r["peak_ram_bytes"]["parts"]
    if plt is None or any(v is None for v in parts.values()):
        return None
    planned = r["peak_ram_bytes"]["planned"]
    labels = ["tile buffer", "activation arena", "stack"]
    meas = [parts["tile_buffer"], parts["activation_arena"], parts["stack_high_water_mark"]]
    plan = [planned["tile_buffer"], planned["activation_arena"], planned["stack_estimate"]]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    for row, (vals, name) in enumerate(((meas, "firmware"), (plan, "plan"))):
        left = 0
        for v, lab, col in zip(vals, labels, ("#4477aa", "#66ccee", "#228833")):
            ax.barh(row, v, left=left, color=col, label=lab if row == 0 else None)
            left += v
    ax.set_yticks([0, 1], ["firmware", "plan"])
    ax.set_xlabel("bytes of RAM")
    ax.set_title(f"peak RAM on {r['board']}: {r['peak_ram_bytes']['value']:,} B")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_current(r: dict, path: Path) -> Path | None:
    plt = _plt()
    trace = r["current_ma"].get("trace_ma") if r["current_ma"].get("value") is not None else None
    if plt is None or not trace:
        return None
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.plot(trace, marker=".")
    ax.set_xlabel("inference")
    ax.set_ylabel("current, mA (measured)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layers(r: dict, path: Path) -> Path | None:
    plt = _plt()
    if plt is None:
        return None
    names = [L["name"] for L in r["layers"]]
    vals = [L["instructions"] or 0 for L in r["layers"]]
    if not any(vals):
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(names[::-1], [v / 1e6 for v in vals[::-1]], color="#4477aa")
    ax.set_xlabel("instructions per inference (millions, emulated)")
    ax.set_title(f"pqlr on {r['board']}: instructions by layer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: dict, out: Path) -> dict:
    from ..atomic import write_text
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.json", json.dumps(report, indent=1))
    pngs = {"layers": plot_layers(report, out / "layers.png"), "latency": plot_latency(report, out / "latency.png"),
            "ram": plot_ram(report, out / "ram.png"), "current": plot_current(report, out / "current.png")}
    md = to_markdown(report) + "".join(f"\n![{k}]({Path(v).name})\n" for k, v in pngs.items() if v)
    write_text(out / "report.md", md)
    return {"json": str(out / "report.json"), "md": str(out / "report.md"),
            "png": {k: str(v) for k, v in pngs.items() if v}}
