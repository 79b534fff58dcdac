"""Models: checkpoints in, layers out. Beside ``data`` at the bottom (imports only ``errors``).

- ``loading``: the one place that turns a checkpoint (PaddleNLP name or directory) into a
  classifier, tokenizer or masked LM, with every weight accounted for;
- ``internals``: hidden states and pre-softmax attention scores of one forward pass;
- ``student``: a student and its stage-1 projections as one layer (what data parallelism wraps).
"""
