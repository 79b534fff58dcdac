"""The command lines: one module per entry point, each ``parse_args(argv) -> settings`` and ``main(argv)``.

The root scripts (``finetune_teacher.py``, ``task_distill.py``, ...) and the console commands an
install gives (``tinybert-finetune``, ``tinybert-distill``, ...; pyproject.toml) both call these,
so they take exactly the same flags. Importing one applies ``tinybert.runtime.prepare_process``
first (CPU settings Paddle reads when it loads). The top of the package: it imports ``cli`` and,
inside ``main``, ``api``.
"""
