"""Export a classifier checkpoint of this suite for serving, and check it on the dev set.

The flags, with examples: ``python export_model.py --help`` (tinybert/commands/export.py); installed, the same
command is ``tinybert-export``.
"""
from tinybert.commands.export import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
