"""The public API: one function per arrow of the data path. The CLI and the Makefile are thin shells
over these. Every stage reads the previous stage's file and writes its own.

    synth → train → export (int8 + plan + model.bin) → render → build → flash → run → report
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .artifact import Artifact, read_model_bin, write_model_bin
from .boards import Board, as_board
from .errors import PqlrError
from .graph import SKIP_OPS, ctc_offset, ctc_repeats, ctc_span, ctc_state_bytes
from .data.texts import NATIVE_WIDE

DEFAULT_CORPUS = Path("build/corpus")


# --- data ----------------------------------------------------------------------------------------
def synth(out: Path = DEFAULT_CORPUS, progress: bool = True, **cfg):
    """Generate (or reuse) a synthetic corpus; cfg are SynthConfig fields."""
    from .data.synth import SynthConfig, synth_corpus
    fields = SynthConfig.__dataclass_fields__
    bad = sorted(set(cfg) - set(fields))
    if bad:
        raise PqlrError(f"unknown corpus option(s) {bad}; known: {sorted(fields)}")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    return synth_corpus(Path(out), SynthConfig(**cfg), progress=progress)


def load_features(corpus_dir: Path, split: str | None = None, frontend=None):
    """(corpus, features, labels) for a corpus folder (pqlr, Speech Commands v2 or <class>/ layout)."""
    from .data.features import load_features as load
    return load(Path(corpus_dir), split, frontend)


# --- training ------------------------------------------------------------------------------------
def train(corpus_dir: Path, out: Path, model: str = "dscnn", features: str = "logmel40", epochs: int = 30,
          seed: int = 0, progress: bool = True, batch_size: int = 64, lr: float = 3e-3,
          vtlp: tuple[float, float] | None = None, augment: dict | None = None, ema: float = 0.0,
          pair_loss: float = 0.0, pair_margin: float = 4.0, pair_sides: str = "both", teacher: Path | list | None = None,
          kd_alpha: float = 0.7, kd_temperature: float = 6.0, phoneme_ctc: float = 0.0,
          phoneme_negatives: float = 0.0, phoneme_negative_floor: float = 0.3, phoneme_distill: float = 0.0,
          phoneme_distill_on: str = "frames", **model_options) -> dict:
    """Train a registered model on a corpus's train split, select on val; write a checkpoint.
    vtlp: a range of vocal-tract length factors (e.g. (0.9, 1.1)) drawn per example in training; None: off.
    augment: TrainConfig's augmentation settings to change (noise_prob, snr_db, gain_db, time_shift_ms, band_prob,
    band_hz, time_masks, time_mask_frames, freq_masks, freq_mask_fraction, label_smoothing); None: the defaults.
    ema: decay of an exponential moving average of the weights, which validation then judges and the checkpoint
    keeps (e.g. 0.999); 0: off.
    pair_loss: weight of a margin loss between each wake-word training clip and a near miss said by the same voice
    ("hey kimi" / "hey timi", augmented alike; hostside/data/pairs.py): the wake log-odds must differ by pair_margin;
    0: off. pair_sides "miss" moves only the near miss (the wake-word clip's score is its target); "capped" moves the
    wake-word clip only up to the log-odds the label-smoothed cross-entropy aims at. Needs a wake-word corpus made by
    `pqlr data synth`.
    teacher: a checkpoint of the same front end and classes (typically a wider model trained on this corpus) to
    distil from, or a list of such checkpoints (e.g. the same recipe's students of other seeds), distilled from as
    one ensemble whose soft labels are the mean of theirs at temperature T (TeacherEnsemble): the loss becomes
    kd_alpha·T²·KL(teacher ‖ student at temperature T) + (1 − kd_alpha)·CE, the teacher seeing each augmented
    batch as the student does. A teacher trained on a corpus whose training voices
    include this corpus's val, test or unseen voices is refused (its soft labels would carry them in).
    phoneme_ctc: weight of an auxiliary CTC loss that asks the student's trunk, frame by frame, for the phonemes
    espeak-ng reads each training clip's text as (where its whole utterance is in the window: the wake word, near
    misses, short words; hostside/data/phonetic.py); the head is saved beside the student's weights, not among them
    (export and device unchanged), for `evaluate(score="phonemes")`; 0: off. DS-CNN students only.
    phoneme_negatives (with phoneme_ctc): weight of a hinge on the phoneme wake score of every unknown training clip
    (train.PhonemeHead.negative_loss: its log above log(phoneme_negative_floor)), the score trained to stay low on
    what is not the phrase; 0: off.
    phoneme_distill (with phoneme_ctc and teacher): weight of a frame-level distillation of the phoneme head from the
    teachers' own phoneme heads (each teacher trained with --phoneme-ctc on this corpus's phoneme vocabulary): KL of
    the mean of their per-frame phoneme posteriors to the student's, on every training clip (train.PhonemeTeacher,
    PhonemeHead.distill_loss). kd_alpha 0 then distils the phoneme head alone (the classifier learns from the hard
    labels); 0: off. phoneme_distill_on "score": distil the wake score instead — each window's score against the
    mean of the teachers' scores of it, binary cross-entropy (PhonemeHead.distill_score_loss)."""
    import torch
    from .data.features import preset
    from .models import build_model, param_count
    from .data.corpus import split_audio
    from .data.noise import noise_bank
    from .train import TrainConfig, accuracy, augment_config, save_checkpoint
    from .train import train as fit
    if vtlp is not None and not (0.5 <= vtlp[0] <= vtlp[1] <= 2.0):
        raise PqlrError(f"vtlp {vtlp}: a range lo,hi with 0.5 <= lo <= hi <= 2 (e.g. 0.9,1.1)")
    cfg = TrainConfig(epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,          # checked before the corpus loads
                      **({"vtlp": tuple(float(v) for v in vtlp)} if vtlp is not None else {}),
                      ema=float(ema), pair_weight=float(pair_loss), pair_margin=float(pair_margin),
                      pair_sides=pair_sides, ctc_weight=float(phoneme_ctc), ctc_negative=float(phoneme_negatives),
                      ctc_negative_floor=float(phoneme_negative_floor), ctc_distill=float(phoneme_distill),
                      ctc_distill_on=phoneme_distill_on,
                      **augment_config(augment or {}))
    if phoneme_distill > 0 and not teacher_paths(teacher):
        raise PqlrError("--phoneme-distill distils the phoneme head from teachers' heads: give --teacher CKPT (once or "
                        "more), each trained with --phoneme-ctc on this corpus")
    fe = preset(features)
    corpus, xv, yv = load_features(corpus_dir, "val", fe)
    audio, y = split_audio(corpus)
    if len(audio) == 0:
        raise PqlrError(f"corpus {corpus_dir} has no training clips")
    torch.manual_seed(seed)                 # the initial weights are part of the run
    net = build_model(model, fe.shape, len(corpus.classes), **model_options)
    pairing = {}
    if cfg.pair_weight > 0:
        from .data.pairs import corpus_partners
        pairing["partners"], pairing["wake"] = corpus_partners(corpus)
    ctc = {}
    if cfg.ctc_weight > 0:
        from .data.phonetic import clip_targets, keyword_classes
        targets, vocab, ctc_stats = clip_targets(corpus.split("train"), keyword_classes(corpus.classes))
        if not ctc_stats["with_phonemes"]:
            raise PqlrError(f"--phoneme-ctc: none of {corpus_dir}'s training clips has a text short enough to be "
                            f"whole in its window; the loss needs a corpus made by `pqlr data synth`")
        ctc["phonemes"] = (targets, len(vocab))
        keywords = set(keyword_classes(corpus.classes))
        seqs = sorted({tuple(t) for t, c in zip(targets, corpus.split("train")) if t and c.label in keywords})
        if cfg.ctc_negative > 0:
            if "unknown" not in corpus.classes:
                raise PqlrError(f"--phoneme-negatives: {corpus_dir} has no unknown class to read negatives from")
            ctc["negatives"] = (corpus.classes.index("unknown"), seqs)
            ctc_stats["negative_sequences"] = len(seqs)
    distill = {}
    teachers = teacher_paths(teacher)
    members = [_teacher(t, fe, corpus, kd_alpha, kd_temperature) for t in teachers]   # each checked
    if cfg.ctc_distill > 0:
        ctc["phoneme_teacher"] = _phoneme_teacher(teachers, vocab, seqs)
        ctc_stats["distilled_from"] = [str(t) for t in teachers]
        ctc_stats["distilled_on"] = cfg.ctc_distill_on
    if teachers and not (cfg.ctc_distill > 0 and kd_alpha == 0):       # kd_alpha 0: the classifier on hard labels
        from .compress.distill import TeacherEnsemble, kd_loss
        if len(members) == 1:
            t_net, distilled = members[0]
        else:                   # several teachers: the mean of their softened posteriors (TeacherEnsemble)
            t_net = TeacherEnsemble([m for m, _ in members], kd_temperature)
            distilled = {**members[0][1], "teacher": [d["teacher"] for _, d in members],
                         "teacher_params": sum(d["teacher_params"] for _, d in members),
                         "teacher_val_acc": [d["teacher_val_acc"] for _, d in members],
                         "splits_checked": all(d["splits_checked"] for _, d in members),
                         "ensemble": "mean of softened posteriors"}
        distill = {"teacher": t_net, "loss_fn": lambda z_s, yb, z_t: kd_loss(
            z_s, z_t, yb, kd_temperature, kd_alpha, label_smoothing=cfg.label_smoothing)}
    net, info = fit(net, fe, audio, y, xv, yv, cfg, noise_bank=noise_bank(seed=seed), progress=progress, **pairing,
                    **distill, **ctc)
    if distill:
        info["distillation"] = distilled
    if ctc:
        info["phoneme_ctc"] = ctc_stats
    metrics = {"val_acc": accuracy(net, xv, yv)}
    save_checkpoint(Path(out), net, model, {"classes": list(corpus.classes), "frontend": fe.to_dict(),
                                             "features": features, "corpus": str(corpus_dir), "task": corpus.task,
                                             "metrics": metrics, "seed": seed, "epochs": epochs, **info})
    return {"checkpoint": str(out), "model": model, "params": param_count(net), "metrics": metrics,
            "device": info["device"]}


