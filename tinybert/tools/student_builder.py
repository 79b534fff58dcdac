"""Build a TinyBERT student from a BERT checkpoint by keeping a subset of its layers.

What a user does when no general-distilled TinyBERT exists for their teacher: start the
student from the teacher's own weights (embeddings, some encoder layers, pooler), as
DistilBERT and "Patient KD" do, then run task distillation. The result is a PaddleNLP
``TinyBertForSequenceClassification`` checkpoint directory with the v2 layout
(docs/math.md#projections): one projection per hidden state (``fit_denses``, M + 1 of them) of size
``fit_size = hidden_size`` (the student is exactly as wide as its source), initialised to the
identity so that stage 1 starts from "student hidden state == projected hidden state". The
shared ``fit_dense`` of v1 checkpoints is not written, so the distiller picks per-layer
projections. The classifier is freshly initialised (seeded) unless ``keep_classifier`` copies
the source's; note that PaddleNLP's TinyBERT classifier reads ``relu(pooled)`` where BERT's
reads ``pooled``, so a copied head is a starting point, not the source's exact function.

Which layers: ``layers`` lists 0-based source layer indices, strictly increasing (``1,3,5``).
``num_layers=M`` picks them evenly: student layer j (1-based) starts as source layer
``floor(j * N / M)`` (1-based), i.e. the layer it is trained to imitate under the uniform
layer map (docs/math.md#layer-map: student ``hidden[j]`` learns teacher ``hidden[j*k]``,
k = N / M). A 6-layer source with M = 3 keeps 0-based layers 1, 3, 5; a 12-layer source
with M = 4 keeps 2, 5, 8, 11.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserError
from ..models.loading import (
    CONFIG_FILES,
    WEIGHTS_FILE,
    encoder_weights,
    read_state_dict,
)

STUDENT_PREFIX = "tinybert."
RECORD_FILE = "student_source.json"
COPIED_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size", "hidden_act",
                      "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                      "type_vocab_size", "initializer_range", "layer_norm_eps", "pad_token_id", "pool_act")


def evenly_spaced_layers(source_layers: int, student_layers: int) -> List[int]:
    """0-based source layers for an M-layer student: ``floor(j * N / M) - 1`` for j = 1..M."""
    if not 1 <= student_layers <= source_layers:
        raise UserError(f"--num_layers {student_layers}: choose 1 to {source_layers} (the source has "
                        f"{source_layers} layers)")
    return [(j * source_layers) // student_layers - 1 for j in range(1, student_layers + 1)]


def parse_layers(text: str) -> List[int]:
    """``"1,3,5"`` -> ``[1, 3, 5]``; a one-line error for anything else."""
    try:
        layers = [int(part) for part in str(text).split(",") if part.strip() != ""]
    except ValueError:
        raise UserError(f"--layers {text}: give comma-separated 0-based layer indices, e.g. --layers 1,3,5") from None
    if not layers:
        raise UserError("--layers is empty: give comma-separated 0-based layer indices, e.g. --layers 1,3,5")
    return layers


def check_layers(layers: Sequence[int], source_layers: int) -> List[int]:
    layers = list(layers)
    bad = [i for i in layers if not 0 <= i < source_layers]
    if bad:
        raise UserError(f"--layers {','.join(map(str, layers))}: layer {bad[0]} does not exist; the source has "
                        f"layers 0 to {source_layers - 1} (0-based)")
    if any(b <= a for a, b in zip(layers, layers[1:])):
        raise UserError(f"--layers {','.join(map(str, layers))}: list each layer once, in increasing order "
                        f"(the student keeps the source's layer order)")
    return layers


def read_source(source_dir: str):
    """``(config dict, state dict without prefix)`` of a BERT checkpoint directory."""
    config_path = next((os.path.join(source_dir, f) for f in CONFIG_FILES
                        if os.path.isfile(os.path.join(source_dir, f))), None)
    if config_path is None:
        raise UserError(f"--source {source_dir}: no config.json; give a BERT checkpoint directory written by "
                        f"save_pretrained (e.g. scripts/convert_minilm.py output or a fine-tuned best_model/)")
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as err:
        raise UserError(f"{config_path} is not valid JSON ({err})") from None
    if isinstance(config.get("init_args"), list) and config["init_args"]:  # PaddleNLP < 2.5 layout
        config = config["init_args"][0]
    weights = os.path.join(source_dir, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise UserError(f"--source {source_dir}: no {WEIGHTS_FILE}; the checkpoint is incomplete")
    state = read_state_dict(weights)
    found = encoder_weights(state)  # BertFor* / TinyBertFor* / a bare BertModel
    if found is not None:
        heads = {k: v for k, v in state.items() if k.startswith("classifier.")}
        return config, found[1], heads
    raise UserError(f"{weights} holds no BERT embeddings (embeddings.word_embeddings.weight); "
                    f"is {source_dir} a BERT checkpoint?")


def _numpy(value) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def student_state(source: Dict[str, object], layers: Sequence[int], hidden_size: int) -> Dict[str, np.ndarray]:
    """The student's encoder state (``tinybert.*`` names): source embeddings, chosen layers renumbered,
    pooler, and identity ``fit_denses``."""
    state = {}
    for name, value in source.items():
        if name.startswith(("embeddings.", "pooler.")):
            state[STUDENT_PREFIX + name] = _numpy(value)
    for new_index, old_index in enumerate(layers):
        prefix = f"encoder.layers.{old_index}."
        found = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        if not found:
            raise UserError(f"the source checkpoint has no weights for layer {old_index} ({prefix}*)")
        for rest, value in found.items():
            state[f"{STUDENT_PREFIX}encoder.layers.{new_index}.{rest}"] = _numpy(value)
    for index in range(len(layers) + 1):
        state[f"{STUDENT_PREFIX}fit_denses.{index}.weight"] = np.eye(hidden_size, dtype=np.float32)
        state[f"{STUDENT_PREFIX}fit_denses.{index}.bias"] = np.zeros(hidden_size, dtype=np.float32)
    return state


def build_student(source_dir: str, output_dir: str, layers: Optional[Sequence[int]] = None,
                  num_layers: Optional[int] = None, keep_classifier: bool = False, seed: int = 42) -> dict:
    """Write the student checkpoint to ``output_dir`` (atomically); return what was built."""
    import paddle
    from paddlenlp.transformers import (
        TinyBertForSequenceClassification,
        TinyBertTokenizer,
    )

    from ..training.checkpoint import atomic_directory

    if (layers is None) == (num_layers is None):
        raise UserError("give exactly one of --layers (e.g. 1,3,5) and --num_layers (e.g. 3)")
    config, source, heads = read_source(source_dir)
    missing = [k for k in ("num_hidden_layers",) + COPIED_CONFIG_KEYS[:4] if k not in config]
    if missing:
        raise UserError(f"--source {source_dir}: config lacks {', '.join(missing)}; is it a BERT config?")
    depth = int(config["num_hidden_layers"])
    chosen = evenly_spaced_layers(depth, num_layers) if num_layers is not None else check_layers(layers, depth)
    hidden = int(config["hidden_size"])

    num_labels = int(config.get("num_labels", 2))
    if keep_classifier and "classifier.weight" in heads:
        num_labels = int(heads["classifier.weight"].shape[-1])
    model_class, tokenizer_class = TinyBertForSequenceClassification, TinyBertTokenizer
    student_config = model_class.config_class(
        **{k: config[k] for k in COPIED_CONFIG_KEYS if k in config},
        num_hidden_layers=len(chosen), fit_size=hidden, num_labels=num_labels)
    paddle.seed(seed)  # the classifier's initialisation
    model = model_class(student_config)
    state = student_state(source, chosen, hidden)
    if keep_classifier and heads:
        state.update({k: _numpy(v) for k, v in heads.items()})
    own = model.state_dict()
    wrong = [f"{k} {list(v.shape)} vs {list(own[k].shape)}" for k, v in state.items()
             if k not in own or list(v.shape) != list(own[k].shape)]
    if wrong:
        raise UserError(f"--source {source_dir}: its weights do not fit its config.json ({wrong[0]}); "
                        f"the checkpoint is inconsistent")
    own.update({k: paddle.to_tensor(v) for k, v in state.items()})  # classifier: its fresh initialisation
    model.set_state_dict(own)
    # Written by hand, not with save_pretrained: the shared v1 "fit_dense" is left out so the
    # checkpoint says "per-layer projections" (docs/math.md#projections).
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith(f"{STUDENT_PREFIX}fit_dense.")}
    tokenizer = _load_source_tokenizer(tokenizer_class, source_dir)
    record = {"source": os.path.abspath(source_dir), "source_layers": depth, "kept_layers_0_based": chosen,
              "hidden_size": hidden, "fit_size": hidden, "projections": "per_layer fit_denses, identity",
              "classifier": "copied" if keep_classifier and heads else f"random (seed {seed})"}
    with atomic_directory(output_dir) as temporary:
        student_config.architectures = [model_class.__name__]
        student_config.save_pretrained(temporary)
        paddle.save(kept, os.path.join(temporary, WEIGHTS_FILE))
        tokenizer.save_pretrained(temporary)
        with open(os.path.join(temporary, RECORD_FILE), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
    record["parameters"] = int(sum(int(np.prod(v.shape)) for v in kept.values()))
    return record


def _load_source_tokenizer(tokenizer_class, source_dir: str):
    if not os.path.isfile(os.path.join(source_dir, "vocab.txt")):
        raise UserError(f"--source {source_dir}: no vocab.txt; the student needs the source's tokenizer files")
    try:
        return tokenizer_class.from_pretrained(source_dir)
    except Exception as err:
        raise UserError(f"--source {source_dir}: unusable tokenizer files ({str(err).splitlines()[0][:160]})") from None
