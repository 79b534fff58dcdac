"""Stage 2's soft targets: the teacher's logits of every training example, computed once and cached.

The teacher is frozen, so its logits of a training example never change: stage 2 computes them
once (each process a share, gathered) instead of once per epoch. On MNLI's augmented set that
one pass is itself hours of teacher forwards, so the result is also kept on disk, keyed by the
teacher's weights and the token store's fingerprint: a resumed stage 2, or a second run with
other student settings, maps the file instead of recomputing it. It is written under a
temporary name and renamed, with a CRC-32 beside it, so a damaged file is recomputed, never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Optional

import numpy as np

from ..errors import UserError
from ..models.loading import weights_path
from ..paths import file_crc32, file_sha256
from ..training.evaluate import predict_logits


def gathered(teacher, features, batch_size: int, pad_token_id: int, dist) -> np.ndarray:
    """Teacher logits of every training example, computed once in total across the processes.

    Each rank predicts its share of the batches (``training.evaluate.predict_logits``); the
    shares are gathered on every rank, equal to what one process computes.
    """
    return np.asarray(predict_logits(teacher, features, batch_size, pad_token_id, dist=dist), dtype=np.float32)


def teacher_digest(teacher_path: str) -> str:
    """The teacher's identity: its weights file's bytes (a local checkpoint) or its name."""
    weights = weights_path(teacher_path) if os.path.isdir(teacher_path) else None
    if weights is None:
        return f"name:{teacher_path}"
    return file_sha256(weights)


def cache_path(cache_dir: str, teacher_path: str, features, batch_size: int) -> str:
    key = json.dumps({"teacher": teacher_digest(teacher_path), "data": features.fingerprint(),
                      "examples": len(features), "batch_size": batch_size}, sort_keys=True)
    return os.path.join(cache_dir, f"teacher-logits-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy")


def _read(path: str, count: int) -> Optional[np.ndarray]:
    """The cached logits if the file and its checksum are intact and they have ``count`` rows."""
    try:
        with open(path + ".json", encoding="utf-8") as handle:
            expected = json.load(handle)["crc32"]
        actual = file_crc32(path)
        logits = np.load(path, mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    if actual != expected or logits.ndim != 2 or logits.shape[0] != count:
        return None
    return logits


def _write(path: str, logits: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as handle:
        np.save(handle, np.ascontiguousarray(logits, dtype=np.float32))
    crc = file_crc32(temporary)
    with open(temporary + ".json", "w", encoding="utf-8") as handle:
        json.dump({"crc32": crc, "shape": list(logits.shape)}, handle)
    os.replace(temporary + ".json", path + ".json")
    os.replace(temporary, path)


def cached(teacher, teacher_path: str, features, batch_size: int, pad_token_id: int, dist, cache_dir: str):
    """The teacher logits of ``features``, from ``cache_dir`` when there, else computed and saved.

    Rank 0 decides (the file is read where rank 0 wrote it), so all ranks agree; the logits are
    memory-mapped, so a process holds only the pages of the batches it trains on.
    """
    path = cache_path(cache_dir, teacher_path, features, batch_size)
    logits = _read(path, len(features)) if dist.is_main else None
    if dist.broadcast(logits is not None if dist.is_main else None, "process 0 to look for cached teacher logits"):
        if not dist.is_main:
            logits = _read(path, len(features))
            if logits is None:  # rank 0 found it: every rank must take the same road
                raise UserError(f"cached teacher logits {path} are unreadable on rank {dist.rank}; check that "
                                f"--cache_dir is shared by all processes")
        if dist.is_main:
            print(f"teacher logits of {len(features)} examples reused from {path}", flush=True)
        return logits
    if dist.is_main:
        print("computing teacher logits once for every training example ...", flush=True)
    logits = gathered(teacher, features, batch_size, pad_token_id, dist)
    if dist.is_main:
        try:
            _write(path, logits)
        except OSError as err:
            print(f"warning: could not cache the teacher logits in {cache_dir} ({err.strerror}); "
                  f"a resumed stage 2 will compute them again", file=sys.stderr)
    dist.barrier("process 0 to cache the teacher logits")
    return logits
