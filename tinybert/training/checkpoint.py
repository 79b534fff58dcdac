"""Checkpoint directories written atomically (docs/formats.md#checkpoint-layout: temporary name, then rename).

A directory under its final name is always complete: it is written as ``<name>.tmp-<pid>``
and renamed into place. A crash or a full disk leaves at most a ``.tmp-*`` directory, which
the next save removes.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import pickle
import shutil
from typing import Callable, Iterator

from ..errors import UserError


def _remove_stale_temporaries(final_path: str) -> None:
    for stale in glob.glob(f"{final_path}.tmp-*") + glob.glob(f"{final_path}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final_path: str) -> Iterator[str]:
    """Yield a temporary directory; on success it replaces ``final_path`` in one rename.

    On any failure the temporary directory is removed and ``final_path`` is untouched.
    """
    final_path = os.path.abspath(final_path)
    os.makedirs(os.path.dirname(final_path), exist_ok=True)
    _remove_stale_temporaries(final_path)
    temporary = f"{final_path}.tmp-{os.getpid()}"
    os.makedirs(temporary)
    try:
        yield temporary
        _fsync_tree(temporary)
    except BaseException as err:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise UserError(
                f"no space left on device while saving {final_path}; the previous copy is intact. "
                f"Free disk space or choose another --output_dir"
            ) from None
        raise
    old = None
    if os.path.exists(final_path):
        old = f"{final_path}.old-{os.getpid()}"
        os.rename(final_path, old)
    os.rename(temporary, final_path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(directory: str) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())


def save_pretrained_atomically(final_path: str, model, tokenizer, extra: Callable[[str], None] = None) -> None:
    """Save a model + tokenizer in the layout PaddleNLP's ``from_pretrained`` loads."""
    with atomic_directory(final_path) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        if extra is not None:
            extra(temporary)


# ------------------------------------------------------------ resumable state
STATE_FILE = "trainer_state.pkl"

# What a resumed run must share with the run that saved: the position in the data is only
# meaningful for the same batches in the same order (docs/formats.md#checkpoint-layout).
RESUME_SETTINGS = {
    "world_size": "number of processes",
    "batch_size": "--batch_size",
    "seed": "--seed",
    "max_seq_length": "--max_seq_length",
    "num_train_epochs": "--num_train_epochs",
    "max_steps": "--max_steps",
    "bucket_by_length": "--no_length_buckets",
    "train_file": "training data file (--glue_dir/--use_aug)",
    "train_fingerprint": "training data contents",
}


def save_training_state(directory: str, modules: dict, optimizer, state: dict) -> None:
    """Weights of ``modules``, the optimizer and ``state`` (plain data), as one atomic directory."""
    import paddle

    with atomic_directory(directory) as temporary:
        for name, module in modules.items():
            paddle.save(module.state_dict(), os.path.join(temporary, f"{name}.pdparams"))
        portable = renamed(optimizer.state_dict(), {p.name: path for path, p in parameter_paths(modules).items()})
        paddle.save(portable, os.path.join(temporary, "optimizer.pdopt"))
        with open(os.path.join(temporary, STATE_FILE), "wb") as handle:
            pickle.dump(state, handle)


def read_training_state(directory: str, settings: dict) -> dict:
    """The plain-data state of a checkpoint, refused (one line) if saved under other ``settings``.

    Resuming under other settings would silently reinterpret the saved position.
    """
    if not os.path.isdir(directory):
        raise UserError(f"--resume: no {directory}; this run has not saved a checkpoint yet (drop --resume)")
    try:
        with open(os.path.join(directory, STATE_FILE), "rb") as handle:
            state = pickle.load(handle)
    except Exception:
        raise UserError(f"{directory}/{STATE_FILE} is missing or corrupt; resume is impossible, "
                        f"start again with --overwrite_output_dir") from None
    changed = changed_settings(state.get("settings", {}), settings)
    if changed:
        raise UserError(f"--resume: {directory} was saved with other settings ({'; '.join(changed)}); "
                        f"resume with the saved settings, or start over with --overwrite_output_dir")
    return state


def load_training_state(directory: str, modules: dict, optimizer, settings: dict) -> dict:
    """Restore weights and optimizer from ``directory`` and return its plain-data state."""
    from ..models.loading import read_state_dict

    state = read_training_state(directory, settings)
    for name, module in modules.items():
        module.set_state_dict(read_state_dict(os.path.join(directory, f"{name}.pdparams")))
    saved = read_state_dict(os.path.join(directory, "optimizer.pdopt"))
    optimizer.set_state_dict(renamed(saved, {path: p.name for path, p in parameter_paths(modules).items()}))
    return state


# Paddle keys an optimizer's state by each parameter's generated name (``linear_12.w_0_moment1_0``),
# which counts the layers built so far in the process: a process that built other models first (a
# notebook, the Python API) numbers the same parameters differently and could not load the state.
# Checkpoints key it by where each parameter sits instead (``@student/tinybert.encoder...weight``).
def parameter_paths(modules: dict) -> dict:
    """``@<module>/<structured name>`` -> parameter, for every parameter of ``modules``."""
    return {f"@{name}/{path}": parameter for name, module in modules.items()
            for path, parameter in module.named_parameters()}


def renamed(state: dict, names: dict) -> dict:
    """``state`` with every key that starts with a name in ``names`` (``<name>_moment1_0``, ...) renamed;
    other keys (the LR scheduler's, or those of a checkpoint written before this) are kept as they are."""
    ordered = sorted(names, key=len, reverse=True)
    result = {}
    for key, value in state.items():
        if isinstance(value, dict):
            value = renamed(value, names)
        for old in ordered:
            if key == old or key.startswith(old + "_"):
                key = names[old] + key[len(old):]
                break
        result[key] = value
    return result


def changed_settings(saved: dict, current: dict) -> list:
    """``"--flag: saved -> now"`` for every resume setting that differs.

    A training file edited in place keeps its name and changes its fingerprint: that change is
    named by the file (two digests would not tell the user which file to restore).
    """
    changed = []
    for key in RESUME_SETTINGS:
        if key not in current or saved.get(key) == current.get(key):
            continue
        if key == "train_fingerprint" and saved.get("train_file") == current.get("train_file"):
            changed.append(f"{current.get('train_file')} changed since the checkpoint was saved")
        else:
            changed.append(f"{RESUME_SETTINGS.get(key, key)}: {saved.get(key)} -> {current.get(key)}")
    return changed
