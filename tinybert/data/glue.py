"""GLUE TSV files: locating them and reading them into examples (docs/formats.md#glue-files).

One reader serves ``train.tsv``, the dev files and ``train_aug.tsv`` (which has exactly the
format of ``train.tsv``). GLUE text may contain quote characters, so rows are split on tabs
only, never with csv quoting. Every problem names the file and the 1-based line number.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

from ..errors import UserError
from .tasks import TaskSpec

AUG_FILE = "train_aug.tsv"


@dataclass(frozen=True)
class Example:
    texts: Tuple[str, ...]  # one text (single-sentence tasks) or two (pair tasks)
    label: Union[int, float]  # label index, or the score for regression
    line: int  # 1-based line number in the source file


@dataclass
class ExampleSet:
    path: str
    examples: List[Example]
    skipped: int = 0  # malformed rows dropped because the user asked to skip them

    def __len__(self) -> int:
        return len(self.examples)


def default_glue_dir() -> str:
    """PaddleNLP's dataset home, where ``load_dataset("glue", ...)`` stores downloads."""
    try:
        from paddlenlp.utils.env import DATA_HOME
    except Exception:  # pragma: no cover - paddlenlp missing or broken
        DATA_HOME = os.path.join(os.path.expanduser("~"), ".paddlenlp", "datasets")
    return os.path.join(DATA_HOME, "Glue")


def task_dir(glue_dir: Optional[str], spec: TaskSpec) -> str:
    return os.path.join(glue_dir or default_glue_dir(), spec.name)


def parse_label(raw: str, spec: TaskSpec) -> Union[int, float]:
    """Label text -> index (classification) or float score (regression); ValueError if bad."""
    raw = raw.strip()
    if spec.is_regression:
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"score '{raw}' is not a finite number")
        return value
    if raw not in spec.labels:
        raise ValueError(f"label '{raw}' is not one of {', '.join(spec.labels)}")
    return spec.labels.index(raw)


def parse_row(line: str, spec: TaskSpec) -> Tuple[Tuple[str, ...], Union[int, float]]:
    """Split one data line into (texts, label). ValueError says what is wrong with it."""
    columns = line.split("\t")
    if len(columns) < spec.min_columns:
        raise ValueError(
            f"has {len(columns)} tab-separated column(s), {spec.name} needs at least {spec.min_columns}"
        )
    texts = tuple(columns[i].strip() for i in spec.text_columns)
    for column, text in zip(spec.text_columns, texts):
        if not text:
            raise ValueError(f"text column {column} is empty")
    return texts, parse_label(columns[spec.label_column], spec)


def decoded_lines(path: str):
    """Yield (1-based line number, text) with the line ending removed; errors name the line.

    The file is read a line at a time, so a file of millions of rows (an augmented MNLI) is
    never held in memory whole.
    """
    try:
        handle = open(path, "rb")
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a GLUE .tsv file")
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}; check the path and its permissions")
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.rstrip(b"\n").decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                raise UserError(
                    f"{path}:{number}: bytes that are not UTF-8; re-encode the file as UTF-8 "
                    f"(e.g. iconv -f latin1 -t utf-8)"
                )


def read_examples(path: str, spec: TaskSpec, skip_bad_rows: bool = False) -> ExampleSet:
    """Read a GLUE-format TSV file of ``spec``'s task.

    A malformed row is an error naming file and line unless ``skip_bad_rows`` is set; then
    it is counted in ``ExampleSet.skipped`` (real QQP train has rows with missing fields).
    """
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    examples: List[Example] = []
    skipped = 0
    header_pending = spec.has_header
    for number, line in decoded_lines(path):
        if not line.strip():
            continue  # blank lines, and the empty piece after a final newline
        if header_pending:
            header_pending = False
            continue
        try:
            texts, label = parse_row(line, spec)
        except ValueError as err:
            if skip_bad_rows:
                skipped += 1
                continue
            raise UserError(
                f"{path}:{number}: row {err}; fix the row or pass --skip_bad_rows to drop such rows"
            )
        examples.append(Example(texts, label, number))
    if not examples:
        raise UserError(f"{path} holds no {spec.name} examples; it is empty or has only a header")
    return ExampleSet(path, examples, skipped)


def _download_with_paddlenlp(spec: TaskSpec, split: str) -> Optional[str]:
    """Ask PaddleNLP to download the task (works online only); return its data dir or None."""
    import logging

    download_log = logging.getLogger("paddle.utils.download")  # logs every retry at INFO on stderr
    level = download_log.level
    download_log.setLevel(logging.ERROR)
    try:
        from paddlenlp.datasets import load_dataset

        load_dataset("glue", spec.name.lower(), splits=(split,))
    except Exception:
        return None
    finally:
        download_log.setLevel(level)
    directory = task_dir(default_glue_dir(), spec)
    return directory if os.path.isdir(directory) else None


def locate(glue_dir: Optional[str], spec: TaskSpec, filename: str, allow_download: bool = True) -> str:
    """Path of ``filename`` for the task.

    Under the default glue_dir (PaddleNLP's ``DATA_HOME/Glue``) a missing file is downloaded
    with ``paddlenlp.datasets.load_dataset`` when online, which stores it exactly there. A
    directory the user gave with ``--glue_dir`` is never filled behind their back.
    """
    path = os.path.join(task_dir(glue_dir, spec), filename)
    if os.path.exists(path):  # a directory or unreadable file is reported by the reader
        return path
    if filename == AUG_FILE:
        raise UserError(
            f"{path} does not exist; run data_augmentation.py --task_name {spec.name} "
            f"--glue_dir {glue_dir or default_glue_dir()} first, or drop --use_aug"
        )
    is_default = glue_dir is None or os.path.abspath(glue_dir) == os.path.abspath(default_glue_dir())
    if allow_download and is_default:
        split = "train" if filename == spec.train_file else os.path.splitext(filename)[0]
        print(f"{path} not found: trying paddlenlp.datasets.load_dataset('glue', '{spec.name.lower()}') ...")
        if _download_with_paddlenlp(spec, split) and os.path.isfile(path):
            print(f"downloaded {spec.name} to {task_dir(glue_dir, spec)}")
            return path
        raise UserError(
            f"{path} does not exist and GLUE could not be downloaded (offline?); put the {spec.name} files "
            f"({spec.train_file}, {', '.join(spec.dev_files)}) in {task_dir(glue_dir, spec)} or pass --glue_dir"
        )
    raise UserError(
        f"{path} does not exist; put the {spec.name} files ({spec.train_file}, {', '.join(spec.dev_files)}) "
        f"in {task_dir(glue_dir, spec)}, or pass another --glue_dir (without it PaddleNLP downloads GLUE when online)"
    )


def load_split(
    glue_dir: Optional[str],
    spec: TaskSpec,
    split: str,
    skip_bad_rows: bool = False,
    allow_download: bool = True,
) -> List[ExampleSet]:
    """Read ``train``, ``aug`` (train_aug.tsv) or ``dev`` (every dev file of the task)."""
    names: Sequence[str] = {
        "train": (spec.train_file,),
        "aug": (AUG_FILE,),
        "dev": spec.dev_files,
    }[split]
    sets = []
    for name in names:
        path = locate(glue_dir, spec, name, allow_download)
        found = read_examples(path, spec, skip_bad_rows)
        if found.skipped:
            print(f"{path}: skipped {found.skipped} malformed row(s) (--skip_bad_rows)")
        sets.append(found)
    return sets
