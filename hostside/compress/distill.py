"""Knowledge distillation: α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y); the teacher one network
or an ensemble of several (TeacherEnsemble)."""
from __future__ import annotations

import math

import torch
from torch import nn


def kd_loss(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, temperature: float = 6.0,
            alpha: float = 0.7, label_smoothing: float = 0.0) -> torch.Tensor:
    """label_smoothing applies to the hard-label term only (training from scratch uses it; fine-tunes do not)."""
    T = temperature
    log_p_s = nn.functional.log_softmax(z_s / T, dim=1)
    p_t = nn.functional.softmax(z_t.to(z_s.dtype) / T, dim=1)
    kl = nn.functional.kl_div(log_p_s, p_t, reduction="batchmean")      # KL(p_t ‖ p_s)
    return alpha * T * T * kl + (1 - alpha) * nn.functional.cross_entropy(z_s, y, label_smoothing=label_smoothing)


class TeacherEnsemble(nn.Module):
    """Several teachers as one: logits whose softmax at `temperature` is the mean of the members' softened posteriors,
    T·log(mean_i softmax(z_i/T)) — what multi-teacher distillation averages (each member's soft labels, not its
    logits). At T = 1 its posterior is the ensemble's mean posterior, the one an ensemble detector thresholds."""

    def __init__(self, members, temperature: float):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.temperature = float(temperature)

    def forward(self, x):
        T = self.temperature
        logp = torch.stack([nn.functional.log_softmax(m(x) / T, dim=1) for m in self.members])
        return T * (torch.logsumexp(logp, dim=0) - math.log(len(self.members)))
