"""Serving an exported classifier: :class:`Predictor` over Paddle Inference or ONNX Runtime.

An export directory (written by ``export_model.py``) holds the model file(s), the tokenizer
files and ``manifest.json``; the runtimes themselves are :mod:`tinybert.serving.engines`. At serving time only the tokenizer and the runtime are needed:
no PaddleNLP model class is built, so what answers is exactly the graph that was checked
against the dygraph model when it was exported.

Inputs are classified in batches sorted by length (each padded to its own longest input, so
a short sentence never pays for a long one) and the results come back in input order.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..data.features import Features, collate, eval_batches
from ..errors import UserError
from ..paths import check_readable_file
from .engines import BACKENDS  # noqa: F401  (scripts/benchmark.py builds its runners from it)
from .latency import INPUT_NAMES

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("paddle", "onnx")
PRECISIONS = ("float32", "int8")

Text = Union[str, Sequence[str]]


# ------------------------------------------------------------------ manifest
def write_manifest(directory: str, manifest: dict) -> str:
    path = os.path.join(directory, MANIFEST)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.write("\n")
    return path


def read_manifest(directory: str) -> dict:
    """The manifest of an export directory; a one-line error for anything else."""
    if not os.path.isdir(directory):
        raise UserError(f"--model_dir {directory}: no such directory; give a directory written by export_model.py")
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        hint = (" (it looks like a training checkpoint: export it first with export_model.py --model_dir "
                f"{directory} --output_dir EXPORT_DIR --task_name TASK)"
                if os.path.isfile(os.path.join(directory, "model_state.pdparams")) else "")
        raise UserError(f"--model_dir {directory} has no {MANIFEST}, so it is not an export of export_model.py{hint}")
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not readable JSON ({type(err).__name__}); re-run export_model.py") from None
    missing = [k for k in ("format", "precision", "task", "labels", "max_seq_length", "model_files") if k not in manifest]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; it was not written by this export_model.py, re-run it")
    if manifest["format"] not in FORMATS:
        raise UserError(f"{path}: unknown format '{manifest['format']}' (known: {', '.join(FORMATS)})")
    for name in manifest["model_files"]:
        if not os.path.isfile(os.path.join(directory, name)):
            raise UserError(f"{directory}/{name} is missing; the export is incomplete, re-run export_model.py")
    return manifest


# ------------------------------------------------------------------ predictor
class Predictor:
    """Classify sentences or sentence pairs with an exported model.

    ``predict(["a fine film", ...])`` (pairs as 2-tuples) returns one dict per input, in
    input order: ``{"label", "probabilities"}`` for classification, ``{"score"}`` for STS-B.
    Inputs longer than the export's ``max_seq_length`` WordPieces are refused unless
    ``truncate`` (then they are cut as at training time). ``device="gpu"`` without a usable GPU
    runs on the CPU after one ``warning:`` line; :meth:`describe` says what runs the model.
    """

    def __init__(self, model_dir: str, device: str = "cpu", threads: Optional[int] = None, batch_size: int = 32,
                 truncate: bool = False, cpu_kernels: Optional[str] = None, tensorrt: bool = False):
        from paddlenlp.transformers import BertTokenizer

        self.model_dir = model_dir
        self.manifest = read_manifest(model_dir)
        self.labels = self.manifest["labels"]
        self.max_seq_length = int(self.manifest["max_seq_length"])
        self.pair = bool(self.manifest.get("pair", False))
        self.batch_size = max(1, int(batch_size))
        self.truncate = truncate
        try:
            self.tokenizer = BertTokenizer.from_pretrained(model_dir)
        except Exception as err:
            raise UserError(f"{model_dir}: the tokenizer files (vocab.txt) are unusable "
                            f"({str(err).splitlines()[0][:160]}); re-run export_model.py") from None
        self.backend = BACKENDS[self.manifest["format"]](model_dir, self.manifest, device=device, threads=threads,
                                                         max_batch=self.batch_size, cpu_kernels=cpu_kernels,
                                                         tensorrt=tensorrt)

    @property
    def engine(self) -> dict:
        """What runs the model: runtime and version, device or ONNX Runtime providers, TensorRT."""
        return self.backend.engine

    def describe(self) -> str:
        return self.backend.describe()

    # -- encoding
    def _texts(self, item: Text, position: int) -> tuple:
        texts = (item,) if isinstance(item, str) else tuple(item)
        wanted = 2 if self.pair else 1
        if len(texts) != wanted:
            kind = "sentence pairs (two columns)" if self.pair else "single sentences (one column)"
            raise UserError(f"input {position}: {len(texts)} text(s), but {self.manifest['task']} takes {kind}")
        if any(not str(t).strip() for t in texts):
            raise UserError(f"input {position}: empty text")
        return texts

    def encode(self, inputs: Sequence[Text], first_position: int = 1) -> Features:
        """Token ids of every input; over-long inputs are an error unless ``truncate``."""
        from ..data.features import featurize
        from ..data.glue import Example

        examples = [Example(self._texts(item, first_position + i), 0, first_position + i)
                    for i, item in enumerate(inputs)]
        if not self.truncate:
            full = featurize(examples, self.tokenizer, 10**9, False)
            for example, ids in zip(examples, full.input_ids):
                if len(ids) > self.max_seq_length:
                    raise UserError(
                        f"input {example.line} has {len(ids)} WordPieces with [CLS]/[SEP], more than the model's "
                        f"max_seq_length {self.max_seq_length}; shorten it, or pass --truncate to cut it as at training")
        return featurize(examples, self.tokenizer, self.max_seq_length, False)

    # -- running
    def run(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one collated batch (the runner :mod:`tinybert.serving.latency` times)."""
        return self.backend.run(batch)

    def logits(self, features: Features) -> np.ndarray:
        """Logits of every example in input order, computed in length-sorted batches."""
        out: List[Optional[np.ndarray]] = [None] * len(features)
        for indices in eval_batches(features.lengths, self.batch_size):
            batch = collate(features, indices, self.tokenizer.pad_token_id)
            logits = self.run({name: batch[name] for name in INPUT_NAMES})
            for row, index in enumerate(indices):
                out[index] = logits[row]
        return np.stack(out) if out else np.zeros((0, max(1, len(self.labels or [0]))), dtype=np.float32)

    def predict(self, inputs: Sequence[Text], first_position: int = 1) -> List[dict]:
        return self.results(self.logits(self.encode(inputs, first_position)))

    def results(self, logits: np.ndarray) -> List[dict]:
        if self.labels is None:  # regression (STS-B): one output, the score
            return [{"score": float(row[0])} for row in logits]
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        return [{"label": self.labels[int(np.argmax(p))],
                 "probabilities": {label: round(float(v), 6) for label, v in zip(self.labels, p)}}
                for p in probabilities]


