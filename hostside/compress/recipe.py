"""Compression recipes: the ordered stages and their settings, in TOML, checked before any training.

    student = "build/student.pt"      # checkpoint from `pqlr train` (a DS-CNN)
    teacher = "build/teacher.pt"      # optional: distillation in every stage's fine-tuning
    corpus  = "build/corpus"
    board   = "rv32-virt"             # budgets for the plan and model.bin
    output  = "build/micro_kws.bin"
    seed = 0
    threshold = 0.8                   # wake-word operating point; omit it to choose it on validation
    score = "classifier"              # or "phonemes": a student trained with --phoneme-ctc keeps its phoneme head
                                      # through every stage (pruned with the trunk, fine-tuned with its CTC loss)
                                      # and model.bin computes the phoneme wake score (export --score phonemes)
    phoneme_ctc = 0.3                 # that loss's weight in fine-tuning (default: the student's own)
    span = "auto"                     # with score = "phonemes": the audio the score reads, in seconds or "auto"
                                      # (`pqlr eval --span`; default the window), in every stage and on the board
    ema = 0.0                         # > 0: every fine-tuning keeps an exponential moving average of its weights
                                      # (this decay per step, as `pqlr train --ema`) and validation judges that

    [distill]
    temperature = 6.0
    alpha = 0.7
    mix = 0.0                         # > 0: also distil on blended inputs (two clips' features mixed), this weight

    [[stages]]                        # any order; each name at most once
    name = "prune"                    # network slimming
    sparsity = 0.7                    # fraction of channels removed, in [0, 1)
    l1 = 1e-4                         # L1 weight on BatchNorm γ during sparsity training
    sparsity_epochs = 10
    finetune_epochs = 10
    max_group_sparsity = 1.0          # < 1: never prune more than this share of one layer's channels

    [[stages]]
    name = "lowrank"
    rank = 16                         # or energy = 0.9 (retained Σσ²)
    layers = []                       # default: every layer where it saves parameters (pw0.., fc)
    finetune_epochs = 5

    [[stages]]
    name = "quantize"                 # LSQ+ QAT
    wbits = 4                         # 4 or 8
    abits = 8                         # 4 or 8
    first_last_bits = 8
    calib = 200                       # calibration utterances
    epochs = 10
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PqlrError

STAGES = {
    "prune": {"sparsity": 0.7, "l1": 1e-4, "sparsity_epochs": 10, "finetune_epochs": 10, "lr": 2e-3, "min_keep": 2,
              "max_group_sparsity": 1.0},
    "lowrank": {"rank": None, "energy": None, "layers": [], "finetune_epochs": 5, "lr": 1e-3},
    "quantize": {"wbits": 8, "abits": 8, "first_last_bits": 8, "calib": 200, "epochs": 10, "lr": 5e-4},
}
TOP = {"student": None, "teacher": None, "corpus": "build/corpus", "board": "rv32-virt",
       "output": "build/micro_kws.bin", "seed": 0, "threshold": None, "batch_size": 64, "score": "classifier",
       "phoneme_ctc": None, "span": None, "ema": 0.0}
SCORES = ("classifier", "phonemes")
DISTILL = {"temperature": 6.0, "alpha": 0.7, "mix": 0.0}


@dataclass
class Stage:
    name: str
    params: dict


@dataclass
class Recipe:
    student: str
    corpus: str
    stages: list[Stage]
    teacher: str | None = None
    board: str = "rv32-virt"
    output: str = "build/micro_kws.bin"
    seed: int = 0
    threshold: float | None = None       # None: chosen on validation (hostside/evaluate.py)
    batch_size: int = 64
    score: str = "classifier"            # "phonemes": the phoneme head is compressed with the trunk, model.bin computes it
    phoneme_ctc: float | None = None     # the phoneme loss's weight in fine-tuning; None: the student's
    span: float | str | None = None      # score = "phonemes": the span it reads (seconds or "auto"); None: the window
    ema: float = 0.0                     # decay of a weight average over each fine-tuning; 0: off
    distill: dict = field(default_factory=lambda: dict(DISTILL))


def _err(where: str, msg: str):
    raise PqlrError(f"recipe: {where}: {msg}")


def from_dict(raw: dict) -> Recipe:
    unknown = sorted(set(raw) - set(TOP) - {"stages", "distill"})
    if unknown:
        _err("top level", f"unknown field(s) {unknown}; known: {sorted(TOP) + ['distill', 'stages']}")
    if not raw.get("student"):
        _err("student", "missing: the checkpoint to compress")
    distill = dict(DISTILL)
    for k, v in (raw.get("distill") or {}).items():
        if k not in DISTILL:
            _err(f"distill.{k}", f"unknown field; known: {sorted(DISTILL)}")
        distill[k] = float(v)
    if distill["temperature"] <= 0:
        _err("distill.temperature", f"{distill['temperature']} must be > 0")
    if not 0 <= distill["alpha"] <= 1:
        _err("distill.alpha", f"{distill['alpha']} must be in [0, 1]")
    if not 0 <= distill["mix"] <= 10:
        _err("distill.mix", f"{distill['mix']} must be in [0, 10] (0: off)")
    stages, seen = [], set()
    for i, st in enumerate(raw.get("stages") or []):
        name = st.get("name")
        where = f"stages[{i}]"
        if name not in STAGES:
            _err(f"{where}.name", f"unknown stage {name!r}; known: {sorted(STAGES)}")
        if name in seen:
            _err(f"{where}.name", f"stage {name!r} appears twice")
        seen.add(name)
        params = dict(STAGES[name])
        for k, v in st.items():
            if k == "name":
                continue
            if k not in params:
                _err(f"{where}.{k}", f"unknown field for stage {name}; known: {sorted(params)}")
            params[k] = v
        _check_stage(name, params, where)
        stages.append(Stage(name, params))
    if not stages:
        _err("stages", "no stages: add [[stages]] tables (prune, lowrank, quantize)")
    top = {k: raw.get(k, v) for k, v in TOP.items()}
    if top["threshold"] is not None and (not isinstance(top["threshold"], (int, float)) or not 0 < top["threshold"] < 1):
        _err("threshold", f"{top['threshold']!r} must be in (0, 1), or omitted to choose it on validation")
    if top["score"] not in SCORES:
        _err("score", f"{top['score']!r}: one of {', '.join(map(repr, SCORES))} (the board computes either)")
    pc = top["phoneme_ctc"]
    if pc is not None and (top["score"] != "phonemes" or isinstance(pc, bool) or not isinstance(pc, (int, float))
                           or not 0 < pc <= 10):
        _err("phoneme_ctc", f"{pc!r}: a weight in (0, 10] for score = \"phonemes\" (omit it: the student's own)")
    sp = top["span"]
    if sp is not None and (top["score"] != "phonemes" or isinstance(sp, bool)
                           or not (sp == "auto" or isinstance(sp, (int, float)) and 0 < sp <= 10)):
        _err("span", f"{sp!r}: seconds (e.g. 1.8) or \"auto\", for score = \"phonemes\" (omit it: the window)")
    if isinstance(top["ema"], bool) or not isinstance(top["ema"], (int, float)) or not 0 <= top["ema"] < 1:
        _err("ema", f"{top['ema']!r}: a decay in [0, 1), e.g. 0.99 (0: off)")
    return Recipe(stages=stages, distill=distill, **top)


def _check_stage(name: str, p: dict, where: str) -> None:
    for k, v in p.items():
        if k.endswith("epochs") and (not isinstance(v, int) or v < 0):
            _err(f"{where}.{k}", f"{v!r} must be a whole number ≥ 0")
    if name == "prune":
        if not isinstance(p["sparsity"], (int, float)) or not 0 <= p["sparsity"] < 1:
            _err(f"{where}.sparsity", f"{p['sparsity']!r} must be in [0, 1)")
        if p["l1"] < 0:
            _err(f"{where}.l1", f"{p['l1']} must be ≥ 0")
        if not 0 < p["max_group_sparsity"] <= 1:
            _err(f"{where}.max_group_sparsity", f"{p['max_group_sparsity']!r} must be in (0, 1]")
    elif name == "lowrank":
        if (p["rank"] is None) == (p["energy"] is None):
            _err(where, "give exactly one of rank (a whole number ≥ 1) or energy (in (0, 1])")
        if p["rank"] is not None and (not isinstance(p["rank"], int) or p["rank"] < 1):
            _err(f"{where}.rank", f"{p['rank']!r} must be a whole number ≥ 1")
        if p["energy"] is not None and not 0 < p["energy"] <= 1:
            _err(f"{where}.energy", f"{p['energy']!r} must be in (0, 1]")
    elif name == "quantize":
        for k in ("wbits", "abits", "first_last_bits"):
            if p[k] not in (4, 8):
                _err(f"{where}.{k}", f"bit width {p[k]!r} is not in {{4, 8}}")
        if not isinstance(p["calib"], int) or p["calib"] < 1:
            _err(f"{where}.calib", f"{p['calib']!r} must be a whole number ≥ 1")


def load_recipe(path: Path) -> Recipe:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PqlrError(f"no recipe at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PqlrError(f"recipe {path} is not valid TOML: {exc}") from None
    return from_dict(raw)


def check_against_model(recipe: Recipe, model) -> None:
    """Checks that need the model (a rank larger than a named layer), still before any training."""
    from .lowrank import plan_ranks
    from ..models.dscnn import DSCNN
    if not isinstance(model, DSCNN):
        _err("student", f"the PQLR pipeline compresses DS-CNN students; this checkpoint is a {type(model).__name__} "
                        f"(a transformer quantises with QAT through `pqlr export --checkpoint … --qat-epochs N`)")
    for i, st in enumerate(recipe.stages):
        if st.name == "lowrank":
            try:
                plan_ranks(model, st.params["rank"], st.params["energy"], st.params["layers"] or None)
            except PqlrError as exc:
                _err(f"stages[{i}]", str(exc))


def check_against_checkpoint(recipe: Recipe, ck: dict) -> None:
    """score = "phonemes" needs the phoneme head `pqlr train --phoneme-ctc` keeps beside the student."""
    if recipe.score == "phonemes" and "phoneme_head" not in ck:
        _err("score", f"\"phonemes\" compresses the student's phoneme head with it, and {recipe.student} has none: "
                      f"train it with `pqlr train --phoneme-ctc 0.3`, or use score = \"classifier\"")