def teacher_paths(teacher) -> list[Path]:
    """train's `teacher` (and a checkpoint's recorded distillation teacher) as a list: none, one path, or several."""
    if not teacher:
        return []
    return [Path(teacher)] if isinstance(teacher, (str, Path)) else [Path(t) for t in teacher]


def _phoneme_teacher(teachers: list[Path], vocab: list[str], sequences: list[tuple[int, ...]]):
    """train.PhonemeTeacher of the teachers' trunks and phoneme heads, each checked to read the student's phoneme
    vocabulary (the same corpus's clip_targets)."""
    from .train import PhonemeHead, PhonemeTeacher, load_checkpoint
    members, heads = [], []
    for path in teachers:
        net, ck = load_checkpoint(path)
        ctc = ck.get("phoneme_ctc") or {}
        if "phoneme_head" not in ck or not hasattr(net, "trunk"):
            raise PqlrError(f"teacher {path} has no phoneme head to distil from: train it with --phoneme-ctc 0.3")
        if list(ctc.get("vocabulary") or []) != list(vocab):
            raise PqlrError(f"teacher {path}'s phoneme head reads another vocabulary than this corpus's "
                            f"({len(ctc.get('vocabulary') or [])} against {len(vocab)} phonemes): train it on this corpus")
        members.append(net.eval())
        heads.append(PhonemeHead.from_state(ck["phoneme_head"], len(vocab)).eval())
    return PhonemeTeacher(members, heads, sequences)


def _teacher(path: Path, fe, corpus, alpha: float, temperature: float):
    """The teacher network for api.train's distillation, checked against the student's front end, classes and
    splits (when the teacher's corpus manifest can be read: `splits_checked` says whether it was); and what the
    student's checkpoint records of it."""
    from .models import param_count
    from .train import load_checkpoint
    if not 0.0 <= alpha <= 1.0:
        raise PqlrError(f"kd alpha {alpha}: the soft-label share of the loss, in [0, 1] (e.g. 0.7)")
    if not temperature > 0:
        raise PqlrError(f"kd temperature {temperature}: a number > 0 (e.g. 6)")
    net, ck = load_checkpoint(path)
    if ck.get("frontend") != fe.to_dict():
        raise PqlrError(f"teacher {path} was trained on other features ({ck.get('features')}); train the teacher "
                        f"with the student's --features and front end")
    if list(ck.get("classes") or []) != list(corpus.classes):
        raise PqlrError(f"teacher {path} has classes {ck.get('classes')}, the corpus {list(corpus.classes)}: "
                        f"train the teacher on this corpus")
    seen = set()
    t_manifest = Path(ck.get("corpus", "")) / "manifest.json"
    if t_manifest.is_file():
        seen = set(json.loads(t_manifest.read_text()).get("meta", {}).get("voices", {}).get("train", []))
    held = {v for s in ("val", "test", "unseen") for v in corpus.meta.get("voices", {}).get(s, [])}
    if seen & held:
        raise PqlrError(f"teacher {path} was trained on voices this corpus holds out ({', '.join(sorted(seen & held)[:5])}"
                        f"{' …' if len(seen & held) > 5 else ''}): its soft labels would carry them into training; "
                        f"train the teacher on a corpus with this corpus's splits")
    return net, {"teacher": str(path), "teacher_model": ck.get("model"), "teacher_params": param_count(net),
                 "teacher_val_acc": (ck.get("metrics") or {}).get("val_acc"), "alpha": float(alpha),
                 "temperature": float(temperature), "splits_checked": t_manifest.is_file()}


def mine(checkpoint: Path, corpus_dir: Path, out: Path, negatives: int = 1000, floor: float = 0.5, epochs: int = 5,
         lr: float = 3e-4, seed: int | None = None, max_hours: float | None = None, repeat: int = 1,
         progress: bool = True) -> dict:
    """Hard-negative mining: fine-tune a wake-word checkpoint on the windows of the training levels' dialogue it
    fires on most (hostside/mine.py)."""
    from .mine import finetune
    return finetune(Path(checkpoint), Path(corpus_dir), Path(out), negatives=negatives, floor=floor, epochs=epochs,
                    lr=lr, seed=seed, max_hours=max_hours, repeat=repeat, progress=progress)


def evaluate(checkpoint: Path, corpus_dir: Path, out: Path | None = None, threshold: float | None = None,
             stride_ms: float = 100.0, smooth: int | str | None = None, target_fa_per_hour: float = 1.0,
             rule: str = "count", score: str = "classifier", span_s: float | str | None = None,
             best_span: bool = False, fuse: float = 0.0, span_from: str = "centre", repeats: bool = True) -> dict:
    """Accuracy per split and engine, confusion; for a wake word the streaming detector's FRR and false
    accepts per hour (with the 95 % upper bound), at a threshold chosen on validation unless given, the
    protocol's smoothing unless given ("validation": chosen there too), and the DET curve (hostside/evaluate.py
    states the protocol). score: what the detector reads as each window's wake score — the classifier's posterior,
    or the phoneme head's score of the phrase (hostside/keyword.py: "phonemes", "phonemes-anywhere"; a checkpoint
    trained with --phoneme-ctc); clip accuracy is the classifier's either way.
    A model.bin instead of a checkpoint: the integer model as the board computes it (the numpy reference, bit-exact
    with the firmware; front end and classes from model.json); its wake score is what it computes (the classifier,
    or the phoneme score of `pqlr export --score phonemes`), so `score` must be left as it is.
    span_s: the audio the `phonemes` score reads (keyword.PhonemeScorer; default the window); "auto": the smallest
    span that holds 99 % of the corpus's training wake phrases (keyword.phrase_span). A model.bin reads the span it
    was exported with. fuse: the classifier's weight in a phoneme wake score (keyword.PhonemeScorer). span_from:
    where the span reads its earlier blocks ("centre", the protocol; "first": before 2026-12-07, keyword.SPAN_FROM).
    repeats: each phoneme of the `phonemes` score may be several spikes with blanks between (the protocol since
    2026-12-07; keyword.repeat_log_prob)."""
    from .data.corpus import load_corpus
    from .data.features import FrontEnd
    from .evaluate import evaluate as run_eval
    from .train import load_checkpoint, predict
    from .keyword import corpus_span, detector_fn
    if Path(checkpoint).suffix == ".bin":
        if fuse:
            raise PqlrError("--fuse: a model.bin's wake score is the one it was exported with")
        if span_s is not None or span_from != "centre" or not repeats:
            raise PqlrError("--span, --span-from, --phoneme-repeats: a model.bin's ctc op reads the span it was exported "
                            "with, and scores as exported (`pqlr export --span … --phoneme-repeats …`); they are for "
                            "checkpoints")
        return _evaluate_model_bin(Path(checkpoint), Path(corpus_dir), out, threshold, stride_ms, smooth,
                                   target_fa_per_hour, rule, score)
    net, ck = load_checkpoint(Path(checkpoint))
    span_s = corpus_span(span_s, net, ck, corpus_dir, stride_ms)
    stream_fn = detector_fn(ck, score, span_s, stride_ms, best_span, fuse, span_from, repeats)
    corpus = load_corpus(Path(corpus_dir))
    if list(corpus.classes) != list(ck["classes"]):
        raise PqlrError(f"the checkpoint's classes {ck['classes']} are not the corpus's {list(corpus.classes)}")
    fe = FrontEnd.from_dict(ck["frontend"])
    if getattr(stream_fn, "streaming", False):          # a span that is no whole number of blocks: refused before work
        stream_fn(net, np.zeros((1, *fe.shape), np.float32))
        stream_fn.new_stream()
    return run_eval(net, corpus, fe, predict, threshold=threshold,
                    stride_ms=stride_ms, smooth=smooth, out=out, name=ck.get("model", "model"),
                    target_fa_per_hour=target_fa_per_hour, rule=rule, stream_fn=stream_fn, score=score)


