"""Run a compression recipe: stage by stage, each fine-tuned (with distillation when a teacher is given),
each evaluated, then exported through the foundation's path (integer graph → plan → model.bin)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..errors import PqlrError
from .recipe import Recipe, check_against_checkpoint, check_against_model


def _weight_bytes_float(model) -> int:
    return 4 * sum(p.numel() for n, p in model.named_parameters() if "bn" not in n and p.dim() >= 1
                   and not n.endswith(("step", "offset")))


def _params(model) -> int:
    from .quant import QuantNet
    if isinstance(model, QuantNet):
        return sum(L.weight.numel() + L.bias.numel() for L in model.weighted())
    return sum(p.numel() for p in model.parameters())


def _activation_bytes(ops: list[dict], shape, bytes_per: int) -> int:
    from ..plan.planner import plan_arena
    from ..models.ops import run_float_ops
    outs = run_float_ops(ops, torch.zeros(1, *shape))
    sizes = [int(np.prod(shape))] + [int(o[0].numel()) for o in outs]
    lifetimes = [(max(0, k - 1), min(k, len(outs) - 1)) for k in range(len(sizes))]
    return plan_arena([s * bytes_per for s in sizes], lifetimes)[1]


class Pipeline:
    def __init__(self, recipe: Recipe, progress: bool = True, log=print, epochs_override: int | None = None):
        from ..data.corpus import load_corpus, split_audio
        from ..data.features import FrontEnd, load_features
        from ..data.noise import noise_bank
        from ..train import load_checkpoint
        self.r, self.progress, self.log = recipe, progress, log
        self.epochs_override = epochs_override
        self.student, self.ck = load_checkpoint(Path(recipe.student))
        check_against_model(recipe, self.student)
        check_against_checkpoint(recipe, self.ck)
        self.fe = FrontEnd.from_dict(self.ck["frontend"])
        self.teacher = None
        if recipe.teacher:
            self.teacher, tck = load_checkpoint(Path(recipe.teacher))
            if tck["frontend"] != self.ck["frontend"]:
                raise PqlrError("recipe: teacher: its front end differs from the student's; distillation needs "
                                "both to see the same features (train them with the same --features)")
            if list(tck["classes"]) != list(self.ck["classes"]):
                raise PqlrError(f"recipe: teacher: classes {tck['classes']} differ from the student's {self.ck['classes']}")
        self.corpus = load_corpus(Path(recipe.corpus))
        if list(self.corpus.classes) != list(self.ck["classes"]):
            raise PqlrError(f"recipe: corpus classes {list(self.corpus.classes)} differ from the student's {self.ck['classes']}")
        _, self.xv, self.yv = load_features(recipe.corpus, "val", self.fe)
        _, self.xtr, _ = load_features(recipe.corpus, "train", self.fe)
        self.audio, self.y = split_audio(self.corpus)
        self.noise = noise_bank(seed=recipe.seed)
        self.scorer = self.phonemes = None
        if recipe.score == "phonemes":
            self._phoneme_setup()
        self.rows: list[dict] = []
        self._held = self._student_pred = None          # held-out clips and the student's predictions (_agreement)
        self.timings = {"fit_s": 0.0, "evaluate_s": 0.0}     # where the time goes; export and run_recipe add theirs

    def _phoneme_setup(self) -> None:
        """score = "phonemes": the student's phoneme head (keyword.py's PhonemeScorer reads it in every stage's
        evaluation), each training clip's phoneme target in the head's vocabulary, and the loss's weight."""
        from ..data.phonetic import clip_targets, keyword_classes
        from ..keyword import PhonemeScorer, corpus_span
        from ..train import load_checkpoint
        span = corpus_span(self.r.span, load_checkpoint(Path(self.r.student))[0], self.ck, self.r.corpus) \
            if self.r.span is not None else None
        self.scorer = PhonemeScorer(self.ck, "phonemes", span_s=span)
        stats = self.ck["phoneme_ctc"]
        targets, vocab, _ = clip_targets(self.corpus.split("train"), keyword_classes(self.corpus.classes))
        if "".join(vocab) != stats["vocabulary"]:
            raise PqlrError(f"recipe: score = \"phonemes\": the corpus's phonemes ({''.join(vocab)!r}) are not those the "
                            f"student's head was trained on ({stats['vocabulary']!r}); compress it on its own corpus")
        weight = self.r.phoneme_ctc or self.ck["train_config"]["ctc_weight"]
        self.phonemes = {"targets": targets, "n": len(vocab), "weight": float(weight)}

    def _set_head(self, state: dict) -> None:
        """The phoneme head the next stages start from and are evaluated with."""
        from ..train import PhonemeHead
        self.scorer.head = PhonemeHead.from_state(state, self.phonemes["n"]).eval()
        self.scorer.new_stream()

    def _epochs(self, n: int) -> int:
        return n if self.epochs_override is None else min(n, self.epochs_override)

    def fit(self, model, epochs: int, lr: float, extra_loss=None):
        from ..train import TrainConfig, train
        from .distill import kd_loss
        if epochs == 0:
            return model
        d = self.r.distill

        def loss_fn(z_s, y, z_t):
            if z_t is not None:
                loss = kd_loss(z_s, z_t, y, d["temperature"], d["alpha"])
            else:
                loss = torch.nn.functional.cross_entropy(z_s, y)
            return loss + (extra_loss() if extra_loss else 0)
        ph = {}
        if self.phonemes:               # the phoneme head fine-tuned with the trunk, by its CTC loss
            ph = {"phonemes": (self.phonemes["targets"], self.phonemes["n"]),
                  "phoneme_head": self.scorer.head.state_dict()}
        cfg = TrainConfig(epochs=self._epochs(epochs), lr=lr, seed=self.r.seed, batch_size=self.r.batch_size,
                          ctc_weight=self.phonemes["weight"] if self.phonemes else 0.0,
                          kd_mix=d.get("mix", 0.0) if self.teacher is not None else 0.0, ema=float(self.r.ema))
        t = time.monotonic()
        model, info = train(model, self.fe, self.audio, self.y, self.xv, self.yv, cfg, noise_bank=self.noise,
                            progress=self.progress, teacher=self.teacher, loss_fn=loss_fn, **ph)
        if self.phonemes:
            self._set_head(info["phoneme_head"])
        self.timings["fit_s"] += time.monotonic() - t
        return model

    def evaluate(self, name: str, model, weight_bytes: int, activation_bytes: int, bits: str, extra=None,
                 graph=None, classifier: bool = False) -> dict:
        """One stage's row. graph: the exported integer graph, whose numpy reference (the board's integers) is then
        what is evaluated — with score = "phonemes" its own phoneme score, not a float one. classifier: the
        detector reads the class posterior whatever the recipe's score (a teacher has not the student's head)."""
        from ..evaluate import DET_LIMITS, evaluate, frr_at
        from ..keyword import GraphPredictor
        from ..train import predict
        t = time.monotonic()
        scorer = None if classifier else self.scorer
        if graph is not None and scorer is not None:
            score = "phonemes (integer)"          # clip accuracy: the integer classifier's, as the fp32 rows' is
            ev = evaluate(model, self.corpus, self.fe, GraphPredictor(graph, wake_score=False),
                          threshold=self.r.threshold, stream_fn=GraphPredictor(graph, stream=True), score=score)
        else:
            score = "phonemes" if scorer is not None else "classifier"
            ev = evaluate(model, self.corpus, self.fe, predict, threshold=self.r.threshold, stream_fn=scorer,
                          score=score)
        agree, gap = (None, None) if classifier else self._agreement(model, graph)
        self.timings["evaluate_s"] += time.monotonic() - t
        ww = ev.get("wakeword", {})
        row = {"name": name, "bits": bits, "score": score, "score_span_s": ww.get("score_span_s"),
               "params": _params(model), "weight_bytes": int(weight_bytes),
               "activation_bytes": int(activation_bytes), "code_bytes": None,
               "total_bytes": int(weight_bytes) + int(activation_bytes),
               "held_out_voice_accuracy": ev["splits"].get("test", {}).get("accuracy"),
               "unseen_engine_accuracy": ev["splits"].get("unseen", {}).get("accuracy"),
               "val_accuracy": ev["splits"].get("val", {}).get("accuracy"),
               "agreement_with_student": agree,
               # this stage's accuracy minus the student's, per held-out split, with its 95 % interval
               "gap_to_student": gap,
               "false_rejection_rate": ww.get("false_rejection_rate_unseen", ww.get("false_rejection_rate_test")),
               "false_rejection_rate_held_out_voices": ww.get("false_rejection_rate_test"),
               "threshold": ww.get("threshold"), "smoothing_windows": ww.get("smoothing_windows"),
               "false_accepts": ww.get("false_accepts"), "false_accepts_per_hour": ww.get("false_accepts_per_hour"),
               "false_accepts_per_hour_upper95": ww.get("false_accepts_per_hour_upper95"),
               "real_speech_hours": ww.get("stream_hours"),
               "tts_stream_false_accepts_per_hour": (ww.get("tts_test_stream") or {}).get("false_accepts_per_hour"),
               "conversation_false_accepts_per_hour": (ww.get("conversation") or {}).get("false_accepts_per_hour"),
               "val_estimated_fa_per_hour": (ww.get("operating_point") or {}).get("val_estimated_fa_per_hour"),
               # the whole DET curve (every threshold, real speech): stages compared at equal false accepts
               "det": (ww.get("det") or {}).get("points"),
               "frr_at_fa_per_hour": {str(x): frr_at(ww["det"]["points"], x) for x in DET_LIMITS}
               if (ww.get("det") or {}).get("points") else None} | (extra or {})
        self.rows.append(row)
        self.log(f"  {name}: params {row['params']:,}, weights {row['weight_bytes']:,} B, held-out "
                 f"{row['held_out_voice_accuracy']}, unseen {row['unseen_engine_accuracy']}, "
                 f"FA/h {row['false_accepts_per_hour']}")
        return row

    def _agreement(self, model, graph=None) -> tuple[dict | None, dict | None]:
        """Top-1 agreement of this stage's clip classifier (the integer graph's where given) with the uncompressed
        student's, per held-out split: how faithfully the stage keeps the student's decisions. Two models whose
        accuracies differ by d points disagree on at least d % of the clips; equal accuracies can hide many
        disagreements. With it, the stage's accuracy minus the student's per split, with its 95 % interval for paired
        proportions (evaluate.paired_difference). (None, None) for the student itself (whose predictions it keeps for
        the later stages)."""
        from ..data.features import corpus_features
        from ..evaluate import paired_difference
        from ..keyword import GraphPredictor
        from ..train import predict
        if self._held is None:
            x, y = corpus_features(self.corpus, self.fe)
            splits = np.array([c.split for c in self.corpus.clips])
            keep = splits != "train"
            self._held = (x[keep], y[keep], splits[keep])
        x, y, splits = self._held
        if not len(x):
            return None, None
        pred = (GraphPredictor(graph, wake_score=False)(None, x) if graph is not None else predict(model, x)).argmax(1)
        if model is self.student and graph is None:
            self._student_pred = pred
            return None, None
        if self._student_pred is None:
            return None, None
        same = pred == self._student_pred
        held = [s for s in ("val", "test", "unseen") if (splits == s).any()]
        return ({s: float(same[splits == s].mean()) for s in held},
                {s: paired_difference(self._student_pred[splits == s] == y[splits == s],
                                      pred[splits == s] == y[splits == s]) for s in held})

    def _float_row(self, name: str, model, extra=None, classifier: bool = False) -> dict:
        from ..models.ops import float_ops
        try:
            act = _activation_bytes(float_ops(model), self.fe.shape, 4)
        except PqlrError:
            act = None
        return self.evaluate(name, model, _weight_bytes_float(model), act or 0, "fp32", extra, classifier=classifier)

    def run(self) -> dict:
        from .lowrank import factorise, plan_ranks
        from ..models.ops import float_ops
        from .prune import l1_penalty, prune, select_channels
        from .quant import build_quantnet
        # a student distilled from its own checkpoint (`--teacher` = `--model`): one network, evaluated once
        itself = self.teacher is not None and Path(self.r.teacher).resolve() == Path(self.r.student).resolve()
        if self.teacher is not None and not itself:
            self.log("teacher (fp32)")
            self._float_row("teacher", self.teacher, classifier=True)      # the student's phoneme head is not its
        self.log("student (fp32)" + (", also the teacher" if itself else ""))
        self._float_row("student", self.student)
        if itself:
            self.rows.insert(0, self.rows[-1] | {"name": "teacher", "same_as": "student"})
        model = self.student
        qnet = None
        for st in self.r.stages:
            p = st.params
            self.log(f"stage {st.name}: {p}")
            if qnet is not None:
                raise PqlrError(f"recipe: stage {st.name} after quantize: quantize must be the last stage")
            if st.name == "prune":
                model = self.fit(model, p["sparsity_epochs"], p["lr"], extra_loss=lambda m=model: p["l1"] * l1_penalty(m))
                keep = select_channels(model, p["sparsity"], p["min_keep"], p["max_group_sparsity"])
                before = model.cfg.group_widths()
                model = prune(model, keep)
                if self.phonemes:           # the head reads the last group: its columns go with the channels
                    st_h = self.scorer.head.state_dict()
                    self._set_head({"proj.weight": st_h["proj.weight"][:, keep[-1]], "proj.bias": st_h["proj.bias"]})
                model = self.fit(model, p["finetune_epochs"], p["lr"])
                self._float_row("prune", model, {"widths_before": list(before), "widths_after": list(model.cfg.group_widths())})
            elif st.name == "lowrank":
                decisions = plan_ranks(model, p["rank"], p["energy"], p["layers"] or None)
                model = factorise(model, decisions)
                model = self.fit(model, p["finetune_epochs"], p["lr"])
                self._float_row("lowrank", model, {"factorised": decisions})
            elif st.name == "quantize":
                ops = float_ops(model)
                rng = np.random.default_rng(self.r.seed)
                calib = self.xtr[rng.permutation(len(self.xtr))[: p["calib"]]]
                qnet = build_quantnet(ops, self.fe.shape, p["wbits"], p["abits"], p["first_last_bits"], calib)
                qnet = self.fit(qnet, p["epochs"], p["lr"])
                qnet = qnet.cpu().eval()
                self.quant_bits = f"W{p['wbits']}A{p['abits']} (first/last {p['first_last_bits']})"
        self.final = qnet if qnet is not None else model
        return {"rows": self.rows}

    def export(self, board, output: Path, code_bytes=None) -> dict:
        """Integer graph → plan (under `board`'s budgets) → model.bin; the integer model is checked against the
        fake-quant model. code_bytes(artifact) → int | None: the firmware's code size for this model, measured by
        the caller (api.compress builds it); this stage renders and builds nothing."""
        from ..artifact import write_model_bin
        from ..export.ptq import quantize_ptq
        from ..plan import make_plan
        from ..reference import run_batch
        from .quant import QuantNet
        t0, e0 = time.monotonic(), self.timings["evaluate_s"]
        classes, fe = tuple(self.ck["classes"]), self.fe.to_dict()
        rng = np.random.default_rng(self.r.seed)
        calib = self.xtr[rng.permutation(len(self.xtr))[:200]]
        phonemes = ({"head": self.scorer.head, "sequences": self.scorer.sequences, "span": self.scorer.span_fields,
                     "repeats": self.scorer.repeats} if self.scorer else None)
        if isinstance(self.final, QuantNet):
            graph = self.final.to_int_graph(classes, fe, phonemes, calib)
            bits = self.quant_bits
        else:
            graph = quantize_ptq(self.final, calib, classes, fe, phonemes)
            bits = "W8A8 (post-training)"
        plan = make_plan(graph, board)
        art = write_model_bin(Path(output), graph, plan)
        art.graph.frontend = graph.frontend                  # what model.json carries beside it
        # integer reference vs the fake-quant model, on every held-out input
        from ..data.features import corpus_features
        x, _ = corpus_features(self.corpus, self.fe)
        held = np.array([c.split != "train" for c in self.corpus.clips])
        xs = x[held]
        q = np.stack([graph.quantize_input(f) for f in xs])
        ref = run_batch(art.graph, q)[:, : art.graph.class_outputs]      # the class logits (a ctc appends its score)
        agree = None
        if isinstance(self.final, QuantNet):
            with torch.no_grad():
                fq, _, _ = self.final.forward_int(torch.from_numpy(xs))
            fq = fq.numpy().astype(np.int64)
            agree = {"top1_agreement": float((fq.argmax(1) == ref.argmax(1)).mean()),
                     "bit_exact_outputs": float((fq == ref.astype(np.int64)).all(axis=1).mean()), "n": int(len(xs))}
        code = code_bytes(art) if code_bytes is not None else None
        weight_bytes = sum(t.size for t in art.tiles)
        row = self.evaluate("quantize" if isinstance(self.final, QuantNet) else "export", self.final, weight_bytes,
                            plan.arena_bytes, bits, {"model_bin_bytes": art.size, "integer_vs_fakequant": agree,
                                                     "tile_buffer_bytes": plan.tile_buffer_bytes},
                            graph=art.graph)
        row["code_bytes"] = code
        row["total_bytes"] = weight_bytes + plan.arena_bytes + plan.tile_buffer_bytes + (code or 0)
        # lowering, model.bin, the integer check and the code size, without the final evaluation (in evaluate_s)
        self.timings["export_s"] = time.monotonic() - t0 - (self.timings["evaluate_s"] - e0)
        return {"model_bin": str(output), "sha256": art.model_sha256, "plan": plan.to_dict() | {"tiles": len(plan.tiles)},
                "agreement": agree}


