"""A task's training split and dev files, featurized: in memory, or through token stores.

Its own module so that imports run one way: ``features`` (tokenized examples) is below
``store`` (which writes and maps them), and this module, which chooses between the two, is
above both.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import List, Optional

from .features import Features, featurize
from .glue import load_split, locate_split
from .store import open_store


@dataclass
class TaskData:
    train_path: str
    train: object  # Features, or a memory-mapped store.TokenStore
    devs: List[Features]  # one per dev file (MNLI: matched, mismatched)


def load_task_data(spec, tokenizer, glue_dir, max_seq_length: int, skip_bad_rows: bool = False,
                   train_split: str = "train", cache_dir: Optional[str] = None, may_build: bool = True) -> TaskData:
    """The training split (``train`` or ``aug``) and every dev file, featurized.

    With ``cache_dir`` each file goes through its token store (``tinybert.data.store``): built
    once, then memory-mapped by every stage and process; without it, featurized in memory.
    """
    if cache_dir is None:
        train_set, = load_split(glue_dir, spec, train_split, skip_bad_rows)
        dev_sets = load_split(glue_dir, spec, "dev", skip_bad_rows)
        encode = lambda examples: featurize(examples, tokenizer, max_seq_length, spec.is_regression)  # noqa: E731
        return TaskData(train_set.path, encode(train_set.examples), [encode(d.examples) for d in dev_sets])
    train_path = locate_split(glue_dir, spec, train_split)[0]
    dev_paths = locate_split(glue_dir, spec, "dev")  # every file found before anything is written
    made = _missing_directories(cache_dir)
    built = []
    try:
        stores = []
        for path, split in [(train_path, train_split)] + [(p, "dev") for p in dev_paths]:
            stores.append(open_store(cache_dir, path, spec, split, tokenizer, max_seq_length, skip_bad_rows, may_build))
            if stores[-1].built_now:
                built.append(stores[-1].directory)
    except BaseException:  # a refused run leaves the disk as it found it
        for directory in built:
            shutil.rmtree(directory, ignore_errors=True)
        for directory in made:
            if os.path.isdir(directory) and not os.listdir(directory):
                os.rmdir(directory)
        raise
    train, devs = stores[0], [store.to_features() for store in stores[1:]]
    if train.meta["skipped_rows"] and may_build:
        print(f"{train_path}: skipped {train.meta['skipped_rows']} malformed row(s) (--skip_bad_rows)")
    return TaskData(train_path, train, devs)


def _missing_directories(path: str) -> List[str]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing
