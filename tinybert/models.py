"""Loading BERT / TinyBERT classifiers and their tokenizers, by PaddleNLP name or directory.

A local directory is what ``save_pretrained`` wrote (``config.json`` or the older
``model_config.json``, ``model_state.pdparams``, tokenizer files). Local checkpoints are
loaded by hand (config -> model -> state dict) so that a corrupt weights file or a
classifier of the wrong size becomes a one-line error instead of a traceback.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict

from .errors import UserError

WEIGHTS_FILE = "model_state.pdparams"
CONFIG_FILES = ("config.json", "model_config.json")


@dataclass(frozen=True)
class ModelKind:
    model_class: str
    tokenizer_class: str
    base_prefix: str


MODEL_KINDS: Dict[str, ModelKind] = {
    "bert": ModelKind("BertForSequenceClassification", "BertTokenizer", "bert"),
    "tinybert": ModelKind("TinyBertForSequenceClassification", "TinyBertTokenizer", "tinybert"),
}


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


def read_state_dict(path: str) -> dict:
    import paddle

    try:
        return paddle.load(path)
    except Exception as err:  # paddle raises many types for truncated or foreign files
        raise UserError(
            f"{path} is not a readable Paddle weights file ({type(err).__name__}); the checkpoint is "
            f"corrupt or incomplete: re-create it, or point to another checkpoint"
        ) from None


def load_config(model_type: str, name_or_path: str, **overrides):
    model_class, _ = _classes(model_kind(model_type))
    return model_class.config_class.from_pretrained(name_or_path, **overrides)


def load_model(model_type: str, name_or_path: str, flag: str = "--model_name_or_path", **overrides):
    """A classifier from a directory or a PaddleNLP name; ``overrides`` update the config."""
    return load_model_and_keys(model_type, name_or_path, flag, **overrides)[0]


@dataclass
class CheckpointInfo:
    """What a local checkpoint held: every weight's shape, and which ones the model took."""

    shapes: Dict[str, tuple]
    loaded: set


def load_model_and_keys(model_type: str, name_or_path: str, flag: str, **overrides):
    """(model, CheckpointInfo) for a local directory; (model, None) for a hub name."""
    check_source(name_or_path, model_type, flag)
    model_class, _ = _classes(model_kind(model_type))
    weights = os.path.join(name_or_path, WEIGHTS_FILE)
    if is_local(name_or_path) and os.path.isfile(weights):
        config = model_class.config_class.from_pretrained(name_or_path, **overrides)
        model = model_class(config)
        state = read_state_dict(weights)
        missing = load_matching(model, state)
        shapes = {name: tuple(value.shape) for name, value in state.items()}
        return model, CheckpointInfo(shapes, set(model.state_dict()) - set(missing))
    try:
        return model_class.from_pretrained(name_or_path, **overrides), None
    except UserError:
        raise
    except Exception as err:
        raise UserError(f"{flag} {name_or_path}: could not load the model ({str(err).splitlines()[0][:200]})") from None


def load_matching(model, state: dict) -> list:
    """Load the entries of ``state`` whose names and shapes match; return the names left out."""
    import warnings

    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and list(v.shape) == list(own[k].shape)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Paddle warns once per key; we report them in one line
        model.set_state_dict(usable)
    missing = sorted(set(own) - set(usable))
    reported = missing
    if any(".fit_dense" in k for k in usable):
        # a student carries one kind of projection (SPEC.md §5); the other kind is never used
        reported = [k for k in missing if ".fit_dense" not in k]
    if reported:
        shown = ", ".join(reported[:4]) + (f" and {len(reported) - 4} more" if len(reported) > 4 else "")
        print(f"note: {len(reported)} weight(s) not in the checkpoint (or of another shape) start from random "
              f"initialisation: {shown}")
    return missing


def load_tokenizer(model_type: str, name_or_path: str, flag: str = "--model_name_or_path"):
    _, tokenizer_class = _classes(model_kind(model_type))
    try:
        return tokenizer_class.from_pretrained(name_or_path)
    except Exception as err:
        raise UserError(
            f"{flag} {name_or_path}: no usable tokenizer (vocab.txt) ({str(err).splitlines()[0][:160]})"
        ) from None


def base_model(model):
    """The encoder inside a ``*ForSequenceClassification`` (``model.bert``/``model.tinybert``)."""
    return getattr(model, model.base_model_prefix)