# ------------------------------------------------------------------ predict.py
CHUNK = 1024  # lines read, classified and printed at a time: bounded memory on long streams
INPUT_FIX = "give a text/TSV file, or - for standard input"


def read_lines(path: str):
    """(line number, text) of every non-blank line of a file or of stdin (``-``).

    The file is checked here, at the call, not at the first line read: predict.py calls this
    before the model loads, so a wrong ``--input`` costs nothing.
    """
    if path != "-":
        check_readable_file(path, "--input", INPUT_FIX)
    return _numbered_lines(path)


def _numbered_lines(path: str):
    if path == "-":
        handle = sys.stdin
    else:
        handle = open(path, encoding="utf-8", errors="strict")
    try:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line
    except UnicodeDecodeError:
        raise UserError(f"--input {path}: bytes that are not UTF-8 near line {number + 1}; re-encode it as UTF-8")
    finally:
        if handle is not sys.stdin:
            handle.close()


def split_columns(number: int, line: str, predictor: "Predictor", source: str) -> tuple:
    columns = line.split("\t")
    wanted = 2 if predictor.pair else 1
    if len(columns) != wanted:
        kind = ("two tab-separated columns (sentence1, sentence2)" if predictor.pair
                else "one column (a sentence; no tabs, no label column)")
        raise UserError(f"{source}:{number}: {len(columns)} tab-separated column(s), but this "
                        f"{predictor.manifest['task']} model takes {kind}")
    return tuple(columns)


def run_cli_predict(settings) -> int:
    """predict.py: one JSON line per input line, in input order, streamed in chunks; at the end,
    one line on standard error says how many and what ran the model (runtime, device or ONNX
    Runtime providers), so an error stays the only line on a failed run. Returns the count."""
    lines = read_lines(settings.input)  # checks --input before the model loads
    predictor = Predictor(settings.model_dir, device=settings.device, threads=settings.threads,
                          batch_size=settings.batch_size, truncate=settings.truncate, tensorrt=settings.tensorrt)
    source = "<stdin>" if settings.input == "-" else settings.input
    chunk: List[tuple] = []
    done = [0]

    def flush():
        numbers = [n for n, _ in chunk]
        texts = [t for _, t in chunk]
        features = predictor.encode(texts, first_position=1)
        for number, result in zip(numbers, predictor.results(predictor.logits(features))):
            print(json.dumps({"line": number, **result}), flush=False)
        done[0] += len(chunk)
        chunk.clear()

    for number, line in lines:
        chunk.append((number, split_columns(number, line, predictor, source)))
        if len(chunk) >= CHUNK:
            _encode_checked(flush, chunk, source)
    if chunk:
        _encode_checked(flush, chunk, source)
    sys.stdout.flush()
    print(f"predict: {done[0]} input(s) classified by {predictor.describe()}", file=sys.stderr, flush=True)
    return done[0]


def _encode_checked(flush, chunk, source):
    """Run ``flush``; an over-long input's error names the file line, not the chunk position."""
    numbers = [n for n, _ in chunk]
    try:
        flush()
    except UserError as err:
        text = str(err)
        if text.startswith("input "):
            position = int(text.split()[1])
            raise UserError(f"{source}:{numbers[position - 1]}: " + text.split(" ", 2)[2]) from None
        raise
