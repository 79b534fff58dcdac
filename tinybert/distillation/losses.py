"""TinyBERT's loss terms as pure functions of tensors (docs/math.md#masked-losses).

All intermediate terms are averaged over *real* tokens only (``mask`` is 1 for real tokens,
0 for padding). Both reference implementations average over padded positions too, so their
loss depends on how much padding a batch happens to have; with masking, a dynamically padded
batch has exactly the loss of the same batch padded to ``max_seq_length``.
"""
from __future__ import annotations


def hidden_mse(student, teacher, mask):
    """MSE over real tokens and the ``d`` features; student already projected to width d.

    student, teacher: [B, S, d]; mask: [B, S] of 0/1.
    """
    m = mask.astype(student.dtype).unsqueeze(-1)
    squared = ((student - teacher) ** 2) * m
    return squared.sum() / (m.sum() * student.shape[-1])


def attention_mse(student, teacher, mask):
    """MSE of pre-softmax scores over heads and query/key pairs of two real tokens.

    student, teacher: [B, H, S, S]; mask: [B, S] of 0/1.
    """
    m = mask.astype(student.dtype)
    pairs = (m.unsqueeze(2) * m.unsqueeze(1)).unsqueeze(1)  # [B, 1, S, S]
    squared = ((student - teacher) ** 2) * pairs
    return squared.sum() / (pairs.sum() * student.shape[1])


def soft_cross_entropy(student_logits, teacher_logits, temperature: float = 1.0):
    """``mean_b(-sum_c softmax(z_T/T)_c * log_softmax(z_S/T)_c)``, no T^2 factor
    (docs/math.md#prediction-layer-loss)."""
    import paddle.nn.functional as F

    targets = F.softmax(teacher_logits / temperature, axis=-1)
    log_probs = F.log_softmax(student_logits / temperature, axis=-1)
    return -(targets * log_probs).sum(axis=-1).mean()


def logits_mse(student_logits, teacher_logits):
    """Regression (STS-B) prediction loss: MSE between student and teacher outputs.

    Soft cross-entropy over a single logit is identically zero (PaddleNLP's STS-B bug), and
    gold labels (Huawei's choice) are not distillation.
    """
    return ((student_logits.reshape([-1]) - teacher_logits.reshape([-1])) ** 2).mean()
