"""Train a model on log-mel features (CPU by default, CUDA when present). Deterministic for a seed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .models.dscnn import DSCNN, DSCNNConfig
from .progress import progress_bar


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    time_shift_frames: int = 4      # augmentation: random roll along time


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    if len(y) == 0:
        return float("nan")
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i: i + batch])).argmax(1) for i in range(0, len(x), batch)])
    return float((pred.numpy() == y).mean())


def train(model_cfg: DSCNNConfig, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
          y_val: np.ndarray, cfg: TrainConfig = TrainConfig(), progress: bool = True) -> tuple[DSCNN, dict]:
    set_seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = DSCNN(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, int(np.ceil(len(x_train) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    xt = torch.from_numpy(x_train)
    yt = torch.from_numpy(y_train)
    history = []
    with progress_bar("training", cfg.epochs, enabled=progress) as advance:
        for epoch in range(cfg.epochs):
            model.train()
            perm = torch.randperm(len(xt), generator=gen)
            total, correct, loss_sum = 0, 0, 0.0
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i: i + cfg.batch_size]
                xb, yb = xt[idx], yt[idx]
                if cfg.time_shift_frames:
                    shift = int(torch.randint(-cfg.time_shift_frames, cfg.time_shift_frames + 1, (1,),
                                              generator=gen))
                    xb = torch.roll(xb, shift, dims=1)
                xb, yb = xb.to(device), yb.to(device)
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                total += len(yb)
            model.cpu()
            val_acc = accuracy(model, x_val, y_val)
            model.to(device)
            history.append({"epoch": epoch + 1, "loss": loss_sum / total, "train_acc": correct / total,
                            "val_acc": val_acc})
            advance(info=f"loss {loss_sum / total:.3f} train {correct / total:.3f} val {val_acc:.3f}")
    return model.cpu().eval(), {"history": history, "device": device}


def save_checkpoint(path: Path, model: DSCNN, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": "dscnn", "config": model.cfg.to_dict(), "state_dict": model.state_dict(), **extra}, path)


def load_checkpoint(path: Path) -> tuple[DSCNN, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    cfg = DSCNNConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    model = DSCNN(cfg)
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck
