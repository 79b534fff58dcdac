"""Prune the fine-tuned teacher to a smaller BERT while distilling from it (CoFi-style learned masks).

The flags, with examples: ``python prune_distill.py --help`` (tinybert/commands/prune.py); installed, the same
command is ``tinybert-prune``.
"""
from tinybert.commands.prune import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
