"""The TFLite interpreter as the oracle for imported models (ai-edge-litert, the `import` extra).

It runs TFLite's reference kernels (OpResolverType.BUILTIN_REF, as TFLite Micro does: no XNNPACK, whose int8
path requantises in float) and keeps every intermediate tensor, so each pqlr layer can be compared with the
tensor it stands for. State variables persist between `step` calls, as on the board.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import PqlrError


class TfliteOracle:
    def __init__(self, path: str | Path):
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise PqlrError("the TFLite oracle needs ai-edge-litert: pip install -e '.[import]'") from None
        self.it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.inp["shape"])

    def step(self, x: np.ndarray) -> np.ndarray:
        """One invocation on int8 input x (any shape with the input's size); the output, flattened."""
        self.it.set_tensor(self.inp["index"], np.asarray(x, np.int8).reshape(self.input_shape))
        self.it.invoke()
        return self.it.get_tensor(self.out["index"]).reshape(-1)

    def tensor(self, index: int) -> np.ndarray:
        return self.it.get_tensor(index)
