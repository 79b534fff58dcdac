"""TinyBERT task-specific distillation on PaddlePaddle.

Modules: ``tasks`` (GLUE table), ``data`` (TSV readers), ``features`` (featurization and
batching), ``metrics``/``evaluate``, ``train`` (the loop), ``finetune`` (teacher),
``internals``/``mapping``/``losses``/``distill`` (distillation), ``augment`` (data
augmentation), ``checkpoint`` (atomic saves). Importing the package does not import Paddle.
"""

__version__ = "0.2.0"
