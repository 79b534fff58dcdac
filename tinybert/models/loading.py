"""Loading BERT / TinyBERT / ERNIE models and their tokenizers, by PaddleNLP name or directory.

This module is the one place that turns a checkpoint into a model: the classifiers of
fine-tuning and distillation, the masked LM of data augmentation, and the weights files
(``.pdparams`` or ``.safetensors``) that the student builder and the MiniLM converter read.

A local directory is what ``save_pretrained`` wrote (``config.json`` or the older
``model_config.json``, ``model_state.pdparams``, tokenizer files). Local checkpoints are
loaded by hand (config -> model -> state dict) so that every way a checkpoint can fail to
fit becomes a one-line error instead of a traceback or, worse, a silently random model:

- weights saved from a bare ``BertModel``/``TinyBertModel``/``ErnieModel`` are named without
  the ``bert.``/``tinybert.``/``ernie.`` prefix of the classifier classes; the prefix is added;
- anything missing beyond the parts a checkpoint may lawfully lack (the task's classifier
  head; for TinyBERT also the stage-1 projections and the pooler, which general TinyBERT
  checkpoints do not always carry) is refused: training from random initialisation after a
  one-line note is never what the user asked for;
- a BERT built with fused attention (``fuse=True``) has no per-layer query/key projections,
  which the attention scores of distillation are computed from (docs/math.md#what-is-distilled),
  so it is refused at load time rather than deep inside the first forward pass.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..errors import UserError, require

WEIGHTS_FILE = "model_state.pdparams"
SAFETENSORS_FILE = "model.safetensors"
CONFIG_FILES = ("config.json", "model_config.json")


@dataclass(frozen=True)
class ModelKind:
    model_class: str
    tokenizer_class: str
    base_prefix: str
    may_be_missing: Tuple[str, ...]  # name prefixes a checkpoint may lack (initialised fresh)


MODEL_KINDS: Dict[str, ModelKind] = {
    "bert": ModelKind("BertForSequenceClassification", "BertTokenizer", "bert", ("classifier.",)),
    "tinybert": ModelKind("TinyBertForSequenceClassification", "TinyBertTokenizer", "tinybert",
                          ("classifier.", "tinybert.fit_dense.", "tinybert.fit_denses.", "tinybert.pooler.")),
    # ERNIE 1.0-3.0 (ernie-3.0-base-zh, -mini-zh, -nano-zh, ...): a BERT encoder with its own
    # vocabulary and, in 3.0, task-type embeddings that default to task 0 when not fed.
    "ernie": ModelKind("ErnieForSequenceClassification", "ErnieTokenizer", "ernie", ("classifier.",)),
}
BASE_PREFIXES = tuple(kind.base_prefix for kind in MODEL_KINDS.values())

# The masked-LM head of a BERT pre-training checkpoint. Without it the "predictions" of
# augmentation would come from a random layer; the decoder weight is tied to the word
# embeddings, so it may be absent from a checkpoint.
MASKED_LM_HEAD = ("cls.predictions.transform.weight", "cls.predictions.transform.bias",
                  "cls.predictions.layer_norm.weight", "cls.predictions.layer_norm.bias")
MASKED_LM_TIED = ("cls.predictions.decoder.weight",)


def model_kind(model_type: str) -> ModelKind:
    kind = MODEL_KINDS.get(str(model_type).lower())
    if kind is None:
        raise UserError(f"unknown model type '{model_type}': use one of {', '.join(MODEL_KINDS)}")
    return kind


def _classes(kind: ModelKind):
    import paddlenlp.transformers as transformers

    return getattr(transformers, kind.model_class), getattr(transformers, kind.tokenizer_class)


def is_local(name_or_path: str) -> bool:
    return os.path.isdir(name_or_path)


def check_source(name_or_path: str, model_type: str, flag: str) -> None:
    """Refuse a path that does not exist or a name PaddleNLP does not know, naming the flag."""
    model_class, _ = _classes(model_kind(model_type))
    if is_local(name_or_path):
        if not any(os.path.isfile(os.path.join(name_or_path, f)) for f in CONFIG_FILES):
            raise UserError(
                f"{flag} {name_or_path}: no config.json in this directory; give a directory written by "
                f"save_pretrained (e.g. a best_model/ of this suite) or a PaddleNLP model name"
            )
        return
    known = getattr(model_class, "pretrained_init_configuration", {})
    if name_or_path not in known:
        raise UserError(
            f"{flag} {name_or_path}: no such directory and not a PaddleNLP {model_type} model name "
            f"(known: {', '.join(known)}); check the path"
        )


# ------------------------------------------------------------------ weights files
def read_state_dict(path: str) -> dict:
    """A ``.pdparams`` file (Paddle tensors by name); an unreadable file is a one-line error."""
    import paddle

    try:
        return paddle.load(path)
    except Exception as err:  # paddle raises many types for truncated or foreign files
        raise UserError(
            f"{path} is not a readable Paddle weights file ({type(err).__name__}); the checkpoint is "
            f"corrupt or incomplete: re-create it, or point to another checkpoint"
        ) from None


def read_safetensors(path: str) -> dict:
    """A ``.safetensors`` file as numpy arrays by name (no torch needed)."""
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise UserError(f"{path} is not a readable safetensors file ({str(err)[:160] or type(err).__name__}); "
                        f"re-create or fetch it again") from None


def weights_path(directory: str) -> Optional[str]:
    """The weights file of a checkpoint directory: ``model_state.pdparams``, else ``model.safetensors``."""
    for name in (WEIGHTS_FILE, SAFETENSORS_FILE):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def read_weights(path: str) -> dict:
    """Weights by name from a ``.pdparams`` or ``.safetensors`` file."""
    return read_safetensors(path) if path.endswith(".safetensors") else read_state_dict(path)


def encoder_weights(state: dict) -> Optional[Tuple[str, dict]]:
    """``(prefix, weights without it)`` of a BERT-family state dict, whatever class saved it
    (``bert.*``, ``tinybert.*`` or a bare encoder's names); None if it holds no BERT embeddings.
    Classifier and other head weights are left out."""
    for prefix in tuple(f"{p}." for p in BASE_PREFIXES) + ("",):
        if f"{prefix}embeddings.word_embeddings.weight" in state:
            return prefix, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return None


def with_model_names(state: dict, model) -> dict:
    """``state`` with a bare encoder's names (``embeddings.*``) given the model's prefix
    (``bert.embeddings.*``), as PaddleNLP's ``from_pretrained`` does for hub checkpoints."""
    own = model.state_dict()
    prefix = f"{model.base_model_prefix}."
    renamed = {}
    for name, value in state.items():
        if name not in own and prefix + name in own and prefix + name not in state:
            name = prefix + name
        renamed[name] = value
    return renamed


def load_matching(model, state: dict) -> List[str]:
    """Load the entries of ``state`` (bare encoder names mapped to the model's) whose names and
    shapes match; return the model's weights left out, sorted."""
    import warnings

    state = with_model_names(state, model)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and list(v.shape) == list(own[k].shape)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Paddle warns once per key; we report them in one line
        model.set_state_dict(usable)
    return sorted(set(own) - set(usable))


def _shown(names: List[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def refuse_incomplete(missing: List[str], may_be_missing: Tuple[str, ...], state: dict, model,
                      where: str) -> None:
    """A one-line error if more than the parts named by ``may_be_missing`` were left out."""
    lacking = [name for name in missing if not name.startswith(may_be_missing)]
    if not lacking:
        return
    own_prefix = model.base_model_prefix
    foreign = sorted({name.split(".", 1)[0] for name in state} & set(BASE_PREFIXES) - {own_prefix})
    hint = (f"its weights are named {foreign[0]}.*, so load it as a '{foreign[0]}' model (the model type flag)"
            if foreign else "re-create the checkpoint, or check that its config.json belongs to these weights")
    raise UserError(f"{where}: {len(lacking)} weight(s) the model needs are missing from the checkpoint or have "
                    f"another shape ({_shown(lacking)}); only the classifier head may be missing: {hint}")


def _note_fresh(missing: List[str], model) -> None:
    """Say which (allowed) parts start from random initialisation."""
    reported = missing
    if any(".fit_dense" in name for name in set(model.state_dict()) - set(missing)):
        # a student carries one kind of projection (docs/math.md#projections); the other is never used
        reported = [name for name in missing if ".fit_dense" not in name]
    if reported:
        print(f"note: {len(reported)} weight(s) not in the checkpoint (or of another shape) start from random "
              f"initialisation: {_shown(reported)}")


def check_unfused(model, where: str) -> None:
    """Refuse a BERT built with fused attention: its layers keep Q, K and V in one fused
    weight, so the pre-softmax scores distillation needs cannot be captured per layer."""
    encoder = getattr(base_model(model), "encoder", None)
    layers = getattr(encoder, "layers", None)
    if layers is None or not all(hasattr(layer, "self_attn") for layer in layers):
        raise UserError(f"{where}: the model is built with fused attention (fuse=True in its config), whose layers "
                        f"have no separate query/key projections; the suite needs them for the attention scores: "
                        f"use a checkpoint saved with fuse=False")


# ------------------------------------------------------------------ classifiers
def load_config(model_type: str, name_or_path: str, **overrides):
    model_class, _ = _classes(model_kind(model_type))
    return model_class.config_class.from_pretrained(name_or_path, **overrides)


def load_model(model_type: str, name_or_path: str, flag: str = "--model_name_or_path", **overrides):
    """A classifier from a directory or a PaddleNLP name; ``overrides`` update the config."""
    return load_model_and_keys(model_type, name_or_path, flag, **overrides)[0]


@dataclass
class CheckpointInfo:
    """What a local checkpoint held: every weight's shape (under the model's names), and
    which of the model's weights it provided."""

    shapes: Dict[str, tuple]
    loaded: set


def load_model_and_keys(model_type: str, name_or_path: str, flag: str, **overrides):
    """(model, CheckpointInfo) for a local directory; (model, None) for a hub name."""
    check_source(name_or_path, model_type, flag)
    kind = model_kind(model_type)
    model_class, _ = _classes(kind)
    where = f"{flag} {name_or_path}"
    weights = weights_path(name_or_path) if is_local(name_or_path) else None
    if weights is None:
        try:
            model = model_class.from_pretrained(name_or_path, **overrides)
        except UserError:
            raise
        except Exception as err:
            raise UserError(f"{where}: could not load the model ({str(err).splitlines()[0][:200]})") from None
        check_unfused(model, where)
        return model, None
    model = model_class(model_class.config_class.from_pretrained(name_or_path, **overrides))
    check_unfused(model, where)
    state = with_model_names(read_weights(weights), model)
    missing = load_matching(model, state)
    refuse_incomplete(missing, kind.may_be_missing, state, model, where)
    _note_fresh(missing, model)
    shapes = {name: tuple(value.shape) for name, value in state.items()}
    return model, CheckpointInfo(shapes, set(model.state_dict()) - set(missing))


def load_tokenizer(model_type: str, name_or_path: str, flag: str = "--model_name_or_path"):
    _, tokenizer_class = _classes(model_kind(model_type))
    try:
        return tokenizer_class.from_pretrained(name_or_path)
    except Exception as err:
        raise UserError(
            f"{flag} {name_or_path}: no usable tokenizer (vocab.txt) ({str(err).splitlines()[0][:160]})"
        ) from None


def base_model(model):
    """The encoder inside a ``*ForSequenceClassification`` (``model.bert``/``model.tinybert``),
    looking through a ``paddle.DataParallel`` wrapper (which keeps the model as ``_layers``)."""
    model = getattr(model, "_layers", model)
    return getattr(model, model.base_model_prefix)


# ------------------------------------------------------------------ masked LM
def load_masked_lm(name_or_path: str, flag: str = "--pretrained_bert_model"):
    """``(BertForMaskedLM in eval mode, tokenizer)`` from a PaddleNLP name or a directory.

    A checkpoint without the masked-LM head (a classifier, an encoder-only export) would
    predict with a random head, i.e. produce noise: it is refused.
    """
    check_source(name_or_path, "bert", flag)
    model = _local_masked_lm(name_or_path, flag) if is_local(name_or_path) else _named_masked_lm(name_or_path, flag)
    tokenizer = load_tokenizer("bert", name_or_path, flag)
    require(len(tokenizer.vocab) <= model.config.vocab_size,
            f"{flag} {name_or_path}: vocab.txt has {len(tokenizer.vocab)} tokens but the model only "
            f"{model.config.vocab_size}; the tokenizer files do not belong to this model")
    model.eval()
    return model, tokenizer


def _local_masked_lm(directory: str, flag: str):
    from paddlenlp.transformers import BertConfig, BertForMaskedLM

    path = weights_path(directory)
    if path is None:
        raise UserError(f"{flag} {directory}: no {WEIGHTS_FILE} or {SAFETENSORS_FILE} in this directory")
    model = BertForMaskedLM(BertConfig.from_pretrained(directory))
    state = with_model_names(read_weights(path), model)
    absent = [key for key in MASKED_LM_HEAD if key not in state]
    if absent:
        raise UserError(
            f"{flag} {directory}: this checkpoint has no masked-LM head (no {absent[0]} weights: a "
            f"classifier or an encoder-only export?); give a BERT pre-training checkpoint with its MLM "
            f"head, e.g. bert-base-uncased, or --pretrained_bert_model none to use GloVe for every word")
    missing = load_matching(model, state)
    refuse_incomplete(missing, MASKED_LM_TIED, state, model, f"{flag} {directory}")
    return model


def _named_masked_lm(name: str, flag: str):
    from paddlenlp.transformers import BertForMaskedLM

    try:
        return BertForMaskedLM.from_pretrained(name)
    except Exception as err:
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise UserError(f"{flag} {name}: could not load the model ({detail}); offline? give a local "
                        f"directory, or --pretrained_bert_model none for GloVe only") from None


def checkpoint_model_type(path: str, default: str = "bert") -> str:
    """``tinybert``, ``ernie`` or ``bert``, from ``architectures``/``model_type`` in the checkpoint's config."""
    for name in CONFIG_FILES:
        config_path = os.path.join(path, name)
        if os.path.isfile(config_path):
            try:
                with open(config_path, encoding="utf-8") as handle:
                    config = json.load(handle)
            except (OSError, ValueError):
                break
            text = " ".join(config.get("architectures") or []) + " " + str(config.get("model_type", ""))
            text = text.lower()
            return "tinybert" if "tinybert" in text else "ernie" if "ernie" in text else "bert"
    return default


def check_length(model, max_seq_length: int, source: str) -> None:
    """``--max_seq_length`` within the model's position table (else Paddle fails deep in a forward)."""
    positions = base_model(model).config.max_position_embeddings
    require(max_seq_length <= positions,
            f"--max_seq_length {max_seq_length} exceeds the {positions} positions of {source} "
            f"(max_position_embeddings); pass --max_seq_length {positions} or less")
