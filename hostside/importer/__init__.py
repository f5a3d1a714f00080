"""Bring your own model: read a quantised TFLite flatbuffer into pqlr's integer graph (hostside/graph.py).

`import_tflite(path)` → ImportResult (the IntGraph and what was mapped how). Reading uses the `tflite`
package (TFLite's generated flatbuffer schema; the `import` extra), never a hand-written parser.
"""
from .tflite_reader import ImportResult, import_tflite

__all__ = ["ImportResult", "import_tflite"]
