"""Training: CPU by default, CUDA when present; deterministic for a seed; augmentation on the waveform
(time shift, background-noise mixing from the training noise pool, gain), on the spectrum (vocal-tract
length perturbation, when `vtlp` is a range) and on the features (SpecAugment-style time and frequency
masks). Model selection uses the validation split only; with `ema` > 0 it judges and keeps an exponential moving
average of the weights (and BatchNorm statistics) instead of the weights of the last step."""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.features import FrontEnd, TorchFrontEnd
from .models import model_from_config, param_count
from .progress import progress_bar


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    time_shift_ms: float = 100.0
    noise_prob: float = 0.8
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    time_masks: int = 2
    time_mask_frames: int = 5
    freq_masks: int = 2
    freq_mask_fraction: float = 0.1
    label_smoothing: float = 0.05
    band_prob: float = 0.0                     # share of examples heard through a telephone-band channel; 0: off
    band_hz: tuple[float, float] = (3400.0, 4000.0)    # that channel's upper edge, drawn uniformly per example
    vtlp: tuple[float, float] = (1.0, 1.0)     # vocal-tract length factors α drawn uniformly; (1, 1): off
    ema: float = 0.0                           # decay of an exponential moving average of the weights; 0: off
    pair_weight: float = 0.0                   # weight of the near-miss margin loss (pair_loss); 0: off
    pair_margin: float = 4.0                   # the wake log-odds a wake-word clip must beat its near miss by
    pair_sides: str = "both"                   # both: the loss moves both clips; miss: only the near miss;
                                               # capped: the wake word only up to the cross-entropy's own target
    ctc_weight: float = 0.0                    # weight of the auxiliary phoneme CTC loss (PhonemeHead); 0: off
    ctc_negative: float = 0.0                  # weight of the wake score's hinge on negatives (PhonemeHead.
                                               # negative_loss; needs ctc_weight > 0); 0: off
    ctc_negative_floor: float = 0.3            # the phoneme wake score a negative window is pushed below
    ctc_distill: float = 0.0                   # weight of the phoneme head's distillation from teachers' heads
                                               # (PhonemeTeacher; needs ctc_weight > 0); 0: off
    ctc_distill_on: str = "frames"             # frames: each frame's phoneme posteriors (KL); score: the wake
                                               # score of each window (its binary cross-entropy)
    kd_mix: float = 0.0                        # weight of distillation on blended inputs (function matching): each
                                               # example's features mixed with another's of the batch, λ ~ U(0, 1),
                                               # KL(teacher ‖ student) there at temperature 1; needs a teacher; 0: off

    def __post_init__(self):
        from .errors import PqlrError
        if not 0.0 <= self.ema < 1.0:
            raise PqlrError(f"ema {self.ema}: a decay in [0, 1), e.g. 0.999 (0: off)")
        if not self.pair_weight >= 0.0:
            raise PqlrError(f"pair loss weight {self.pair_weight}: a number >= 0, e.g. 1 (0: off)")
        if not 0.0 < self.pair_margin <= 20.0:
            raise PqlrError(f"pair margin {self.pair_margin}: wake log-odds in (0, 20], e.g. 4")
        if not 0.0 <= self.ctc_weight <= 10.0:
            raise PqlrError(f"phoneme CTC weight {self.ctc_weight}: a number in [0, 10], e.g. 0.3 (0: off)")
        if not 0.0 <= self.ctc_negative <= 10.0:
            raise PqlrError(f"phoneme negative weight {self.ctc_negative}: a number in [0, 10], e.g. 1 (0: off)")
        if self.ctc_negative > 0 and self.ctc_weight <= 0:
            raise PqlrError("the wake score's hinge on negatives reads the phoneme head: give --phoneme-ctc too "
                            "(e.g. --phoneme-ctc 0.3 --phoneme-negatives 1)")
        if not 0.0 <= self.ctc_distill <= 10.0:
            raise PqlrError(f"phoneme distillation weight {self.ctc_distill}: a number in [0, 10], e.g. 1 (0: off)")
        if self.ctc_distill_on not in ("frames", "score"):
            raise PqlrError(f"phoneme distillation on {self.ctc_distill_on!r}: frames or score")
        if self.ctc_distill > 0 and self.ctc_weight <= 0:
            raise PqlrError("the phoneme head's distillation trains the phoneme head: give --phoneme-ctc too "
                            "(e.g. --phoneme-ctc 0.3 --phoneme-distill 1 --teacher A.pt --teacher B.pt)")
        if not 0.0 <= self.kd_mix <= 10.0:
            raise PqlrError(f"blended-input distillation weight {self.kd_mix}: a number in [0, 10], e.g. 1 (0: off)")
        if not 0.0 < self.ctc_negative_floor < 1.0:
            raise PqlrError(f"phoneme negative floor {self.ctc_negative_floor}: a wake score in (0, 1), e.g. 0.3")
        if self.pair_sides not in PAIR_SIDES:
            raise PqlrError(f"pair sides {self.pair_sides!r}: one of {', '.join(PAIR_SIDES)}")
        if not 0.0 < self.band_hz[0] <= self.band_hz[1]:
            raise PqlrError(f"band_hz {tuple(self.band_hz)}: the channel's upper edge in Hz, 0 < lo <= hi, "
                            "e.g. (3400, 4000) for a telephone line")


