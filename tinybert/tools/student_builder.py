"""Build a TinyBERT student from a BERT checkpoint: a subset of its layers, optionally narrower.

What a user does when no general-distilled TinyBERT exists for their teacher: start the
student from the teacher's own weights (embeddings, some encoder layers, pooler), as
DistilBERT and "Patient KD" do, then run task distillation. The result is a PaddleNLP
``TinyBertForSequenceClassification`` checkpoint directory with the v2 layout
(docs/math.md#projections): one projection per hidden state (``fit_denses``, M + 1 of them) of size
``fit_size`` = the source's hidden size. The shared ``fit_dense`` of v1 checkpoints is not
written, so the distiller picks per-layer projections. The classifier is freshly initialised
(seeded) unless ``keep_classifier`` copies the source's; note that PaddleNLP's TinyBERT
classifier reads ``relu(pooled)`` where BERT's reads ``pooled``, so a copied head is a
starting point, not the source's exact function.

Which layers: ``layers`` lists 0-based source layer indices, strictly increasing (``1,3,5``).
``num_layers=M`` picks them evenly: student layer j (1-based) starts as source layer
``floor(j * N / M)`` (1-based), i.e. the layer it is trained to imitate under the uniform
layer map (docs/math.md#layer-map: student ``hidden[j]`` learns teacher ``hidden[j*k]``,
k = N / M). A 6-layer source with M = 3 keeps 0-based layers 1, 3, 5; a 12-layer source
with M = 4 keeps 2, 5, 8, 11.

How wide: ``hidden_size`` and ``intermediate_size`` (default: the source's; a narrower
``hidden_size`` alone scales the FFN by the same ratio). Heads stay the source's. A narrower
student keeps the dimensions the fine-tuned source needs most on the task's training data
(``distillation.importance``, criterion in docs/math.md#narrow-students-cut-from-the-teacher), its
weights are cut by ``models.width``, and its projections start as the selection itself
(student dimension i -> the source dimension it came from); at full width they are the identity.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..distillation.importance import ImportanceData, teacher_importance
from ..errors import UserError
from ..models import width
from ..paths import check_not_replacing
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


def student_state(source: Dict[str, object], layers: Sequence[int], selection: width.Selection,
                  teacher_hidden: int) -> Dict[str, np.ndarray]:
    """The student's encoder state (``tinybert.*`` names): source embeddings, chosen layers renumbered,
    pooler, all cut to ``selection``, and ``fit_denses`` that map each student dimension back to
    the source dimension it came from (the identity when nothing is cut)."""
    for index in layers:
        if not any(k.startswith(f"encoder.layers.{index}.") for k in source):
            raise UserError(f"the source checkpoint has no weights for layer {index} (encoder.layers.{index}.*)")
    encoder = width.slice_encoder({k: _numpy(v) for k, v in source.items()}, layers, selection)
    state = {STUDENT_PREFIX + name: value for name, value in encoder.items()}
    projection = width.selection_projection(selection, teacher_hidden)
    for index in range(len(layers) + 1):
        state[f"{STUDENT_PREFIX}fit_denses.{index}.weight"] = projection.copy()
        state[f"{STUDENT_PREFIX}fit_denses.{index}.bias"] = np.zeros(teacher_hidden, dtype=np.float32)
    return state


def check_width(hidden_size: Optional[int], intermediate_size: Optional[int], config: dict) -> tuple:
    """``(hidden, intermediate)`` of the student: at most the source's, hidden a multiple of its heads."""
    source_hidden, source_inter = int(config["hidden_size"]), int(config["intermediate_size"])
    heads = int(config["num_attention_heads"])
    hidden = source_hidden if hidden_size is None else int(hidden_size)
    if hidden_size is not None and intermediate_size is None:
        intermediate = max(1, round(source_inter * hidden / source_hidden))  # the source's FFN ratio
    else:
        intermediate = source_inter if intermediate_size is None else int(intermediate_size)
    for flag, value, most in (("--hidden_size", hidden, source_hidden), ("--intermediate_size", intermediate,
                                                                         source_inter)):
        if value > most:
            raise UserError(f"{flag} {value} is larger than the source's {most}: a student cut from the source's "
                            f"weights can only be as wide or narrower; choose at most {most}")
        if value < 1:
            raise UserError(f"{flag} {value}: give a positive size (at most the source's {most})")
    if hidden % heads:
        below = (hidden // heads) * heads
        hint = f"e.g. {below} or {below + heads}" if below else f"at least {heads}"
        raise UserError(f"--hidden_size {hidden} is not a multiple of the source's {heads} attention heads (heads "
                        f"stay the source's so attention distillation applies; head size = hidden / heads): "
                        f"choose a multiple of {heads}, {hint}")
    return hidden, intermediate


def choose_width(source_dir: str, config: dict, heads: Dict[str, object], chosen: Sequence[int], hidden: int,
                 intermediate: int, data: Optional[ImportanceData]):
    """``(selection, criterion record)``: everything at the source's width, else by importance."""
    source_hidden, source_inter = int(config["hidden_size"]), int(config["intermediate_size"])
    num_heads = int(config["num_attention_heads"])
    if hidden == source_hidden and intermediate == source_inter:
        return width.full_selection(source_hidden, source_inter, len(chosen), num_heads), {"criterion": "none (full width)"}
    if data is None or not data.task_name:
        raise UserError(f"--hidden_size {hidden} / --intermediate_size {intermediate} is narrower than the source, "
                        f"so dimensions are chosen by importance on the task's training data: give --task_name "
                        f"(and --glue_dir, --max_seq_length as for task_distill.py)")
    from ..data.tasks import get_task

    spec = get_task(data.task_name)
    if "classifier.weight" not in heads:
        raise UserError(f"--source {source_dir} has no classifier (classifier.weight), and importance is measured "
                        f"with the task's loss: fine-tune it first (finetune_teacher.py --task_name {spec.name} "
                        f"--model_name_or_path {source_dir}) and give its best_model/ as --source")
    labels = int(_numpy(heads["classifier.weight"]).shape[-1])
    if labels != spec.num_labels:
        raise UserError(f"--source {source_dir} classifies into {labels} labels but {spec.name} has "
                        f"{spec.num_labels}: give the teacher fine-tuned on {spec.name}")
    states = [0] + [index + 1 for index in chosen]  # embedding output and the kept layers' outputs
    scores = teacher_importance(source_dir, data, states)
    selection = width.select(scores.hidden, [scores.qk[i] for i in chosen], [scores.v[i] for i in chosen],
                             [scores.neurons[i] for i in chosen], num_heads, hidden, intermediate)
    return selection, {"criterion": "importance: residual dims by mean |activation| over the embedding output "
                                    "and the kept layers' outputs; FFN neurons and per-head q/k, v dims by "
                                    "|sum_t activation x gradient| of the task loss per example",
                       "task": spec.name, "importance_examples": scores.examples,
                       "max_seq_length": data.max_seq_length, "selection": width.describe(selection)}


def build_student(source_dir: str, output_dir: str, layers: Optional[Sequence[int]] = None,
                  num_layers: Optional[int] = None, keep_classifier: bool = False, seed: int = 42,
                  hidden_size: Optional[int] = None, intermediate_size: Optional[int] = None,
                  data: Optional[ImportanceData] = None) -> dict:
    """Write the student checkpoint to ``output_dir`` (atomically); return what was built.

    ``data`` says where importance is measured; it is needed only for a student narrower than
    the source."""
    import paddle
    from paddlenlp.transformers import (
        TinyBertForSequenceClassification,
        TinyBertTokenizer,
    )

    from ..training.checkpoint import atomic_directory

    if (layers is None) == (num_layers is None):
        raise UserError("give exactly one of --layers (e.g. 1,3,5) and --num_layers (e.g. 3)")
    check_not_replacing([("--output_dir", output_dir, output_dir)], [("--source", source_dir)])
    config, source, heads = read_source(source_dir)
    tokenizer = _load_source_tokenizer(TinyBertTokenizer, source_dir)
    missing = [k for k in ("num_hidden_layers",) + COPIED_CONFIG_KEYS[:4] if k not in config]
    if missing:
        raise UserError(f"--source {source_dir}: config lacks {', '.join(missing)}; is it a BERT config?")
    depth = int(config["num_hidden_layers"])
    chosen = evenly_spaced_layers(depth, num_layers) if num_layers is not None else check_layers(layers, depth)
    source_hidden = int(config["hidden_size"])
    hidden, intermediate = check_width(hidden_size, intermediate_size, config)
    selection, criterion = choose_width(source_dir, config, heads, chosen, hidden, intermediate, data)

    num_labels = int(config.get("num_labels", 2))
    if keep_classifier and "classifier.weight" in heads:
        num_labels = int(heads["classifier.weight"].shape[-1])
    model_class = TinyBertForSequenceClassification
    copied = {k: config[k] for k in COPIED_CONFIG_KEYS if k in config}
    copied.update(hidden_size=hidden, intermediate_size=intermediate)
    student_config = model_class.config_class(**copied, num_hidden_layers=len(chosen), fit_size=source_hidden,
                                              num_labels=num_labels)
    paddle.seed(seed)  # the classifier's initialisation
    model = model_class(student_config)
    state = student_state(source, chosen, selection, source_hidden)
    if keep_classifier and heads:
        state.update(width.slice_classifier({k: _numpy(v) for k, v in heads.items()}, selection))
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
    record = {"source": os.path.abspath(source_dir), "source_layers": depth, "kept_layers_0_based": chosen,
              "source_hidden_size": source_hidden, "hidden_size": hidden,
              "source_intermediate_size": int(config["intermediate_size"]), "intermediate_size": intermediate,
              "fit_size": source_hidden,
              "projections": "per_layer fit_denses, " + ("identity" if hidden == source_hidden else
                                                         "the selection (student dim i -> its source dim)"),
              "classifier": "copied" if keep_classifier and heads else f"random (seed {seed})", **criterion}
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
