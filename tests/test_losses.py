"""docs/math.md#masked-losses: every loss equals an independent numpy computation on padded batches."""
import numpy as np
import paddle
import pytest

from tinybert.distillation import losses

RNG = np.random.default_rng(0)


def padded_mask(lengths, width):
    return np.array([[1] * n + [0] * (width - n) for n in lengths], dtype=np.int64)


def numpy_hidden_mse(s, t, mask):
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            if mask[b, i]:
                total += np.sum((s[b, i] - t[b, i]) ** 2)
                count += s.shape[2]
    return total / count


def numpy_attention_mse(s, t, mask):
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for h in range(s.shape[1]):
            for i in range(s.shape[2]):
                for j in range(s.shape[3]):
                    if mask[b, i] and mask[b, j]:
                        total += (s[b, h, i, j] - t[b, h, i, j]) ** 2
                        count += 1
    return total / count


def numpy_soft_ce(zs, zt, T):
    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    return float(np.mean(-np.sum(softmax(zt / T) * np.log(softmax(zs / T)), axis=-1)))


def test_hidden_mse_matches_numpy_over_real_tokens_only():
    s, t = RNG.normal(size=(3, 7, 5)).astype("float32"), RNG.normal(size=(3, 7, 5)).astype("float32")
    mask = padded_mask([7, 4, 2], 7)
    got = losses.hidden_mse(paddle.to_tensor(s), paddle.to_tensor(t), paddle.to_tensor(mask))
    assert abs(float(got) - numpy_hidden_mse(s, t, mask)) < 1e-5


def test_attention_mse_matches_numpy_over_real_pairs_only():
    s, t = RNG.normal(size=(2, 3, 6, 6)).astype("float32"), RNG.normal(size=(2, 3, 6, 6)).astype("float32")
    mask = padded_mask([6, 3], 6)
    got = losses.attention_mse(paddle.to_tensor(s), paddle.to_tensor(t), paddle.to_tensor(mask))
    assert abs(float(got) - numpy_attention_mse(s, t, mask)) < 1e-5


def test_padding_values_do_not_change_masked_losses():
    s, t = RNG.normal(size=(2, 5, 4)).astype("float32"), RNG.normal(size=(2, 5, 4)).astype("float32")
    mask = padded_mask([5, 2], 5)
    noisy = s.copy()
    noisy[1, 2:] += 1000.0
    a = losses.hidden_mse(paddle.to_tensor(s), paddle.to_tensor(t), paddle.to_tensor(mask))
    b = losses.hidden_mse(paddle.to_tensor(noisy), paddle.to_tensor(t), paddle.to_tensor(mask))
    assert float(a) == pytest.approx(float(b), abs=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.5])
def test_soft_cross_entropy_matches_numpy_without_T_squared(T):
    zs, zt = RNG.normal(size=(4, 3)).astype("float32"), RNG.normal(size=(4, 3)).astype("float32")
    got = losses.soft_cross_entropy(paddle.to_tensor(zs), paddle.to_tensor(zt), T)
    assert abs(float(got) - numpy_soft_ce(zs, zt, T)) < 1e-5


def test_regression_prediction_loss_is_mse_on_teacher_outputs_and_not_zero():
    zs, zt = RNG.normal(size=(6, 1)).astype("float32"), RNG.normal(size=(6, 1)).astype("float32")
    got = float(losses.logits_mse(paddle.to_tensor(zs), paddle.to_tensor(zt)))
    assert abs(got - float(np.mean((zs - zt) ** 2))) < 1e-5
    assert got > 0  # soft CE over one logit would be identically 0 (PaddleNLP's STS-B bug)
    assert float(losses.soft_cross_entropy(paddle.to_tensor(zs), paddle.to_tensor(zt))) == pytest.approx(0, abs=1e-7)
