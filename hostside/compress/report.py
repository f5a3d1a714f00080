"""The per-stage compression report: JSON, Markdown and a PNG (size vs accuracy across stages)."""
from __future__ import annotations

import json
from pathlib import Path


def _f(v, pct=False, nd=0):
    if v is None:
        return "n/a"
    return f"{100 * v:.2f} %" if pct else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")


def _score_line(r: dict) -> list[str]:
    """What FRR and FA/h read: with score = "phonemes", the phoneme head's score (float in the fp32 rows, the integer
    model's own in the exported row) — said, since the table's columns look as they do for the classifier."""
    if r["recipe"].get("score") != "phonemes":
        return []
    return [f"Wake score: the phoneme score (phoneme loss weight {r['recipe'].get('phoneme_ctc')} in fine-tuning); "
            f"per row: " + ", ".join(f"{s['name']} {s.get('score')}" for s in r["stages"] if not s.get("same_as")) +
            "; clip accuracy is the classifier's."]


def markdown(r: dict) -> str:
    lines = ["# PQLR compression report", "", f"Recipe: {json.dumps(r['recipe']['stages'])}",
             f"Teacher: {r['recipe']['teacher']}; distillation {r['recipe']['distill']}", *_score_line(r), "",
             "| stage | bits | params | weights B | activations B | code B | total B | held-out voices | unseen engine | FRR | FA/h |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["stages"]:
        name = f"{s['name']} (= {s['same_as']})" if s.get("same_as") else s["name"]
        lines.append(f"| {name} | {s['bits']} | {_f(s['params'])} | {_f(s['weight_bytes'])} | "
                     f"{_f(s['activation_bytes'])} | {_f(s['code_bytes'])} | {_f(s['total_bytes'])} | "
                     f"{_f(s['held_out_voice_accuracy'], True)} | {_f(s['unseen_engine_accuracy'], True)} | "
                     f"{_f(s['false_rejection_rate'], True)} | {_f(s['false_accepts_per_hour'], nd=2)} |")
    det = [s for s in r["stages"] if s.get("frr_at_fa_per_hour")]
    if det:
        limits = list(det[0]["frr_at_fa_per_hour"])
        lines += ["", "At equal false accepts — FRR at the lowest threshold whose real-speech false accepts stay within "
                  "each limit (read on the test data to compare stages, not an operating point):", "",
                  "| stage | " + " | ".join(f"FRR at ≤ {x} FA/h" for x in limits) + " |", "|---|" + "---|" * len(limits)]
        for s in det:
            name = f"{s['name']} (= {s['same_as']})" if s.get("same_as") else s["name"]
            lines.append(f"| {name} | " + " | ".join(_f(s["frr_at_fa_per_hour"][x], True) for x in limits) + " |")
        lines.append("")
    agree = [s for s in r["stages"] if s.get("agreement_with_student")]
    if agree:
        lines += ["", "Top-1 agreement of each stage's clip classifier with the uncompressed student (held-out clips; "
                  "the exported row: the integer model). Accuracies d points apart disagree on at least d % of clips:", ""]
        for s in agree:
            lines.append(f"- {s['name']}: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in s["agreement_with_student"].items()))
            gaps = s.get("gap_to_student") or {}
            if gaps:
                lines.append("  accuracy minus the student's, points (95 % interval for paired proportions): " +
                             ", ".join(f"{k} {g['difference_points']:+.2f} ({g['ci_points'][0]:+.2f} to "
                                       f"{g['ci_points'][1]:+.2f}; {g['a_only']} clips right only before, "
                                       f"{g['b_only']} only after)" for k, g in gaps.items()))
        lines.append("")
    for s in r["stages"]:
        if s.get("widths_before"):
            lines.append(f"- prune: channel widths {s['widths_before']} → {s['widths_after']}")
        for layer, d in (s.get("factorised") or {}).items():
            lines.append(f"- lowrank {layer}: rank {d['rank']} " + ("applied" if d["applied"] else f"skipped ({d['reason']})"))
    e = r["export"]
    lines += ["", f"model.bin: `{e['model_bin']}` sha256 `{e['sha256']}`; plan: arena {e['plan']['arena_bytes']} B, "
                  f"tile buffer {e['plan']['tile_buffer_bytes']} B, {e['plan']['tiles']} tiles."]
    if e.get("agreement"):
        a = e["agreement"]
        lines.append(f"Integer model vs fake-quant model on {a['n']} held-out inputs: top-1 agreement "
                     f"{100 * a['top1_agreement']:.2f} %, identical output vectors {100 * a['bit_exact_outputs']:.2f} %.")
    t = r.get("timings_s") or {}
    if t.get("total_s") is not None:
        names = {"load_s": "loading the corpus", "fit_s": "fine-tuning", "evaluate_s": "evaluating every stage",
                 "export_s": "lowering, model.bin, the integer check and the code-size build"}
        parts = [f"{what} {t[k]:,.0f} s" for k, what in names.items() if t.get(k) is not None]
        lines.append(f"Time: {t['total_s']:,.0f} s" + (f" — {'; '.join(parts)}" if parts else "") + ".")
    lines += ["", *(f"- {k}: {v}" for k, v in r["notes"].items()), ""]
    return "\n".join(lines)


def plot(r: dict, path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return None
    rows = [s for s in r["stages"] if s.get("unseen_engine_accuracy") is not None or s.get("held_out_voice_accuracy") is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, mk in (("held_out_voice_accuracy", "held-out voices", "o"), ("unseen_engine_accuracy", "unseen engine", "s")):
        pts = [(s["weight_bytes"], 100 * s[key], s["name"]) for s in rows if s.get(key) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=mk, label=label)
            for x, y, n in pts:
                ax.annotate(n, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("weight bytes (log)")
    ax.set_ylabel("accuracy, %")
    ax.set_title("PQLR: size vs accuracy by stage")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def write_compress_report(r: dict, output: Path) -> dict:
    base = Path(output).with_suffix("")
    paths = {"json": f"{base}.report.json", "md": f"{base}.report.md", "png": f"{base}.report.png"}
    Path(paths["json"]).write_text(json.dumps(r, indent=1, default=str))
    Path(paths["md"]).write_text(markdown(r))
    paths["png"] = plot(r, Path(paths["png"]))
    return paths