PAIR_SIDES = ("both", "miss", "capped")


AUGMENT_KEYS = ("time_shift_ms", "noise_prob", "snr_db", "gain_db", "band_prob", "band_hz", "time_masks",
                "time_mask_frames", "freq_masks", "freq_mask_fraction", "label_smoothing")


def augment_config(options: dict) -> dict:
    """Checked TrainConfig overrides for the augmentation (`pqlr train --augment KEY=VALUE`): a known key, a
    number (or a lo,hi range for snr_db and gain_db) in range; raises PqlrError naming the known keys."""
    from .errors import PqlrError
    out = {}
    for key, value in options.items():
        if key not in AUGMENT_KEYS:
            raise PqlrError(f"--augment {key}: not an augmentation setting; known: {', '.join(AUGMENT_KEYS)}")
        default = getattr(TrainConfig, key)
        if isinstance(default, tuple):
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise PqlrError(f"--augment {key}={value!r}: a range lo,hi, "
                                f"e.g. {key}=({default[0]}, {default[1]})") from None
            if lo > hi:
                raise PqlrError(f"--augment {key}=({lo}, {hi}): lo must not exceed hi")
            out[key] = (lo, hi)
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise PqlrError(f"--augment {key}={value!r}: a number >= 0 (default {default})")
        if key in ("noise_prob", "band_prob", "label_smoothing", "freq_mask_fraction") and value > 1:
            raise PqlrError(f"--augment {key}={value}: a fraction in 0..1 (default {default})")
        out[key] = type(default)(value)
        if isinstance(default, int) and out[key] != value:
            raise PqlrError(f"--augment {key}={value}: a whole number (default {default})")
    return out


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextmanager
def nhwc(model: nn.Module):
    """Run the model's convolutions in channels-last (NHWC) layout while inside. On the CPU, oneDNN's depthwise
    and 1×1 convolutions are much faster so (DS-CNN on log-mel 40, 2 cores: a training step 1.4×, inference
    3× faster); the values are the same, only the layout moves, and it moves back on leaving (checkpoints,
    export and the integer lowering see ordinary contiguous tensors). Nested uses keep the outer layout."""
    if getattr(model, "_pqlr_nhwc", False) or not any(p.dim() == 4 for p in model.parameters()):
        yield model
        return
    model.to(memory_format=torch.channels_last)
    model._pqlr_nhwc = True
    try:
        yield model
    finally:
        model._pqlr_nhwc = False
        model.to(memory_format=torch.contiguous_format)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Softmax posteriors for features x [N, T, F]."""
    model.eval()
    dev = next(model.parameters()).device
    with nhwc(model):
        outs = [torch.softmax(model(torch.from_numpy(x[i: i + batch]).to(dev)), dim=1).cpu()
                for i in range(0, len(x), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), np.float32)


def wake_log_odds(logits: torch.Tensor, wake: int = 0) -> torch.Tensor:
    """log p(wake) / (1 - p(wake)) from the logits: the wake logit against the log-sum-exp of the others."""
    others = torch.cat([logits[:, :wake], logits[:, wake + 1:]], dim=1)
    return logits[:, wake] - torch.logsumexp(others, dim=1)


def smoothed_target_log_odds(label_smoothing: float, classes: int) -> float:
    """The wake log-odds at which the label-smoothed cross-entropy is minimal for a wake-word example: its target
    puts 1 − ε + ε/K on the wake class and ε/K on each other; inf without smoothing."""
    if label_smoothing <= 0:
        return float("inf")
    other = label_smoothing / classes
    return float(np.log((1 - label_smoothing + other) / (other * (classes - 1))))


def pair_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor, wake: int = 0, margin: float = 4.0,
              sides: str = "both", cap: float = float("inf")) -> torch.Tensor:
    """The near-miss margin loss: mean over pairs of max(0, margin − (s(wake-word clip) − s(its near miss))), s the
    wake log-odds. Zero for pairs already separated by the margin, whatever their absolute scores; 0 for no pairs.
    sides "miss": the wake-word clip's score is a fixed target (no gradient), only the near miss is pushed down;
    "capped": the wake-word clip's score counts only up to `cap` (no gradient above it), so that the pair cannot raise
    it past where the cross-entropy puts it and the rest of the margin must come from the near miss."""
    if len(pos_logits) == 0:
        return pos_logits.sum() * 0.0
    s_pos = wake_log_odds(pos_logits, wake)
    if sides == "miss":
        s_pos = s_pos.detach()
    elif sides == "capped":
        s_pos = torch.clamp(s_pos, max=cap)
    gap = s_pos - wake_log_odds(neg_logits, wake)
    return torch.relu(margin - gap).mean()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    return float((predict(model, x).argmax(1) == y).mean())


class PhonemeHead(nn.Module):
    """Training's auxiliary phoneme recogniser: the student's trunk maps pooled over frequency, one linear layer per
    time step to the phonemes and CTC's blank (index 0). It is not part of the student's weights; in training it asks
    the trunk to keep the sounds apart (multi-task training with phoneme targets, as keyword spotters trained beside
    an acoustic model are), and the checkpoint keeps it beside the weights for hostside/keyword.py's wake score, which
    `pqlr export --score phonemes` also puts on the device (export/ptq.py phoneme_branch)."""

    def __init__(self, channels: int, n_phonemes: int):
        super().__init__()
        self.proj = nn.Linear(channels, n_phonemes + 1)

    @classmethod
    def from_state(cls, state: dict, n_phonemes: int) -> "PhonemeHead":
        """A head with these weights (its width read from them); a vocabulary of another size is refused."""
        head = cls(state["proj.weight"].shape[1], n_phonemes)
        head.load_state_dict(state)
        return head

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """[N, C, T', F'] maps → [T', N, V + 1] log-probabilities (CTC's layout). Maps of another dtype (a QuantNet's
        float64 fake-quant maps) are read in the head's."""
        return torch.log_softmax(self.logits(maps), dim=2).transpose(0, 1)

    def logits(self, maps: torch.Tensor) -> torch.Tensor:
        """[N, C, T', F'] maps → [N, T', V + 1] per-frame logits: the frequency mean, then the linear layer."""
        return self.proj(maps.to(self.proj.weight.dtype).mean(dim=3).transpose(1, 2))

    def loss(self, maps: torch.Tensor, targets: list) -> torch.Tensor:
        """Mean over the examples that have a target (a list of phoneme indices, [] for silence; None: left out)
        of the CTC loss per target phoneme (per example for an empty target); 0 when none has one."""
        keep = [i for i, t in enumerate(targets) if t is not None]
        if not keep:
            return maps.sum() * 0.0
        lp = self(maps[keep])
        lengths = torch.tensor([len(targets[i]) for i in keep], dtype=torch.long)
        flat = torch.tensor([p for i in keep for p in targets[i]], dtype=torch.long)
        frames = torch.full((len(keep),), lp.shape[0], dtype=torch.long)
        per = nn.functional.ctc_loss(lp, flat.to(lp.device), frames, lengths, blank=0, reduction="none",
                                     zero_infinity=True)
        return (per / lengths.clamp_min(1).to(per.device)).mean()

    def negative_loss(self, maps: torch.Tensor, sequences: list[tuple[int, ...]], floor: float) -> torch.Tensor:
        """Mean over the examples (negatives: none says the phrase) of how far the log of their phoneme wake score
        — keyword.ctc_window_score, the best over the phrase's phoneme sequences — lies above log(floor): a hinge
        that trains the score itself to stay low on what is not the phrase (windows cut from sentences, people's
        recordings), which the CTC loss never reads (they have no transcript of their window), and on near misses
        (whose own transcript the CTC loss reads but which do not ask the phrase's probability to be low)."""
        from .keyword import phrase_log_score
        if not len(maps):
            return maps.sum() * 0.0
        return torch.relu(phrase_log_score(self(maps), sequences) - math.log(floor)).mean()

    def distill_loss(self, maps: torch.Tensor, teacher_lp: torch.Tensor) -> torch.Tensor:
        """KL(teacher ‖ this head) per frame, summed over the phonemes and blank, averaged over frames and examples:
        teacher_lp [T', N, V + 1] the teachers' log-probabilities (PhonemeTeacher) of the same clips."""
        lp = self(maps)
        if lp.shape != teacher_lp.shape:
            raise ValueError(f"phoneme teacher frames {tuple(teacher_lp.shape)} against the student's {tuple(lp.shape)}")
        return (teacher_lp.exp() * (teacher_lp - lp)).sum(dim=2).mean()

    def distill_score_loss(self, maps: torch.Tensor, sequences: list[tuple[int, ...]],
                           target: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of this head's wake score of each window (the best over `sequences` of
        keyword.ctc_window_score) against target [N] in [0, 1] (PhonemeTeacher.score), mean over the windows."""
        from .keyword import phrase_log_score
        log_s = phrase_log_score(self(maps), sequences).clamp(math.log(1e-6), math.log(1 - 1e-6))
        return -(target * log_s + (1 - target) * torch.log1p(-log_s.exp())).mean()


class PhonemeTeacher(nn.Module):
    """Teachers' phoneme heads as one: each member's trunk and PhonemeHead read the batch the student reads, and the
    result is the log of the mean of their per-frame phoneme posteriors, [T', N, V + 1] — the frame-level soft labels
    the student's head is distilled towards (PhonemeHead.distill_loss). Unlike the CTC loss, which reads only clips
    whose whole text is in the window, they cover every training clip: negatives cut from sentences, people's
    recordings, noise."""

    def __init__(self, members: list, heads: list, sequences: list[tuple[int, ...]] = ()):
        super().__init__()
        if not members or len(members) != len(heads):
            raise ValueError("a phoneme teacher needs one head per member, at least one")
        self.members = nn.ModuleList(members)
        self.heads = nn.ModuleList(heads)
        self.sequences = list(sequences)            # the phrase's phoneme sequences, for score()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lp = torch.stack([h(m.trunk(x)) for m, h in zip(self.members, self.heads)])
        return torch.logsumexp(lp, dim=0) - math.log(len(self.members))

    @torch.no_grad()
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """[N] the mean over the members of each one's wake score of the window (keyword.ctc_window_score, the best
        over the phrase's sequences): what an ensemble of them would detect with."""
        from .keyword import phrase_log_score
        if not self.sequences:
            raise ValueError("the phoneme teacher's score needs the phrase's phoneme sequences")
        return torch.stack([phrase_log_score(h(m.trunk(x)), self.sequences).exp()
                            for m, h in zip(self.members, self.heads)]).mean(0)


class Augmenter:
    """Waveform and feature augmentation, on a torch generator so that runs are reproducible. The work runs on the
    device the batch is on (train() hands it the batch on the model's device); every random draw is made on the CPU
    generator, in the same order, and then moved, so a seed draws the same augmentations on a GPU as on the CPU."""

    def __init__(self, fe: FrontEnd, cfg: TrainConfig, noise_bank: np.ndarray | None, gen: torch.Generator):
        self.fe, self.cfg, self.gen = fe, cfg, gen
        self.front = TorchFrontEnd(fe)
        self.noise = torch.from_numpy(noise_bank.astype(np.float32)) if noise_bank is not None and len(noise_bank) else None
        self._noise_on: dict = {}                   # the noise bank copied once to each device it is used on
        if cfg.band_prob > 0 and cfg.band_hz[1] >= fe.sample_rate / 2:
            from .errors import PqlrError
            raise PqlrError(f"band_hz {tuple(cfg.band_hz)}: the channel's upper edge must lie below the front end's "
                            f"{fe.sample_rate / 2:g} Hz Nyquist frequency, e.g. (3400, 4000)")

    def _u(self, n: int, lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) * (hi - lo) + lo

    def __call__(self, audio: torch.Tensor, tie: torch.Tensor | None = None) -> torch.Tensor:
        """tie: for each example, the example whose random draws (shift, noise clip and SNR, gain, warp, masks) it
        takes, so that a pair is augmented alike; None: each its own. The draws made are the same either way."""
        n, length = audio.shape
        cfg = self.cfg
        dev = audio.device
        same = (lambda v: v[tie].to(dev)) if tie is not None else (lambda v: v.to(dev))     # drawn on the CPU, moved
        # time shift with zero fill
        max_shift = int(cfg.time_shift_ms * self.fe.sample_rate / 1000)
        if max_shift:
            shift = same(torch.randint(-max_shift, max_shift + 1, (n,), generator=self.gen))
            idx = torch.arange(length, device=dev)[None, :] - shift[:, None]
            valid = (idx >= 0) & (idx < length)
            audio = torch.gather(audio, 1, idx.clamp(0, length - 1)) * valid
        # background noise at a random SNR
        if self.noise is not None and cfg.noise_prob > 0:
            pick = same(torch.randint(0, len(self.noise), (n,), generator=self.gen))
            if dev not in self._noise_on:
                self._noise_on[dev] = self.noise.to(dev)
            nz = self._noise_on[dev][pick]
            snr = same(self._u(n, *cfg.snr_db))
            rms = audio.pow(2).mean(1).sqrt().clamp_min(1e-4)
            use = same((torch.rand(n, generator=self.gen) < cfg.noise_prob).float())
            audio = audio + use[:, None] * nz * (rms / 10 ** (snr / 20))[:, None]
        # a telephone-band channel after the noise, as a line carries speech and room alike: nothing above an upper
        # edge drawn per example (the real-speech test is 8 kHz telephone audio; a cheap microphone path cuts too)
        if cfg.band_prob > 0:
            edge = same(self._u(n, *cfg.band_hz))
            use = same(torch.rand(n, generator=self.gen) < cfg.band_prob)
            freqs = torch.fft.rfftfreq(length, 1 / self.fe.sample_rate, device=dev)
            keep = ~use[:, None] | (freqs[None, :] <= edge[:, None])
            audio = torch.fft.irfft(torch.fft.rfft(audio, dim=1) * keep, n=length, dim=1)
        audio = audio * (10 ** (same(self._u(n, *cfg.gain_db)) / 20))[:, None]
        lo, hi = cfg.vtlp
        feats = self.front(audio, warp=same(self._u(n, lo, hi)) if hi > lo else None)
        # SpecAugment-style masks, filled with each example's mean
        t, f = feats.shape[1:]
        fill = feats.mean(dim=(1, 2), keepdim=True)
        mask = torch.zeros_like(feats, dtype=torch.bool)
        ar_t, ar_f = torch.arange(t, device=dev)[None, :, None], torch.arange(f, device=dev)[None, None, :]
        for _ in range(cfg.time_masks):
            w = torch.randint(0, cfg.time_mask_frames + 1, (n, 1, 1), generator=self.gen)
            s = (torch.rand(n, 1, 1, generator=self.gen) * (t - w + 1)).long()
            w, s = same(w), same(s)
            mask |= (ar_t >= s) & (ar_t < s + w)
        fw = max(1, int(round(cfg.freq_mask_fraction * f)))
        for _ in range(cfg.freq_masks):
            w = torch.randint(0, fw + 1, (n, 1, 1), generator=self.gen)
            s = (torch.rand(n, 1, 1, generator=self.gen) * (f - w + 1)).long()
            w, s = same(w), same(s)
            mask |= (ar_f >= s) & (ar_f < s + w)
        return torch.where(mask, fill.expand_as(feats), feats)


EMA_HORIZONS = 5               # an average must run this many time constants, 1 / (1 − decay) steps, to forget the start


def ema_too_slow(decay: float, steps: int) -> str | None:
    """What is wrong with an exponential moving average of decay `decay` over a training of `steps` optimiser steps,
    or None: under EMA_HORIZONS time constants it still holds e^(−steps·(1 − decay)) of the untrained weights (and
    BatchNorm statistics), and the average of weights that far apart is no model (attempts.md §40: --ema 0.999 over
    1,843 steps kept the majority class)."""
    if not decay or steps * (1 - decay) >= EMA_HORIZONS:
        return None
    share = math.exp(-steps * (1 - decay))
    fits = 1 - EMA_HORIZONS / steps
    return (f"--ema {decay:g} averages over ~{1 / (1 - decay):,.0f} steps but this training takes {steps:,}: the "
            f"average keeps {100 * share:.0f} % of the untrained weights and may predict one class; " +
            (f"use a decay of at most {fits:.4f} or more epochs" if fits >= 0.5 else
             f"train for at least {math.ceil(EMA_HORIZONS / (1 - decay) - 1e-9):,} steps or leave --ema off"))


def mixed_kd_loss(model: nn.Module, teacher: nn.Module, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Function matching (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and consistent"):
    each example's features blended with the next one's of the batch, x̃ = λ·x_i + (1 − λ)·x_(i+1), λ ~ U(0, 1) per
    example, and KL(teacher ‖ student) of the class posteriors there — inputs that lie off the training voices'
    distribution, where only the teacher says what the student should do. λ is drawn from `gen` (on the CPU)."""
    lam = torch.rand(len(x), generator=gen).to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
    xm = lam * x + (1 - lam) * x.roll(1, 0)
    with torch.no_grad():
        p_t = nn.functional.softmax(teacher(xm).to(x.dtype), dim=1)
    log_p_s = nn.functional.log_softmax(model(xm), dim=1)
    return nn.functional.kl_div(log_p_s, p_t, reduction="batchmean")


def train(model: nn.Module, fe: FrontEnd, audio_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
          y_val: np.ndarray, cfg: TrainConfig = TrainConfig(), noise_bank: np.ndarray | None = None,
          progress: bool = True, teacher: nn.Module | None = None, loss_fn=None,
          partners: list[np.ndarray] | None = None, wake: int = 0,
          phonemes: tuple[list, int] | None = None, phoneme_head: dict | None = None,
          negatives: tuple[int, list[tuple[int, ...]]] | None = None,
          phoneme_teacher: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """audio_train: int16 or float [N, clip_samples]; x_val: numpy features. Returns the best-on-val model.
    partners (with cfg.pair_weight > 0): for each training example the indices of its near misses
    (hostside/data/pairs.py); each example of a batch that has any is joined by one drawn at random, augmented
    alike, and pair_loss on the wake class `wake` is added, weighted, to the batch's loss.
    phonemes (with cfg.ctc_weight > 0): (each training example's phoneme target or None, the number of phonemes),
    hostside/data/phonetic.py's clip_targets; a PhonemeHead on the model's trunk adds its CTC loss, weighted, to the
    batch's loss; its weights at the kept epoch come back in the info as "phoneme_head". phoneme_head: a PhonemeHead's
    state to start from (compression fine-tunes the head it was given; default: a new head).
    negatives (with cfg.ctc_negative > 0): (the class whose examples are negatives, the phrase's phoneme sequences):
    PhonemeHead.negative_loss on that class's examples is added, weighted, to the batch's loss.
    phoneme_teacher (with cfg.ctc_distill > 0): a PhonemeTeacher; PhonemeHead.distill_loss (cfg.ctc_distill_on
    "frames") or distill_score_loss ("score") of every example of the batch against it (the same augmented input) is
    added, weighted, to the batch's loss."""
    from .errors import PqlrError
    if cfg.ctc_weight > 0:
        if phonemes is None:
            raise PqlrError("ctc_weight > 0 needs each training example's phoneme target (hostside/data/phonetic.py)")
        if len(phonemes[0]) != len(audio_train):
            raise PqlrError(f"phonemes: {len(phonemes[0])} targets for {len(audio_train)} training examples")
        if not hasattr(model, "trunk"):
            raise PqlrError(f"the phoneme CTC loss reads a convolutional trunk along time; {type(model).__name__} "
                            f"has none: use a DS-CNN (e.g. --model dscnn-logmel)")
    if cfg.ctc_negative > 0 and not (negatives and negatives[1]):
        raise PqlrError("ctc_negative > 0 needs the negative class and the phrase's phoneme sequences")
    if cfg.ctc_distill > 0 and phoneme_teacher is None:
        raise PqlrError("ctc_distill > 0 needs the teachers' phoneme heads (a PhonemeTeacher)")
    if cfg.kd_mix > 0 and teacher is None:
        raise PqlrError("kd_mix > 0 distils on blended inputs: it needs a teacher")
    if cfg.pair_weight > 0 and partners is None:
        raise PqlrError("pair_weight > 0 needs each training example's near misses (partners)")
    if partners is not None and len(partners) != len(audio_train):
        raise PqlrError(f"partners: {len(partners)} lists for {len(audio_train)} training examples")
    pairing = cfg.pair_weight > 0
    if pairing:
        counts = torch.tensor([len(p) for p in partners], dtype=torch.long)
        starts = torch.cumsum(counts, 0) - counts
        flat = torch.from_numpy(np.concatenate([np.asarray(p, dtype=np.int64) for p in partners])
                                if counts.sum() else np.zeros(0, np.int64))
    set_seed(cfg.seed)
    dev = device()
    model = model.to(dev)
    params = list(model.parameters())
    aux = None
    if cfg.ctc_weight > 0:              # the model's own initial weights were drawn before: the same without it
        targets, n_phonemes = phonemes
        aux = (PhonemeHead.from_state(phoneme_head, n_phonemes) if phoneme_head is not None
               else PhonemeHead(model.cfg.group_widths()[-1], n_phonemes)).to(dev)
        params += list(aux.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(audio_train) / cfg.batch_size)))
    slow = ema_too_slow(cfg.ema, cfg.epochs * steps_per_epoch)
    if slow:
        import warnings
        warnings.warn(slow, stacklevel=2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    aug = Augmenter(fe, cfg, noise_bank, gen)
    scale = 1 / 32768.0 if audio_train.dtype == np.int16 else 1.0
    audio = torch.from_numpy(audio_train)
    yt = torch.from_numpy(y_train)
    ce = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history, best, best_state, best_aux = [], -1.0, None, None
    pairs_seen = 0
    ctc_sum, ctc_n = 0.0, 0
    neg_sum = 0.0
    hinge = cfg.ctc_negative > 0                # TrainConfig refuses it without the phoneme loss (aux)
    if hinge:
        neg_class, neg_sequences = negatives
    if teacher is not None:
        teacher = teacher.to(dev).eval()
    heads_kd = cfg.ctc_distill > 0
    if heads_kd:
        phoneme_teacher = phoneme_teacher.to(dev).eval()
    kd_sum = mix_sum = 0.0
    averaged = aux_averaged = None
    with progress_bar("training", cfg.epochs * steps_per_epoch, enabled=progress) as advance, nhwc(model), \
            (nhwc(teacher) if teacher is not None else nullcontext()), \
            (nhwc(phoneme_teacher) if heads_kd else nullcontext()):
        if cfg.ema:                             # weights and BatchNorm statistics averaged step by step
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
            averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
            aux_averaged = (AveragedModel(aux, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if aux is not None
                            else None)      # the phoneme head averaged alike, to match the averaged trunk
        for epoch in range(cfg.epochs):
            model.train()
            perm = torch.randperm(len(audio), generator=gen)
            total = correct = 0
            loss_sum = 0.0
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i: i + cfg.batch_size]
                b = len(idx)
                if pairing:                 # each example with near misses brings one, augmented as it is
                    has = torch.nonzero(counts[idx] > 0).flatten()
                    pick = (torch.rand(len(has), generator=gen) * counts[idx[has]]).long()
                    mates = flat[starts[idx[has]] + pick]
                    tie = torch.cat([torch.arange(b), has])
                    xa = aug(audio[torch.cat([idx, mates])].to(dev).float() * scale, tie=tie)
                    maps = model.trunk(xa) if aux is not None else None
                    out = model.head(maps) if aux is not None else model(xa)
                    logits = out[:b]
                    pairs_seen += len(has)
                else:
                    xb = aug(audio[idx].to(dev).float() * scale)
                    maps = model.trunk(xb) if aux is not None else None
                    logits = model.head(maps) if aux is not None else model(xb)
                yb = yt[idx].to(dev)
                if loss_fn is not None:
                    with torch.no_grad():
                        t_logits = teacher(xa[:b] if pairing else xb) if teacher is not None else None
                    loss = loss_fn(logits, yb, t_logits)
                else:
                    loss = ce(logits, yb)
                if pairing:
                    cap = smoothed_target_log_odds(cfg.label_smoothing, out.shape[1])
                    loss = loss + cfg.pair_weight * pair_loss(out[has.to(dev)], out[b:], wake, cfg.pair_margin,
                                                              cfg.pair_sides, cap)
                if aux is not None:
                    ctc = aux.loss(maps[:b], [targets[i] for i in idx.tolist()])
                    loss = loss + cfg.ctc_weight * ctc
                    ctc_sum, ctc_n = ctc_sum + ctc.item(), ctc_n + 1
                if cfg.kd_mix > 0:
                    mixed = mixed_kd_loss(model, teacher, xa[:b] if pairing else xb, gen)
                    loss = loss + cfg.kd_mix * mixed
                    mix_sum += mixed.item()
                if heads_kd:
                    xt = xa[:b] if pairing else xb
                    kd = (aux.distill_loss(maps[:b], phoneme_teacher(xt)) if cfg.ctc_distill_on == "frames" else
                          aux.distill_score_loss(maps[:b], phoneme_teacher.sequences, phoneme_teacher.score(xt)))
                    loss = loss + cfg.ctc_distill * kd
                    kd_sum += kd.item()
                if hinge:
                    neg = aux.negative_loss(maps[:b][yb == neg_class], neg_sequences, cfg.ctc_negative_floor)
                    loss = loss + cfg.ctc_negative * neg
                    neg_sum += neg.item()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                    if aux_averaged is not None:
                        aux_averaged.update_parameters(aux)
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                total += len(yb)
                advance(info=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_sum / total:.3f} acc {correct / total:.3f}")
            kept = averaged.module if averaged is not None else model     # what selection judges and keeps
            val_acc = accuracy(kept, x_val, y_val)
            history.append({"epoch": epoch + 1, "loss": loss_sum / total, "train_acc": correct / total,
                            "val_acc": val_acc, **({"ctc_loss": ctc_sum / max(1, ctc_n)} if aux is not None else {}),
                            **({"negative_loss": neg_sum / max(1, ctc_n)} if hinge else {}),
                            **({"phoneme_distill_loss": kd_sum / max(1, ctc_n)} if heads_kd else {}),
                            **({"mixed_distill_loss": mix_sum / steps_per_epoch} if cfg.kd_mix > 0 else {})})
            ctc_sum, ctc_n, neg_sum, kd_sum, mix_sum = 0.0, 0, 0.0, 0.0, 0.0
            if not np.isnan(val_acc) and val_acc > best:
                best, best_state = val_acc, copy.deepcopy(kept.state_dict())
                kept_aux = aux_averaged.module if aux_averaged is not None else aux
                best_aux = copy.deepcopy(kept_aux.state_dict()) if aux is not None else None
    if best_state is not None:
        model.load_state_dict(best_state)
    info = {"history": history, "device": dev, "best_val_acc": best, "train_config": asdict(cfg),
            **({"ema_warning": slow} if slow else {})}
    if aux is not None:         # beside the student, not in it: for reading its phoneme posteriors (analysis)
        info["phoneme_head"] = {k: v.cpu() for k, v in (best_aux or aux.state_dict()).items()}
    if pairing:
        info["pairs"] = {"examples_with_near_misses": int((counts > 0).sum()), "near_misses": int(counts.sum()),
                         "pairs_per_epoch": pairs_seen / max(1, cfg.epochs)}
    return model.cpu().eval(), info


def save_checkpoint(path: Path, model: nn.Module, name: str, extra: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": name, "kind": model.kind, "config": model.cfg.to_dict(), "state_dict": model.state_dict(),
                "params": param_count(model), **extra}, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    from .errors import PqlrError
    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise PqlrError(f"no checkpoint at {path}: train one with `pqlr train`") from None
    except Exception as exc:
        raise PqlrError(f"{path} is not a pqlr checkpoint ({type(exc).__name__}: {exc})") from None
    model = model_from_config(ck.get("kind", "dscnn"), ck["config"])
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck
