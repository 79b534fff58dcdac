"""Fine-tune a BERT or ERNIE teacher on a GLUE or CLUE task (flags of PaddleNLP's run_glue.py).

The flags, with examples: ``python finetune_teacher.py --help`` (tinybert/commands/finetune.py); installed, the same
command is ``tinybert-finetune``.
"""
from tinybert.commands.finetune import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