def _evaluate_model_bin(model_bin: Path, corpus_dir: Path, out, threshold, stride_ms, smooth, target_fa_per_hour,
                        rule, score) -> dict:
    """evaluate() of an integer model (model.bin and its model.json)."""
    from .data.corpus import load_corpus
    from .data.features import FrontEnd
    from .evaluate import evaluate as run_eval
    from .keyword import GraphPredictor, graph_span
    art = read_model_bin(model_bin)
    manifest = model_bin.with_suffix(".json")
    meta = json.loads(manifest.read_text()) if manifest.is_file() else {}
    if not meta.get("frontend") or not meta.get("classes"):
        raise PqlrError(f"evaluating {model_bin} needs its front end and classes from {manifest} (written beside it "
                        f"by `pqlr export`)")
    g = art.graph
    computes = "phonemes" if g.output_layer.op == "ctc" else "classifier"
    if score not in ("classifier", computes):
        raise PqlrError(f"--score {score}: a model.bin's wake score is the one it computes ({computes}); export the "
                        f"checkpoint with `pqlr export --score phonemes` for the phoneme score on the board")
    corpus = load_corpus(corpus_dir)
    if list(corpus.classes) != list(meta["classes"]) or g.class_outputs != len(corpus.classes):
        raise PqlrError(f"the model's classes {meta['classes']} are not the corpus's {list(corpus.classes)}")
    span = graph_span(g, meta["frontend"])
    if span and abs(span["stride_ms"] - stride_ms) > 1e-6:
        raise PqlrError(f"{model_bin}'s phoneme score reads {span['span_s']:g} s of windows {span['stride_ms']:g} ms "
                        f"apart: evaluate it with --stride-ms {span['stride_ms']:g} (or export it again with "
                        f"--stride-ms {stride_ms:g})")
    g.frontend = meta["frontend"]                  # the stream predictor reads its span from it (eval.json records it)
    return run_eval(None, corpus, FrontEnd.from_dict(meta["frontend"]), GraphPredictor(g, wake_score=False),
                    threshold=threshold, stride_ms=stride_ms, smooth=smooth, out=out, name=f"{model_bin.name} (integer reference)",
                    target_fa_per_hour=target_fa_per_hour, rule=rule, stream_fn=GraphPredictor(g, stream=True),
                    score=f"{computes} (int8)")


# --- export: int8 PTQ → integer graph → plan → model.bin ----------------------------------------
def export(checkpoint: Path, corpus_dir: Path, board: str | Board, out: Path, calib_size: int = 200,
           qat_epochs: int = 0, progress: bool = True, wbits: int = 8, streaming: bool = False,
           mode: str = "tiled", score: str = "classifier", span_s: float | str | None = None,
           stride_ms: float = 100.0, repeats: bool = True) -> Artifact:
    """DS-CNN: int8 PTQ. Transformer: the integer-only transformer (hostside/compress/qtransformer.py),
    calibrated, then `qat_epochs` of quantisation-aware fine-tuning (0: calibration only); `wbits` 4 stores
    the encoder blocks' linear weights as int4 (the embedding and the classifier stay int8). score "phonemes": a
    DS-CNN trained with the phoneme loss also computes keyword.py's `phonemes` wake score (export/ptq.py
    phoneme_branch); the output is then the class logits and the score. span_s: the audio that score reads
    (keyword.PhonemeScorer's span, for windows stride_ms apart); longer than the window, the ctc op keeps the earlier
    windows' centre head frames between inferences (hostside/graph.py) and the model is stateful: the board and the
    reference must then see consecutive windows of one stream, stride_ms apart; "auto": as in evaluate. repeats: the
    ctc lets each phoneme be several spikes (as evaluate's; the ctc's pad_r)."""
    from .plan import make_plan
    from .train import load_checkpoint
    b = as_board(board)
    model, ck = load_checkpoint(Path(checkpoint))
    kind = ck.get("kind", "dscnn")
    if kind not in ("dscnn", "transformer"):
        raise PqlrError(f"export supports DS-CNN and transformer models; {ck.get('model')} is a {kind}")
    phonemes = None
    if score != "classifier":
        from .keyword import PhonemeScorer, corpus_span
        if score != "phonemes":
            raise PqlrError(f"export --score {score!r}: classifier or phonemes (the board computes `phonemes`; "
                            f"`phonemes-anywhere` is host-only)")
        if kind != "dscnn" or streaming:
            raise PqlrError("export --score phonemes: a DS-CNN window model (not a transformer, not --streaming)")
        PhonemeScorer(ck, "phonemes")                # says what to do when the checkpoint has no phoneme head
        span_s = corpus_span(span_s, model, ck, corpus_dir, stride_ms)
        ps = PhonemeScorer(ck, "phonemes", span_s=span_s, stride_ms=stride_ms, repeats=repeats)
        phonemes = {"head": ps.head, "sequences": ps.sequences, "span": ps.span_fields, "repeats": ps.repeats}
    elif span_s is not None:
        raise PqlrError("export --span: the span is the `phonemes` score's (add --score phonemes)")
    if phonemes is not None and ps.streaming:       # a span that is no whole number of blocks: refused before work
        from .data.features import FrontEnd
        ps(model, np.zeros((1, *FrontEnd.from_dict(ck.get("frontend")).shape), np.float32))
    _, x, _ = load_features(corpus_dir, "train", ck.get("frontend"))
    rng = np.random.default_rng(0)
    calib = x[rng.permutation(len(x))[:calib_size]]
    if kind == "transformer":
        net = quant_transformer(model, ck, corpus_dir, calib, qat_epochs, progress, wbits=wbits)
        graph = net.to_int_graph(tuple(ck["classes"]), ck.get("frontend"))
    else:
        if qat_epochs or wbits != 8:
            raise PqlrError("--qat-epochs and --wbits are for transformers; a DS-CNN's QAT and int4 are "
                            "`pqlr compress --recipe`")
        from .export import quantize_ptq
        graph = quantize_ptq(model, calib, tuple(ck["classes"]), ck.get("frontend"), phonemes)
    if streaming:                       # one feature frame per step, the window's past in stream layers
        from .export.streaming import to_streaming
        graph = to_streaming(graph)
    plan = make_plan(graph, b, mode=mode)          # raises BudgetError with every number, before anything is built
    art = write_model_bin(Path(out), graph, plan)
    art.graph.classes, art.graph.frontend = graph.classes, graph.frontend
    return art


def quant_transformer(model, ck: dict, corpus_dir: Path, calib: np.ndarray, qat_epochs: int = 0,
                      progress: bool = True, lr: float = 3e-4, seed: int = 0, wbits: int = 8):
    """The integer transformer, calibrated on `calib`, fine-tuned for `qat_epochs` on the corpus's train split
    (with the training augmentation; best epoch on val)."""
    from .compress.qtransformer import build_quant_transformer
    from .data.features import FrontEnd
    from .train import TrainConfig, train
    if wbits not in (4, 8):
        raise PqlrError(f"weight bits {wbits}: 8 or 4")
    net = build_quant_transformer(model, calib, wbits=wbits)
    if qat_epochs:
        from .data.corpus import load_corpus, split_audio
        from .data.noise import noise_bank
        corpus = load_corpus(Path(corpus_dir))
        fe = FrontEnd.from_dict(ck["frontend"])
        audio, y = split_audio(corpus)
        _, xv, yv = load_features(corpus_dir, "val", fe)
        net, _ = train(net, fe, audio, y, xv, yv, TrainConfig(epochs=qat_epochs, lr=lr, seed=seed),
                       noise_bank=noise_bank(seed=seed), progress=progress)
    return net.eval()


