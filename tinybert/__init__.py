"""TinyBERT distillation on PaddlePaddle: teacher fine-tuning, augmentation, general and
two-stage task distillation, export and serving.

Wings (docs/architecture.md; imports only run downward): ``data`` (tasks, files, token stores,
batches, the streamed corpus) and ``models`` (loading, internals, the student layer) at the
bottom, then ``training`` (the stage set-up and the loop, in one or several processes),
``serving`` (exports, the predictor, latency), ``distillation`` (teacher fine-tuning, both task
stages, general distillation, losses, layer maps) and ``augmentation``; on top ``api`` (one
function per job), ``settings`` (the jobs' frozen settings), ``cli`` and ``tools``.

From Python::

    from tinybert import api
    from tinybert.settings import DistillSettings
    api.distill(DistillSettings(task_name="SST-2", teacher_path="teacher/best_model", output_dir="out"))

Importing the package, ``tinybert.api`` or ``tinybert.settings`` does not import Paddle.
"""

__version__ = "0.3.1"
