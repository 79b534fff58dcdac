"""AdamW with linear warm-up then linear decay: the optimizer of every training stage.

As in BERT and both TinyBERT references: no weight decay on biases and LayerNorm weights, no
gradient clipping unless asked (``max_grad_norm``), and only the parameters that are not frozen.
"""
from __future__ import annotations


def warmup_then_decay(warmup: int, total: int):
    """Learning-rate factor at a step: up linearly over ``warmup`` steps, then down to 0 at ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def build_optimizer(model, learning_rate: float, total_steps: int, warmup_proportion: float,
                    weight_decay: float, max_grad_norm: float = 0.0):
    """(optimizer, scheduler) for ``model``'s trainable parameters over ``total_steps`` steps."""
    import paddle

    factor = warmup_then_decay(int(warmup_proportion * total_steps), total_steps)
    scheduler = paddle.optimizer.lr.LambdaDecay(learning_rate, factor)
    trainable = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
    no_decay = {p.name for n, p in trainable if "bias" in n or "norm" in n.lower()}
    clip = paddle.nn.ClipGradByGlobalNorm(max_grad_norm) if max_grad_norm > 0 else None
    optimizer = paddle.optimizer.AdamW(learning_rate=scheduler, parameters=[p for _, p in trainable],
                                       weight_decay=weight_decay, apply_decay_param_fun=lambda name: name not in no_decay,
                                       grad_clip=clip)
    return optimizer, scheduler
