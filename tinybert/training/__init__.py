"""Training, in one or several processes; knows nothing of distillation. Imports ``data``
and ``models``.

- ``stage``: the set-up every training stage shares, around a stage's ``Job``;
- ``loop``: the loop (``Trainer``), its loss meter and signal handling;
- ``optim``: AdamW with warm-up and linear decay;
- ``checkpoint``: atomic writes and the resumable training state;
- ``distributed``: one or several processes behind one interface; ``rng``: each rank's random state;
- ``accelerate``: mixed precision;
- ``reporter``: progress bar, log lines, VisualDL, ``eval_results.jsonl``;
- ``setup``: flag checks and the output-directory guard;
- ``evaluate``, ``metrics``: dev-set logits (shared by the ranks) and the GLUE metrics.
"""
