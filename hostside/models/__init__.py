"""Models and the registry of named architectures (students and teachers)."""
from __future__ import annotations

from torch import nn

from ..errors import PqlrError
from .dscnn import DSCNN, DSCNNConfig
from .transformer import KWSTransformer, TransformerConfig

# name → (class, config class, defaults). Input shape and class count come from the data.
REGISTRY = {
    "dscnn": (DSCNN, DSCNNConfig, dict(channels=32, blocks=2)),
    "dscnn-mlperf": (DSCNN, DSCNNConfig, dict(channels=64, blocks=4, dropout=0.2)),   # MLPerf Tiny KWS geometry
    "dscnn-wide": (DSCNN, DSCNNConfig, dict(channels=416, blocks=6, dropout=0.2)),    # teacher, > 1M params
    # the same network on 40 log-mel bands up to 8 kHz (features logmel40): a 2×4 stem stride keeps its maps at
    # 25×10 (twice the MFCC model's MACs); benchmarks/quality/attempts.md says what the bands above 4 kHz buy
    "dscnn-logmel": (DSCNN, DSCNNConfig, dict(channels=64, blocks=4, dropout=0.2, stem_stride=(2, 4))),
    # streamable: a 5-frame stem over all features, unpadded temporal depthwise convs (`pqlr export --streaming`)
    "dscnn-stream": (DSCNN, DSCNNConfig, dict(channels=64, blocks=4, dropout=0.2, temporal=True, stem_kernel=(5, 1),
                                             stem_stride=(1, 1))),
    "microbert-2l": (KWSTransformer, TransformerConfig, dict(dim=128, layers=2, heads=4, mlp_dim=256)),
    "tinybert-6l": (KWSTransformer, TransformerConfig, dict(dim=192, layers=6, heads=6, mlp_dim=768)),
}


def build_model(name: str, input_shape: tuple[int, int], n_classes: int, **overrides) -> nn.Module:
    if name not in REGISTRY:
        raise PqlrError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}")
    cls, cfg_cls, defaults = REGISTRY[name]
    fields = set(cfg_cls.__dataclass_fields__)
    bad = sorted(set(overrides) - fields)
    if bad:
        raise PqlrError(f"model {name!r} has no option(s) {bad}; it takes {sorted(fields - {'input_shape', 'n_classes'})}")
    cfg = cfg_cls(**(defaults | overrides | {"input_shape": tuple(input_shape), "n_classes": n_classes}))
    return cls(cfg)


def model_from_config(kind: str, config: dict) -> nn.Module:
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    if kind == "dscnn":
        return DSCNN(DSCNNConfig(**cfg))
    if kind == "transformer":
        return KWSTransformer(TransformerConfig(**cfg))
    raise PqlrError(f"checkpoint has unknown model kind {kind!r}")


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["DSCNN", "DSCNNConfig", "KWSTransformer", "TransformerConfig", "REGISTRY", "build_model",
           "model_from_config", "param_count"]
