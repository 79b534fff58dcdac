"""Serving an exported classifier: :class:`Predictor` over Paddle Inference or ONNX Runtime.

An export directory (written by ``export_model.py``) holds the model file(s), the tokenizer
files and ``manifest.json``. At serving time only the tokenizer and the runtime are needed:
no PaddleNLP model class is built, so what answers is exactly the graph that was checked
against the dygraph model when it was exported.

Inputs are classified in batches sorted by length (each padded to its own longest input, so
a short sentence never pays for a long one) and the results come back in input order.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..data.features import Features, collate, eval_batches
from ..errors import UserError
from ..paths import check_readable_file
from .latency import INPUT_NAMES, default_threads

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
PADDLE_MODEL, PADDLE_PARAMS = "model.json", "model.pdiparams"
ONNX_MODEL = "model.onnx"
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


# ------------------------------------------------------------------ runtimes
class PaddleInferenceBackend:
    """``paddle.inference`` predictor: oneDNN or Paddle's MKL kernels on CPU; GPU, and
    TensorRT when the Paddle build has it, on ``device='gpu'``.

    Which CPU kernels is recorded in the manifest (``cpu_kernels``) by the export check.
    The default is Paddle's own kernels (MKL for matmuls): they reproduce dygraph exactly and
    cost nothing per new input shape. oneDNN (``export_model.py --cpu_kernels onednn``) was
    about 2x faster at batch 32 on MiniLM here, but it builds kernels for every new input shape
    (batch 1 with dynamic padding sees a new length almost every call: slower than dygraph
    here), and on a tiny random TinyBERT it differed from dygraph by 1.1e-4 on logits of 0.008
    (a 1.4% relative error, not rounding); when the check fails that way the export falls back
    to the MKL kernels.

    Batch and sequence length are dynamic in the saved graph (``InputSpec([None, None])``),
    so one predictor serves any batch. On CPU the oneDNN kernel cache is bounded because it
    keeps one entry per input shape. On TensorRT the engine needs the shape range up front:
    batch 1..``max_batch``, length 1..``max_seq_length``.
    """

    name = "Paddle Inference"

    def __init__(self, directory: str, manifest: dict, device: str = "cpu", threads: Optional[int] = None,
                 max_batch: int = 64, tensorrt: bool = True, cpu_kernels: Optional[str] = None):
        from paddle import inference

        kernels = cpu_kernels or manifest.get("cpu_kernels", "mkl")
        self.config = paddle_config(directory, manifest, device, threads or default_threads(), max_batch, tensorrt,
                                    onednn=kernels == "onednn")
        self.predictor = inference.create_predictor(self.config)
        self.input_names = list(self.predictor.get_input_names())
        self.output_name = self.predictor.get_output_names()[0]

    def run(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        for name in self.input_names:
            handle = self.predictor.get_input_handle(name)
            value = np.ascontiguousarray(batch[name])
            handle.reshape(list(value.shape))
            handle.copy_from_cpu(value)
        self.predictor.run()
        return self.predictor.get_output_handle(self.output_name).copy_to_cpu()


def paddle_config(directory: str, manifest: dict, device: str, threads: int, max_batch: int = 64,
                  tensorrt: bool = True, onednn: bool = False):
    """The ``paddle.inference.Config`` for an export (split out so the GPU path is testable on CPU)."""
    from paddle import inference

    config = inference.Config(os.path.join(directory, PADDLE_MODEL), os.path.join(directory, PADDLE_PARAMS))
    config.disable_glog_info()
    if str(device).startswith("gpu"):
        device_id = int(device.split(":")[1]) if ":" in device else 0
        config.enable_use_gpu(256, device_id)
        if tensorrt and inference.get_trt_compile_version() != (0, 0, 0):
            length = int(manifest["max_seq_length"])
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=max_batch, min_subgraph_size=5,
                                          precision_mode=inference.PrecisionType.Float32, use_static=False,
                                          use_calib_mode=False)
            lowest = {name: [1, 1] for name in INPUT_NAMES}
            highest = {name: [max_batch, length] for name in INPUT_NAMES}
            typical = {name: [min(32, max_batch), max(1, length // 2)] for name in INPUT_NAMES}
            config.set_trt_dynamic_shape_info(lowest, highest, typical)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(32)  # one cached kernel set per input shape: bound it
        else:
            config.disable_mkldnn()
    return config


class OnnxRuntimeBackend:
    """ONNX Runtime session (CPU; CUDA provider first when asked for and installed)."""

    name = "ONNX Runtime"

    def __init__(self, directory: str, manifest: dict, device: str = "cpu", threads: Optional[int] = None, **_):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # the converter leaves unused constants ORT warns about
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("gpu") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(os.path.join(directory, ONNX_MODEL), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {name: batch[name] for name in self.input_names})[0]


BACKENDS = {"paddle": PaddleInferenceBackend, "onnx": OnnxRuntimeBackend}


# ------------------------------------------------------------------ predictor
class Predictor:
    """Classify sentences or sentence pairs with an exported model.

    ``predict(["a fine film", ...])`` (pairs as 2-tuples) returns one dict per input, in
    input order: ``{"label", "probabilities"}`` for classification, ``{"score"}`` for STS-B.
    Inputs longer than the export's ``max_seq_length`` WordPieces are refused unless
    ``truncate`` (then they are cut as at training time).
    """

    def __init__(self, model_dir: str, device: str = "cpu", threads: Optional[int] = None, batch_size: int = 32,
                 truncate: bool = False, cpu_kernels: Optional[str] = None):
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
                                                         max_batch=self.batch_size, cpu_kernels=cpu_kernels)

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
    import sys

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


def run_cli_predict(settings) -> None:
    """predict.py: one JSON line per input line, in input order, streamed in chunks."""
    lines = read_lines(settings.input)  # checks --input before the model loads
    predictor = Predictor(settings.model_dir, device=settings.device, threads=settings.threads, batch_size=settings.batch_size,
                          truncate=settings.truncate)
    source = "<stdin>" if settings.input == "-" else settings.input
    chunk: List[tuple] = []

    def flush():
        numbers = [n for n, _ in chunk]
        texts = [t for _, t in chunk]
        features = predictor.encode(texts, first_position=1)
        for number, result in zip(numbers, predictor.results(predictor.logits(features))):
            print(json.dumps({"line": number, **result}), flush=False)
        chunk.clear()

    for number, line in lines:
        chunk.append((number, split_columns(number, line, predictor, source)))
        if len(chunk) >= CHUNK:
            _encode_checked(flush, chunk, source)
    if chunk:
        _encode_checked(flush, chunk, source)


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
