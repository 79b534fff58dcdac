"""Serving: exports and what runs them. Imports ``training`` (checkpoint writes, evaluation).

- ``export``: a model as a Paddle inference graph (``--export_dir``);
- ``deploy``: ``export_model.py``: Paddle Inference, ONNX and ONNX INT8 exports, checked on the
  dev set;
- ``inference``: the ``Predictor`` that serves an export with the tokenizer alone;
- ``latency``: the project's one way of timing inference.
"""