def inspect(model_bin: Path) -> dict:
    art = read_model_bin(Path(model_bin))
    g = art.graph
    return {"model_sha256": art.model_sha256, "bytes": art.size, "input": list(g.input_shape),
            "input_scale": g.input_scale, "input_zero_point": g.input_zp, "macs": g.total_macs,
            "arena_bytes": art.arena_bytes, "tile_buffer_bytes": art.tile_buffer_bytes,
            "weight_bytes": sum(t.size for t in art.tiles),
            "layers": [{"name": L.name, "op": L.op, "in": list(L.in_shape), "out": list(L.out_shape),
                        "macs": L.macs, "tiles": sum(1 for t in art.tiles if t.layer == i),
                        "arena_in": art.tensor_offsets[g.input_of(i)], "arena_out": art.tensor_offsets[i + 1],
                        "in_place": bool(art.inplace and art.inplace[i]),
                        "scratch_bytes": art.scratch_bytes[i] if art.scratch_bytes else 0,
                        **({"skip": L.skip} if L.op in SKIP_OPS and L.skip >= 0 else {}),
                        **({"reads": L.src} if L.src >= 0 else {}),
                        **({"heads": L.heads} if L.op == "attention" else {}),
                        **({"span": {"frames_before": L.pad[0], "frames_per_block": L.kernel[0],
                                     "windows_per_block": L.stride[0], "block_at_frame": L.pad[2],
                                     "state_bytes": ctc_state_bytes(L)}}
                           if ctc_state_bytes(L) else {}),
                        **({"phoneme_repeats": ctc_repeats(L)} if L.op == "ctc" else {})}
                       for i, L in enumerate(g.layers)],
            "tiles": [asdict(t) for t in art.tiles]}


# --- plan and firmware ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Firmware:
    """A built firmware image: what `build` returns and `flash`/`run_on_board` take. Usable as a path (its
    binary), so `Path(fw)` and `str(fw)` name the ELF (rv32-virt, esp32c6) or executable (host)."""
    board: str
    dir: Path                  # the rendered project
    binary: Path
    model_sha256: str

    def __fspath__(self) -> str:
        return str(self.binary)

    def __str__(self) -> str:
        return str(self.binary)


def model_frontend(model_bin: Path) -> dict | None:
    """The front end a model was trained with, from the model.json manifest beside model.bin."""
    manifest = Path(model_bin).with_suffix(".json")
    if manifest.is_file():
        return json.loads(manifest.read_text()).get("frontend") or None
    return None


def _artifact(model: Artifact | Path) -> Artifact:
    return model if isinstance(model, Artifact) else read_model_bin(Path(model))


def import_model(source: Path, board: str | Board, out: Path, rounding: str = "tflite", check_steps: int = 200,
                 seed: int = 0, mode: str = "tiled") -> dict:
    """A quantised .tflite → pqlr's integer graph → plan under the board's budgets → model.bin (+ model.json with
    what was mapped how). With ai-edge-litert installed, `check_steps` seeded inputs are run through both the
    TFLite interpreter and pqlr's reference (state carried, every layer compared) and the result is returned;
    a mismatch is an error naming the step and layer. Without it the check is skipped and says why."""
    from .importer import import_tflite
    from .plan import make_plan
    from .reference.interpreter import Streamer
    b = as_board(board)
    res = import_tflite(Path(source), rounding=rounding)
    g = res.graph
    plan_ = make_plan(g, b, mode=mode)
    art = write_model_bin(Path(out), g, plan_)
    check: dict = {"steps": 0}
    if check_steps:
        try:
            from .importer.oracle import TfliteOracle
            oracle = TfliteOracle(source)
        except PqlrError as exc:
            check = {"steps": 0, "reason": str(exc)}
        else:
            rng = np.random.default_rng(seed)
            ours = Streamer(art.graph)
            for k in range(check_steps):
                x = np.clip(rng.normal(g.input_zp + 60, 50, g.input_shape), -128, 127).astype(np.int8)
                want = oracle.step(x)
                _, tensors = ours.step(x, dump=True)
                for li, t in enumerate(res.layer_tensors):
                    if not np.array_equal(tensors[li + 1].reshape(-1), oracle.tensor(t).reshape(-1)):
                        raise PqlrError(f"import check: step {k}, layer {li} ({g.layers[li].op}) differs from the "
                                        f"TFLite interpreter; please report it with the model")
                got = tensors[-1].reshape(-1).astype(np.int64) + g.output.get("offset", 0)
                if not np.array_equal(got, want.astype(np.int64)):
                    raise PqlrError(f"import check: step {k}: output differs from the TFLite interpreter")
            check = {"steps": check_steps, "layers_compared": len(res.layer_tensors), "equal": True,
                     "oracle": "ai-edge-litert Interpreter, BUILTIN_REF kernels"}
    info = {"source": str(source), "rounding": rounding, "streaming": g.streaming, "output": g.output,
            "state_bytes": sum(int(np.prod(L.out_shape)) for L in g.layers if L.op == "stream"),
            "mapping": res.mapping, "check": check, "model_bin": str(out), "bytes": art.size,
            "sha256": art.model_sha256, "macs": g.total_macs, "arena_bytes": art.arena_bytes,
            "tile_buffer_bytes": art.tile_buffer_bytes, "layers": len(g.layers), "plan": mode}
    man = Path(out).with_suffix(".json")
    m = json.loads(man.read_text())
    m["import"] = info
    man.write_text(json.dumps(m, indent=1))
    return info


def plan(model: Artifact | Path, board: str | Board):
    """The model's plan (tiles, tile buffer, arena, stack estimate) checked against the board's flash and RAM
    budgets: the Plan, or BudgetError with every number when it does not fit."""
    from .plan.planner import check_artifact
    return check_artifact(_artifact(model), as_board(board))



def render(model: Artifact | Path, board: str | Board, out: Path, with_frontend: bool = False,
           frontend: dict | None = None, mlperf: bool = False) -> dict:
    """Render the firmware for a model (an Artifact, or model.bin read once here) after checking it fits the
    board. with_frontend builds in the fixed-point audio front end from model.json beside model.bin (or
    `frontend`); its buffers cost ~5 KB of RAM, reported by the firmware and counted in peak RAM."""
    from .codegen import render_firmware
    b = as_board(board)
    if with_frontend and frontend is None:
        frontend = model_frontend(model) if not isinstance(model, Artifact) else None
        if not frontend:
            raise PqlrError(f"the audio front end needs the model's front end (model.json beside {model})")
    art = _artifact(model)
    plan(art, b)                        # budgets before anything is rendered, built or flashed
    return render_firmware(art, b, Path(out), frontend=frontend if with_frontend else None, mlperf=mlperf)


def build(board: str | Board, rendered: dict) -> Firmware:
    """Compile a rendered project with the board's toolchain."""
    from .device.build import build_firmware
    b = as_board(board)
    binary = build_firmware(b, rendered)
    return Firmware(board=b.name, dir=Path(rendered["dir"]), binary=Path(binary),
                    model_sha256=rendered.get("model_sha256", ""))


def image_check(board: str | Board, fw: Firmware | Path) -> dict | None:
    """For an ESP-IDF build (idf.py's build/ in the project): esptool image-info of bootloader and app (chip id,
    checksums, app descriptor), the app's instructions against the board's ISA, code and static RAM by
    esp-idf-size; written to image.json in the project. None for other builds."""
    import os
    from .device.esp_image import summary
    b = as_board(board)
    d = fw.dir if isinstance(fw, Firmware) else Path(fw)
    if not (d / "build" / "flasher_args.json").is_file():
        return None
    s = summary(b, d, os.environ.get("IDF_PYTHON"))
    from .atomic import write_text
    write_text(d / "image.json", json.dumps(s, indent=1))
    return s


def flash(board: str | Board, model_bin: Path, fw_dir: Path | Firmware, port: str | None = None,
          model_only: bool = False, merged: Path | None = None) -> dict:
    """rv32-virt: write the flash image the emulator loads. esp32c6: esptool (hostside/device/flash.py);
    model_only rewrites just the model partition (only its changed sectors); merged writes one flash image
    offline (esptool merge-bin) instead of flashing."""
    from .device.kinds import flasher_for
    b = as_board(board)
    fw_dir = fw_dir.dir if isinstance(fw_dir, Firmware) else Path(fw_dir)
    return flasher_for(b).flash(b, Path(model_bin), fw_dir, port, model_only, merged)


