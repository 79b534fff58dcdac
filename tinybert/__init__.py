"""TinyBERT distillation on PaddlePaddle: teacher fine-tuning, augmentation, general and
two-stage task distillation, export and serving.

Modules (docs/architecture.md): ``tasks``/``data``/``features``/``batches``/``corpus`` (data),
``models``/``internals``/``mapping``/``losses``/``student`` (models and the method),
``stage``/``train``/``optim``/``reporter``/``checkpoint``/``distributed``/``accelerate``
(training, in one or several processes), ``finetune``/``distill``/``general`` (the jobs),
``augment``/``glove`` (augmentation), ``deploy``/``inference``/``latency``/``export``
(deployment), ``tools`` (asset converters, student builders). Importing the package does not
import Paddle.
"""

__version__ = "0.2.0"
