"""TinyBERT general distillation: a small student of any shape learns a BERT teacher on plain text.

The flags, with examples: ``python general_distill.py --help`` (tinybert/commands/general.py); installed, the same
command is ``tinybert-general``.
"""
from tinybert.commands.general import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
