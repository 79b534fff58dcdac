"""The method: TinyBERT's jobs and the math they train with. The top wing with ``augmentation``:
it imports ``training``, ``models``, ``data`` and ``serving`` (for ``--export_dir``).

- ``losses``: the loss terms as pure functions of tensors and the token mask;
- ``mapping``: the layer map (uniform, or from ``--layer_map``);
- ``teacher``: fine-tuning the teacher (``finetune_teacher.py``);
- ``task``: task distillation, stage 1 (intermediate layers) and stage 2 (prediction layer);
- ``general``: general distillation on a plain-text corpus.
"""