def run_on_board(board: str | Board, fw: Path | Firmware, model: Path | Artifact, inputs: np.ndarray,
                 port: str | None = None, flash_image: Path | None = None, timeout: float | None = None,
                 on_inference=None, qmp_socket: Path | None = None, place: str | None = None, audio: bool = False,
                 model_bin: Path | None = None, streams=None):
    """Run inputs through the firmware and return the SessionResult (telemetry, parsed). On failure the
    DeviceError carries .partial, the results so far. model: the Artifact already read (or model.bin, read
    once here); model_bin: the file the host firmware reads (default: `model` when it is a path); streams: the
    indices of the inputs that begin a new stream of a streaming model (Session.run; None: one stream)."""
    from .device.session import Session
    from .device.transport import open_transport
    b = as_board(board)
    art = _artifact(model)
    model_bin = Path(model_bin or (model if not isinstance(model, Artifact) else Path(fw).parent / "model.bin"))
    timeout = timeout or float(b.serial.get("timeout_s", 30))
    n_outputs = int(np.prod(art.graph.layers[-1].out_shape))
    with open_transport(b, Path(fw), model_bin, port=port, place=place, flash_image=flash_image,
                        qmp_socket=qmp_socket) as t:
        return Session(t, art.model_sha256, timeout, n_outputs=n_outputs,
                       stateful=art.graph.streaming).run(inputs, art.graph, on_inference, audio=audio,
                                                         streams=streams)


def reference_outputs(model: Path | Artifact, inputs: np.ndarray) -> np.ndarray:
    from .reference import run_batch
    return run_batch(_artifact(model).graph, inputs)


def save_testset(path: Path, art: Artifact, x: np.ndarray, y: np.ndarray, fp32_pred: np.ndarray,
                 audio: np.ndarray | None = None) -> None:
    """The int8 inputs (and, for the on-device front end, the int16 audio) of the held-out clips."""
    q = np.stack([art.graph.quantize_input(f) for f in x]) if len(x) else np.zeros((0, *art.graph.input_shape), np.int8)
    extra = {"audio": audio} if audio is not None else {}
    np.savez(path, inputs=q, labels=y, fp32_pred=fp32_pred, **extra)


WAKEFILES = "wakefiles.npz"        # beside model.bin: the wake-word files `pqlr bench` streams through the board


def save_wakefiles(path: Path, art: Artifact, corpus_dir: Path, frontend: dict, wakeword: dict,
                   missed: dict | None = None, splits: tuple[str, ...] = ("unseen",), files: int | None = None) -> dict:
    """The wake-word files whose misses are the detector's FRR, as the board receives them: every file's 1 s windows
    at the detector's stride (int8, the graph's input), the index where each file's stream begins, its split, and the
    detector that reads them (threshold, smoothing, stride, refractory: `wakeword`, the operating point `evaluate`
    chose). `pqlr bench` streams them through the board, a new stream per file, and applies the detector to the
    board's own outputs. missed: per split, the files the fp32 model missed (eval.json's missed_files_<split>), so the
    report can set the board beside it on the same files; files: that many per split, evenly over the split (its
    files are ordered by voice), default all. A model whose ctc reads a span gets each file's stream as evaluate
    reads it: `lead` windows of the room before the file (evaluate.room_lead), which the detector does not count."""
    from .data.corpus import load_corpus
    from .data.features import FrontEnd
    from .evaluate import lead_windows, positive_windows
    from .keyword import graph_span
    fe = FrontEnd.from_dict(frontend)
    corpus = load_corpus(corpus_dir)
    windows, starts, split_of, names, fp32 = [], [], [], [], []
    n = 0
    g = art.graph
    span = graph_span(g, frontend) if g.streaming and not g.frame_streaming else None
    lead = lead_windows(span["history_s"], float(wakeword["stride_ms"])) if span else 0
    for split in splits:
        clips, rows = positive_windows(corpus, fe, split, float(wakeword["stride_ms"]), lead=lead)
        pick = range(len(clips)) if files is None or files >= len(clips) else \
            np.unique(np.linspace(0, len(clips) - 1, max(files, 0)).astype(int))
        gone = set((missed or {}).get(split) or ())
        for i in pick:
            if len(rows[i]) <= lead:
                continue
            starts.append(n)
            n += len(rows[i])
            windows.extend(art.graph.quantize_input(f) for f in rows[i])
            split_of.append(split)
            names.append(clips[i].file)
            fp32.append(-1 if missed is None or split not in missed else int(clips[i].file in gone))
    x = np.stack(windows) if windows else np.zeros((0, *art.graph.input_shape), np.int8)
    np.savez(path, windows=x, starts=np.array(starts, np.int64), splits=np.array(split_of), files=np.array(names),
             fp32_missed=np.array(fp32, np.int64), lead=lead, model_sha256=art.model_sha256,
             threshold=float(wakeword["threshold"]),
             smooth=int(wakeword["smoothing_windows"]), stride_ms=float(wakeword["stride_ms"]),
             refractory_s=float(wakeword["refractory_s"]))
    return {"files": len(starts), "windows": len(x)}


def detector_on_board(board: str | Board, fw: Path | Firmware, art: Artifact, path: Path, model_bin: Path,
                      files: int | None = None, port: str | None = None, place: str | None = None,
                      qmp_socket: Path | None = None, on_inference=None) -> dict:
    """The detector's FRR read off the board: the wake-word files of `path` (save_wakefiles), each its own stream
    ('n' before its first window), the detector applied to the board's outputs and to the numpy reference's. False
    accepts are not run here: hours of speech at 10 windows a second; `pqlr eval model.bin` reads them through the
    reference the board matches."""
    from .evaluate import Detector
    from .keyword import graph_posteriors
    from .reference import run_batch
    g = art.graph
    z = np.load(path)
    if "model_sha256" not in z.files or str(z["model_sha256"]) != art.model_sha256:
        raise PqlrError(f"{path} was written for another model.bin (its windows are that model's int8 inputs); "
                        f"`pqlr demo` writes it beside the model it runs")
    starts = [int(v) for v in z["starts"]]
    k = len(starts) if files is None else max(0, min(int(files), len(starts)))
    if g.frame_streaming:
        raise PqlrError(f"{path}: 1 s windows, but this model takes feature frames (a --streaming export)")
    bounds = list(zip(starts, starts[1:] + [len(z["windows"])]))[:k]
    x = z["windows"][: bounds[-1][1]] if bounds else z["windows"][:0]
    det = Detector(float(z["threshold"]), int(z["smooth"]), float(z["stride_ms"]), float(z["refractory_s"]))
    lead = int(z["lead"]) if "lead" in z.files else 0       # the room's windows before each file: read, not counted
    t = time.monotonic()
    res = run_on_board(board, fw, art, x, port=port, place=place, qmp_socket=qmp_socket, model_bin=model_bin,
                       streams=[a for a, _ in bounds], on_inference=on_inference)
    wall = time.monotonic() - t
    out = np.array(res.outputs, np.int64).reshape(len(x), -1)
    ref = [run_batch(g, x[a:b_], state={}) for a, b_ in bounds]       # each file one stream, from boot's state
    ref = np.concatenate(ref).astype(np.int64).reshape(len(x), -1) if ref else np.zeros((0, 0), np.int64)
    blocks, _, every = ctc_span(g.output_layer) if ctc_state_bytes(g.output_layer) else (0, 1, 1)
    blocks += ctc_offset(g.output_layer) if blocks else 0     # the ring holds (B + Q)·w windows
    pos = np.concatenate([np.arange(b_ - a) for a, b_ in bounds]) if bounds else np.zeros(0, int)
    ins = np.array([-1 if v is None else v for v in res.instret], np.int64)
    steady = ins[(pos >= blocks * every) & (ins >= 0)]      # the ring full: every earlier block read
    cost = {"steady_state_mean": float(steady.mean()) if len(steady) else None,
            "steady_state_windows": int(len(steady)), "max": int(ins.max()),
            "provenance": "emulated" if as_board(board).emulated else "measured"} if (ins >= 0).any() else None
    splits = [str(v) for v in z["splits"][:k]]
    fp32 = z["fp32_missed"][:k]
    by_split = {}
    for sp in dict.fromkeys(splits):
        idx = [i for i, v in enumerate(splits) if v == sp]
        miss = {}
        for name, o in (("board", out), ("reference", ref)):
            score = graph_posteriors(g, o)[:, 0] if len(o) else np.zeros(0)
            miss[name] = sum(det.smoothed(score[a + lead:b_]).max() < det.threshold
                             for a, b_ in (bounds[i] for i in idx))
        by_split[sp] = {"files": len(idx), "missed_board": int(miss["board"]), "frr_board": miss["board"] / len(idx),
                        "frr_reference": miss["reference"] / len(idx),
                        "frr_fp32": float(np.mean(fp32[idx])) if (fp32[idx] >= 0).all() else None}
    return {"files": k, "windows": int(len(x)), "bit_exact": bool(np.array_equal(out, ref)),
            "detector": {"threshold": det.threshold, "smoothing_windows": det.smooth, "stride_ms": det.stride_ms},
            "splits": by_split, "seconds": wall, "provenance": as_board(board).name, "instructions_per_inference": cost,
            "note": "each wake-word file streamed through the board, a new stream per file" +
                    (f" that begins with {lead} windows of the room before the file (read by the span, not counted)"
                     if lead else "") +
                    "; a file is missed when the smoothed wake score of the board's int8 outputs never reaches the "
                    "threshold validation chose for the fp32 model",
            "lead_windows": lead,
            "false_accepts": None,
            "false_accepts_reason": "hours of speech at 10 windows a second are not run on the board here; `pqlr eval "
                                    "model.bin` reads them through the numpy reference, which the board matches bit "
                                    "for bit (bit_exact above)"}


