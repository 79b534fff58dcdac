"""TinyBERT task distillation, stage 1 (--intermediate_distill) then stage 2 (flags of

The flags, with examples: ``python task_distill.py --help`` (tinybert/commands/distill.py); installed, the same
command is ``tinybert-distill``.
"""
from tinybert.commands.distill import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
