"""Augment a GLUE task's training set for TinyBERT task distillation (docs/math.md#data-augmentation).

The flags, with examples: ``python data_augmentation.py --help`` (tinybert/commands/augment.py); installed, the same
command is ``tinybert-augment``.
"""
from tinybert.commands.augment import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