# --- the whole path ------------------------------------------------------------------------------
DEMO_WAKE_FILES = 40        # unseen wake-word files the demo streams through the board's detector (of 160; 21
                            # windows each, after 8 of the room before it at a 1.8 s span: evaluate.room_lead;
                            # 32 for a day, while the emulated UART took a byte per QEMU main-loop turn and the
                            # demo took 15 min 16 s in a slow hour)
DEMO_CORPUS = dict(engines=("espeak-ng", "flite", "piper"), voices=150, positives_per_voice=20,
                   unknown_per_voice=28, few_voice_repeats=6, silence_clips=300, unseen_positives=80,
                   unseen_unknown=80, fa_stream_seconds=-1, tts_stream_seconds=300, human_negatives=1, conversation=True,
                   native_negatives=280, native_languages=NATIVE_WIDE)
"""The demo's corpus: espeak-ng and flite voices (festival is left out for time: it takes ~0.35 s a clip),
piper's joe and flite's slt as unseen voices, every installed hour of real speech for false accepts, actors in
conversation, full band (the Dutch cast among the validation negatives, the Czech and English casts a test of their
own: the real speech is telephone audio, which flatters the detector; attempts.md §37), and espeak-ng's voices of
30 other languages, none that a test or validation set speaks (texts.NATIVE_WIDE), 280 clips each saying words of
Debian's word lists and Hunspell dictionaries, whose sounds the phoneme head learns to name (attempts.md §41–45)."""
DEMO_MODEL, DEMO_FEATURES, DEMO_EPOCHS = "dscnn-logmel", "logmel40", 25   # what `make demo` trains (docs/decisions.md)
DEMO_VTLP = (0.8, 1.25)           # vocal-tract length perturbation in the demo's training (attempts.md §7: 3 seeds)
DEMO_TESTSET = 300                # test clips run on the board (testset.npz), spread over the test split (240 for
                                  # a day, as DEMO_WAKE_FILES)
DEMO_SCORE, DEMO_PHONEME_CTC = "phonemes", 0.3   # the wake word read by its phonemes in order, on the board too (§29–30)
DEMO_SPAN = "auto"                # ... over the span that holds 99 % of the training wake phrases, on the board too (§33–34)
DEMO_EMA = 0.995                  # weight averaging, a 200-step horizon (under a tenth of the demo's training; attempts.md
                                  # §40–41); left off where the training is too short for it (train.ema_too_slow)


