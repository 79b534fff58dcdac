"""Data: from task files to batches. The bottom wing: it imports nothing of the package but
``errors``.

- ``tasks``: the GLUE tasks as one table of ``TaskSpec`` values;
- ``glue``: locating a task's files (downloading through PaddleNLP when online) and reading
  TSV rows into ``Example``s with file-and-line errors;
- ``features``: tokenized examples, dynamic padding, length-bucketed epoch order;
- ``store``: a file featurized once into a memory-mapped token store (``fast_tokenizer``,
  ``parallel``: how it is encoded);
- ``task_data``: a task's training split and dev files, in memory or through their stores;
- ``batches``: the loop's batch sources (a featurized task, a streamed corpus), sharded per rank;
- ``corpus``: general distillation's streamed, packed, resumable corpus;
- ``hparams``: the per-task hyperparameter table ``tinybert/data/glue.json``.
"""