def run_recipe(recipe: Recipe, board=None, progress: bool = True, log=print, epochs_override: int | None = None,
               code_bytes=None) -> dict:
    """Run the recipe's stages, export model.bin for `board` (a Board; default the one the recipe names), and
    write the per-stage report. code_bytes: see Pipeline.export (api.compress measures it; None here)."""
    from ..boards import as_board
    board = as_board(board or recipe.board)
    t0 = time.monotonic()
    pipe = Pipeline(recipe, progress, log, epochs_override)
    pipe.timings["load_s"] = time.monotonic() - t0
    pipe.run()
    out = Path(recipe.output)
    exp = pipe.export(board, out, code_bytes)
    report = {"recipe": {"student": recipe.student, "teacher": recipe.teacher, "corpus": recipe.corpus,
                         "board": recipe.board, "stages": [{"name": s.name, **s.params} for s in recipe.stages],
                         "distill": recipe.distill if recipe.teacher else None, "seed": recipe.seed,
                         "threshold": recipe.threshold, "epochs_override": epochs_override, "score": recipe.score,
                         "phoneme_ctc": pipe.phonemes["weight"] if pipe.phonemes else None, "ema": recipe.ema,
                         "span": recipe.span},
              "stages": pipe.rows, "export": exp,
              "timings_s": pipe.timings | {"total_s": time.monotonic() - t0},
              "notes": {"weight_bytes": "fp32 stages: 4 B per weight and bias; quantised: the model.bin tiles "
                                        "(packed weights + int32 bias, int32 multiplier, uint8 shift per channel)",
                        "activation_bytes": "the planner's arena (fp32 stages: 4 B per element)",
                        "code_bytes": "rv32-virt firmware .text (kernels, runtime, model code); null where not built"}}
    from .report import write_compress_report
    report["files"] = write_compress_report(report, out)
    return report