def demo(out: Path = Path("build/demo"), board: str | Board = "rv32-virt", epochs: int = DEMO_EPOCHS, seed: int = 0,
         runs: int | None = None, corpus_dir: Path | None = None, progress: bool = True,
         synth_cfg: dict | None = None, log=print, model: str = DEMO_MODEL, features: str = DEMO_FEATURES,
         vtlp: tuple[float, float] | None = DEMO_VTLP, score: str | None = None) -> dict:
    """corpus → train → evaluate (threshold on validation) → int8 → model.bin → then `bench`: render → build →
    flash → run on the board → report (with bench's partial results if the board fails mid-run).
    score "phonemes" (the default for a DS-CNN): the student is trained with the phoneme loss, the detector reads the
    phoneme score over the span that holds 99 % of the training wake phrases (`--span auto`), and the board computes
    it too (`pqlr export --score phonemes --span auto`: its ctc keeps the earlier windows' centre frames); "classifier" (the default for a
    transformer, which has no convolutional trunk for the phoneme head): the class posterior.
    corpus_dir: a corpus folder to synthesise the demo's corpus into (default out/corpus); if it already holds a
    corpus made with other options and synth_cfg is None, that corpus is used as it is."""
    import torch
    from .data.corpus import CORPUS_FILE, load_corpus
    from .train import load_checkpoint
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_writable(out)
    b = as_board(board)
    times = {}
    t0 = time.monotonic()
    given = corpus_dir is not None and (Path(corpus_dir) / CORPUS_FILE).is_file() and synth_cfg is None
    corpus_dir = Path(corpus_dir or out / "corpus")
    if given:
        log(f"[1/4] corpus: using {corpus_dir} as it is")
    else:
        log(f"[1/4] corpus: espeak-ng/flite voices split by accent, variant and speaker, unseen piper/slt voices, "
            f"real speech{', conversation' if DEMO_CORPUS.get('conversation') else ''}"
            f"{', words of other languages' if DEMO_CORPUS.get('native_negatives') else ''} → {corpus_dir}")
        synth(corpus_dir, progress=progress, **({"seed": seed} | DEMO_CORPUS | (synth_cfg or {})))
    times["synth_s"] = time.monotonic() - t0
    if score is None:
        from .models import REGISTRY
        from .models.dscnn import DSCNN
        score = DEMO_SCORE if model in REGISTRY and REGISTRY[model][0] is DSCNN else "classifier"
    if score not in ("classifier", "phonemes"):
        raise PqlrError(f"demo --score {score!r}: classifier or phonemes")
    phonemes = score == "phonemes"
    from .train import TrainConfig, ema_too_slow
    n_train = sum(1 for c in load_corpus(corpus_dir).clips if c.split == "train")
    steps = epochs * max(1, -(-n_train // TrainConfig.batch_size))
    ema = 0.0 if ema_too_slow(DEMO_EMA, steps) else DEMO_EMA
    log(f"[2/4] training {model} ({features}{f', VTLP {vtlp[0]:g}–{vtlp[1]:g}' if vtlp else ''}"
        f"{f', phoneme CTC {DEMO_PHONEME_CTC:g}' if phonemes else ''}"
        f"{f', weight average {ema:g}' if ema else f', no weight average ({steps} steps are too few for {DEMO_EMA:g})'})"
        f" for {epochs} epochs on the CPU, then the streaming evaluation ({score} score)")
    t = time.monotonic()
    tr = train(corpus_dir, out / "dscnn.pt", model=model, features=features, epochs=epochs, seed=seed,
               vtlp=vtlp, progress=progress, phoneme_ctc=DEMO_PHONEME_CTC if phonemes else 0.0, ema=ema)
    span = DEMO_SPAN if phonemes else None
    ev = evaluate(out / "dscnn.pt", corpus_dir, out / "eval", score=score, span_s=span)
    times["train_s"] = time.monotonic() - t
    log(f"[3/4] int8 post-training quantisation{' with the phoneme score' if phonemes else ''}, tile/arena plan for "
        f"{b.name}, model.bin, the test clips")
    t = time.monotonic()
    art = export(out / "dscnn.pt", corpus_dir, b, out / "model.bin", score=score, span_s=span)
    net, ck = load_checkpoint(out / "dscnn.pt")
    _, xt, yt = load_features(corpus_dir, "test", ck["frontend"])
    pick = np.unique(np.linspace(0, len(xt) - 1, min(len(xt), DEMO_TESTSET)).astype(int)) if len(xt) else []
    xt, yt = xt[pick], yt[pick]            # evenly over the test split (its clips are ordered by voice)
    with torch.no_grad():
        fp32_pred = net(torch.from_numpy(xt)).argmax(1).numpy() if len(xt) else np.zeros(0, int)
    corpus = load_corpus(corpus_dir)
    test_clips = corpus.split("test")
    audio = np.stack([np.clip(np.round(corpus.audio(test_clips[i])[:16000] * 32768), -32768, 32767).astype(np.int16)
                      for i in pick]) if len(xt) else None
    save_testset(out / "testset.npz", art, xt, yt, fp32_pred, audio)
    summary = _wakeword_summary(ev)
    if summary:                         # the unseen voices' wake-word files, for the detector on the board
        save_wakefiles(out / WAKEFILES, art, corpus_dir, ck["frontend"], summary,
                       {"unseen": ev["wakeword"].get("missed_files_unseen")}, files=DEMO_WAKE_FILES)
    times["export_s"] = time.monotonic() - t
    n = len(xt) if runs is None else min(runs, len(xt))
    log(f"[4/4] bench on {b.name}: render, build ({b.toolchain['kind']}), flash ({b.flasher['kind']}), "
        f"{n} inferences, then the unseen voices' wake-word files streamed through the detector; telemetry read "
        f"with pyserial")
    t = time.monotonic()
    extra = {"train": tr, "corpus": str(corpus_dir), "wakeword": summary,
             "accuracy_split": "test split: synthetic voices whose accent, variant and speaker training never heard "
                               "(3 classes, 1 s clips)", "timings_s": times}
    r = bench(b, out / "model.bin", out, runs=n, extra=extra)
    times["bench_s"] = time.monotonic() - t
    times["total_s"] = time.monotonic() - t0
    report = r["report"]
    report["timings_s"] = times
    _write_report_or_say_where(report, out, report["runs"])
    log(f"report: {r['paths']['json']} and {r['paths']['md']}")
    return report


def _wakeword_summary(ev: dict) -> dict | None:
    """What the demo's report says about the detector (fp32 model), from `evaluate`."""
    ww = ev.get("wakeword")
    if not ww:
        return None
    rs = ww.get("real_speech") or {}
    return {"score": ww.get("score", "classifier"), "score_span_s": ww.get("score_span_s"),
            "score_phoneme_repeats": ww.get("score_phoneme_repeats", False), "threshold": ww["threshold"],
            "smoothing_windows": ww["smoothing_windows"],
            "stride_ms": ww["stride_ms"], "refractory_s": ww["refractory_s"],
            "chosen_on": ww["operating_point"]["chosen_on"],
            "val_estimated_fa_per_hour": ww["operating_point"].get("val_estimated_fa_per_hour"),
            "accuracy_unseen_voices": ev["splits"].get("unseen", {}).get("accuracy"),
            "accuracy_held_out_voices": ev["splits"].get("test", {}).get("accuracy"),
            "frr_held_out_voices": ww.get("false_rejection_rate_test"),
            "frr_unseen_voices": ww.get("false_rejection_rate_unseen"),
            "frr_unseen_by_voice": {k: v["frr"] for k, v in ww.get("frr_unseen_by_voice", {}).items()},
            "real_speech_false_accepts": rs.get("false_accepts"), "real_speech_hours": rs.get("hours"),
            "real_speech_fa_per_hour": rs.get("false_accepts_per_hour"),
            "real_speech_fa_per_hour_upper95": rs.get("false_accepts_per_hour_upper95"),
            "real_speech_languages": rs.get("languages"), "reason": ww.get("reason"),
            **({"conversation_false_accepts": cv["false_accepts"], "conversation_hours": cv["hours"],
                "conversation_fa_per_hour": cv["false_accepts_per_hour"],
                "conversation_fa_per_hour_upper95": cv["false_accepts_per_hour_upper95"],
                "conversation_languages": sorted({s["language"] for s in cv["streams"].values()})}
               if (cv := ww.get("conversation")) else {})}


def bench(board: str | Board, model_bin: Path, out: Path, runs: int = 20, port: str | None = None,
          warmup: int = 0, on_inference=None, qmp_socket: Path | None = None, place: str | None = None,
          audio: bool = False, ppk2_port: str | None = None, ppk2_api=None, extra: dict | None = None,
          wake_files: int | None = None) -> dict:
    """Render, build, flash, run `warmup` + `runs` inferences, and write report.json/report.md into out.
    model.bin is read once and pinned (copied into out) for the whole run; every stage uses that Artifact.
    A model whose wake score reads a span (`pqlr export --span`) gets each test clip as a stream of its own.
    Then, when wakefiles.npz lies beside model.bin (`pqlr demo` writes it), the detector on the board
    (detector_on_board): its first `wake_files` files (None: all; 0: none), a stream each.
    If the board fails mid-run, the results so far are written (report.json "status": "incomplete") and
    the error is raised. extra: more entries for the report (the demo's training and evaluation)."""
    from .errors import DeviceError
    from .report import build_report, write_report
    b = as_board(board)
    out = Path(out)
    _check_writable(out)                        # before anything is built: results must have somewhere to go
    source = Path(model_bin)
    art, model_bin = _pin_artifact(source, out)  # read once; every stage uses this copy and this object
    ts = source.parent / "testset.npz"
    fe_tables = fe_cfg = None
    if audio and art.graph.frame_streaming:
        raise PqlrError("--audio runs pqlr's one-second front end; a streaming model takes feature frames")
    if audio:
        fe_cfg = model_frontend(model_bin)
        if not fe_cfg:
            raise PqlrError(f"--audio needs the model's front end (model.json beside {source})")
        if not ts.is_file() or "audio" not in np.load(ts).files:
            raise PqlrError(f"--audio needs recorded test audio ({ts} with an 'audio' array: `pqlr demo` writes it)")
        from .data.features import FrontEnd
        from .data.fixed_frontend import features_q, tables
        fe = FrontEnd.from_dict(fe_cfg)
        fe_tables = tables(fe, art.graph.input_scale, art.graph.input_zp)
    if ts.is_file():
        z = np.load(ts)
        inputs, labels, fp32 = z["inputs"][:runs], z["labels"][:runs], z["fp32_pred"][:runs]
        if audio:
            inputs = z["audio"][:runs]
    else:
        rng = np.random.default_rng(0)
        inputs = rng.integers(-128, 128, size=(runs, *art.graph.input_shape)).astype(np.int8)
        labels = fp32 = np.zeros(0, dtype=np.int64)
    inputs = np.concatenate([inputs[:warmup], inputs]) if warmup else inputs     # warm-up runs are not reported
    rendered = render(art, b, out / "fw", with_frontend=audio, frontend=fe_cfg if audio else None)
    fw = build(b, rendered)
    if not place:                               # a farm's board is flashed by its own place's drivers
        flash(b, model_bin, fw, port)
    error = None
    sampler = None
    if ppk2_port or ppk2_api is not None:
        from .device.ppk2 import Ppk2Sampler
        sampler = Ppk2Sampler(ppk2_port or "", api=ppk2_api).__enter__()
    per_clip = art.graph.streaming and not art.graph.frame_streaming     # a span: each clip its own stream
    try:
        res = run_on_board(b, fw, art, inputs, port=port, on_inference=on_inference, qmp_socket=qmp_socket,
                           place=place, audio=audio, model_bin=model_bin,
                           streams=range(len(inputs)) if per_clip else None)
    except DeviceError as exc:
        if exc.partial is None:
            raise
        res, error = exc.partial, exc
    finally:
        if sampler is not None:
            sampler.__exit__(None, None, None)
    _drop_warmup(res, warmup)
    n = len(res.outputs)
    ref_in = inputs[warmup: warmup + n]
    if audio:     # the reference runs on the fixed-point front end's features (its numpy specification)
        ref_in = np.stack([features_q(a, fe, fe_tables).reshape(art.graph.input_shape) for a in ref_in])
    from .reference import run_batch
    if art.graph.frame_streaming:    # the board carried its state through every input, warm-up included
        from .reference.interpreter import Streamer
        s_ = Streamer(art.graph)
        steps = [s_.step(x) for x in inputs[: warmup + n]]
        ref = np.stack(steps[warmup:]) if n else np.zeros((0, 0), np.int8)
    else:                            # each input alone (a span's clip: a new stream, the window alone)
        ref = run_batch(art.graph, ref_in) if len(ref_in) else np.zeros((0, 0), np.int8)
    from .device.build import code_size
    report = build_report(b, art, res, ref, labels[:n], fp32[:n], code_size(fw.binary), extra)
    report["model_file"] = {"source": str(source), "pinned_copy": str(model_bin), "sha256": art.model_sha256}
    if sampler is not None and sampler.mean_ma() is not None and report["current_ma"]["value"] is None:
        report["current_ma"] = {"value": sampler.mean_ma(), "provenance": "measured",
                                "source": "Nordic PPK2 (host side), mean over the run including serial transfers",
                                "samples": len(sampler.samples), "trace_ma": sampler.trace_ma()}
        v = b.current_sensor.get("supply_v")
        lat = report["latency_ms"]
        if v and lat.get("value") is not None and lat.get("provenance") == "measured":
            report["energy_per_inference_mj"] = {
                "value": report["current_ma"]["value"] * float(v) * lat["value"] / 1000.0, "unit": "mJ",
                "provenance": "measured", "formula": "PPK2 mean current x supply_v (board file) x measured latency"}
        else:
            report["energy_per_inference_mj"] = {"value": None, "provenance": None,
                                                 "reason": "needs a measured latency and the board file's supply_v"}
    report["warmup"] = warmup
    report["input"] = ("int16 audio through the on-device fixed-point front end" if audio else
                       "int8 features computed on the host")
    if audio and res.frontend_instret:
        report["frontend_instructions_per_inference"] = {"value": float(np.mean(res.frontend_instret)),
                                                         "provenance": "emulated" if b.emulated else "measured"}
    report["transport"] = f"labgrid place {place}" if place else (port or b.serial.get("kind"))
    report["resets"] = res.resets
    report["retries"] = res.retries
    if not len(labels):
        report["accuracy"]["reason"] = f"no labelled inputs ({ts} missing); ran seeded random inputs"
    report["status"] = "complete" if error is None else "incomplete"
    if res.stats.console:                       # what the board printed besides telemetry (boot log, a panic)
        from .atomic import write_text
        from .device.panic import decode, looks_like_a_panic
        lines = res.stats.console
        if looks_like_a_panic(lines):
            decoded = decode(lines, fw.binary)
            report["panic"] = {"lines": decoded or lines, "decoded": decoded is not None,
                               **({} if decoded else {"reason": "esp-idf-panic-decoder or RISC-V addr2line missing"})}
            lines = decoded or lines
            if error is not None:
                error = type(error)(f"{error}\n  the board panicked; decoded: {out / 'serial.log'}")
        try:
            write_text(out / "serial.log", "\n".join(lines) + "\n")
            report["serial_log"] = str(out / "serial.log")
        except OSError:
            pass
    wf = source.parent / WAKEFILES
    if error is None and wake_files != 0 and wf.is_file() and not audio:
        try:
            report["detector_on_board"] = detector_on_board(b, fw, art, wf, model_bin, wake_files, port, place,
                                                            qmp_socket)
        except DeviceError as exc:
            error = exc
            report["detector_on_board"] = {"value": None, "reason": f"the board failed: {exc}"}
        except PqlrError as exc:            # a wakefiles.npz left by another model: said, not run
            report["detector_on_board"] = {"value": None, "reason": str(exc)}
    if error is not None:
        report["error"] = str(error)
    paths = _write_report_or_say_where(report, out, n)
    if error is not None:
        raise DeviceError(f"{error} — the {n} inferences that finished are in {paths['json']}", partial=res)
    return {"report": report, "paths": paths}


def _check_writable(out: Path) -> None:
    """The run folder exists and takes a file, or a clear error now rather than a lost run later."""
    import tempfile
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".pqlr-write-check-"):
            pass
    except OSError as exc:
        raise PqlrError(f"cannot write results to {out} ({exc.strerror or exc}); choose another --out") from None


def _pin_artifact(source: Path, out: Path) -> tuple[Artifact, Path]:
    """Read model.bin once, validate it, and keep that exact copy (and its manifest) in the run folder: a
    file replaced or damaged during the run changes nothing about this run."""
    from .atomic import write_bytes
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise PqlrError(f"cannot read {source}: {exc.strerror or exc}") from None
    art = read_model_bin(data)
    pinned = out / "model.bin"
    if pinned.resolve() != source.resolve():
        write_bytes(pinned, data)
        manifest = source.with_suffix(".json")
        if manifest.is_file():
            write_bytes(pinned.with_suffix(".json"), manifest.read_bytes())
    return art, pinned


def _write_report_or_say_where(report: dict, out: Path, n: int) -> dict:
    """write_report, atomically; if the folder cannot take it (full disk, gone read-only), the report goes to
    the system's temporary folder and the error says where, in one line."""
    from .report import write_report
    try:
        return write_report(report, out)
    except OSError as exc:
        import tempfile
        spare = Path(tempfile.mkdtemp(prefix="pqlr-report-"))
        try:
            paths = write_report(report, spare)
        except OSError:
            raise PqlrError(f"cannot write the report to {out} ({exc.strerror or exc}) nor to {spare}; "
                            f"{n} inferences were run") from None
        raise PqlrError(f"cannot write the report to {out} ({exc.strerror or exc}); the {n} inferences' report is "
                        f"in {paths['json']}") from None


def _drop_warmup(res, warmup: int) -> None:
    for name in ("outputs", "instret", "cycles", "flash_bytes", "current_ua", "layer_instret", "layer_cycles",
                 "layer_flash"):
        setattr(res, name, getattr(res, name)[warmup:])


def mlperf(board: str | Board, model_bin: Path, out: Path, inferences: int = 10, warmup: int = 1,
           port: str | None = None) -> dict:
    """Build the firmware in MLPerf Tiny mode, drive it like the EEMBC runner, and report the timing."""
    from .device.mlperf import MlperfHost, format_performance
    from .device.transport import open_transport
    b = as_board(board)
    out = Path(out)
    _check_writable(out)
    source = Path(model_bin)
    art, model_bin = _pin_artifact(source, out)
    if art.graph.output_layer.op == "ctc":
        raise PqlrError("MLPerf Tiny's protocol reports class scores in one quantisation; this model's last output "
                        "is its phoneme wake score: export it without --score phonemes for `pqlr mlperf`")
    ts = source.parent / "testset.npz"
    x = np.load(ts)["inputs"][0] if ts.is_file() else \
        np.random.default_rng(0).integers(-128, 128, size=art.graph.input_shape).astype(np.int8)
    fw = build(b, render(art, b, out / "fw", mlperf=True))
    flash(b, model_bin, fw, port)
    with open_transport(b, fw.binary, model_bin, port=port) as t:
        run = MlperfHost(t).run(x, inferences, warmup)
    from .device.kinds import flasher_for
    provenance = flasher_for(b).mlperf_provenance(b)
    from .reference import run as ref_run
    ref = ref_run(art.graph, x)
    L = art.graph.output_layer
    expected = [round(float((int(q) - L.out_zp) * L.out_scale), 3) for q in ref]
    top1_agrees = int(np.argmax(run.results)) == int(np.argmax(ref))
    text = format_performance(run, provenance)
    result = {"board": b.name, "model_sha256": art.model_sha256, "name": run.name, "profile": run.profile,
              "inferences": inferences, "warmup": warmup, "lap_us": run.lap_us, "runtime_s": run.runtime_s,
              "latency_ms": {"value": run.per_inference_ms, "provenance": provenance.split(":")[0],
                             "source": provenance}, "results": run.results, "reference_scores": expected,
              "top1_agrees_with_reference": top1_agrees, "summary": text}
    from .atomic import write_text
    write_text(out / "mlperf.json", json.dumps(result, indent=1))
    return result


# --- compress and report -------------------------------------------------------------------------
def compress(recipe, board: str | Board | None = None, progress: bool = True, log=print,
             epochs_override: int | None = None, measure_code: bool = True) -> dict:
    """Run a compression recipe (a Recipe, or the path of its TOML file): prune → low-rank → quantise, distilling
    from the teacher, then model.bin under `board`'s budgets (default: the board the recipe names) and the
    per-stage report. measure_code: render and build the rv32-virt firmware for the exported model to report
    its code size (needs the cross compiler; null without it)."""
    from .compress.pipeline import run_recipe
    from .compress.recipe import Recipe, load_recipe
    r = recipe if isinstance(recipe, Recipe) else load_recipe(Path(recipe))
    b = as_board(board or r.board)
    return run_recipe(r, b, progress=progress, log=log, epochs_override=epochs_override,
                      code_bytes=_code_bytes if measure_code else None)


def _code_bytes(art: Artifact) -> int | None:
    """.text of the rv32-virt firmware for this model (kernels + runtime + model code): built in a temporary
    folder with the cross compiler; None where it is not installed."""
    import tempfile
    from .device.build import code_size
    from .errors import ToolchainMissing
    virt = as_board("rv32-virt")
    try:
        with tempfile.TemporaryDirectory() as d:
            fw = build(virt, render(art, virt, Path(d) / "fw"))
            return (code_size(fw.binary) or {}).get("text")
    except (ToolchainMissing, PqlrError):
        return None


def report(run_json: Path, out: Path | None = None) -> dict:
    """Re-render a saved run: report.md and its plots from report.json (into out, default beside it). Nothing is
    re-measured; the JSON is the record."""
    from .report import write_report
    run_json = Path(run_json)
    try:
        rep = json.loads(run_json.read_text())
    except OSError as exc:
        raise PqlrError(f"cannot read {run_json}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise PqlrError(f"{run_json} is not a run's report.json ({exc})") from None
    missing = [k for k in ("board", "model_sha256", "runs", "accuracy", "bit_exact")
               if not isinstance(rep, dict) or k not in rep]
    if missing:
        raise PqlrError(f"{run_json} is not a run's report.json (missing {missing}); `pqlr bench` and `pqlr demo` "
                        f"write one")
    out = Path(out) if out else run_json.parent
    return {"report": rep, "paths": write_report(rep, out)}
