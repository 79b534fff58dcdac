"""Classify sentences (or sentence pairs) with a model exported by export_model.py.

The flags, with examples: ``python predict.py --help`` (tinybert/commands/predict.py); installed, the same
command is ``tinybert-predict``.
"""
from tinybert.commands.predict import main, parse_args  # noqa: F401  (Paddle's process settings are applied there first)

if __name__ == "__main__":
    main()
