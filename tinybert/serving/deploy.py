"""``export_model.py``: a classifier checkpoint -> a deployable, verified export directory.

Formats and precisions (``--format``/``--precision``):

- ``paddle float32``: ``paddle.jit.save`` graph (``model.json`` on Paddle 3, ``model.pdmodel``
  on Paddle 2.6, + ``model.pdiparams``: the names written are recorded) served by
  ``paddle.inference`` (Paddle's MKL kernels or oneDNN on CPU; GPU, with TensorRT on
  ``--tensorrt`` when its libraries are installed);
- ``onnx float32``: the same graph converted by paddle2onnx (opset 14), then constant-folded
  once by ONNX Runtime's basic optimizer, so the file holds weights as initializers (what
  quantization and other runtimes expect) and the raw converter output is never served;
- ``onnx int8``: ONNX Runtime dynamic quantization of that model: int8 weights (per output
  channel by default, ``--no_per_channel`` for per tensor), activations quantized on the fly;
  no calibration set needed;
- ``paddle int8``: Paddle's own post-training quantization (``paddle.quantization.PTQ``,
  calibrated on ``--calibration_examples`` training examples) was tried on our pins: it
  calibrates and converts in dygraph, but ``paddle.jit.save`` of the converted model fails
  with dynamic batch/length on paddle 3.3.1 (its quantize layer builds a persistable tensor of
  shape ``[-1, -1, hidden]``). We refuse that combination with the reason instead of writing
  a fixed-shape model; see docs/deploying.md.

Every export is checked right after it is written, through the same :class:`Predictor` a
server uses: dev-set logits against the dygraph model (float32: any difference above
``--tolerance`` fails the export and nothing is left on disk; by default 1e-4 on the CPU,
where both sides run the same kernels, and 1e-2 on a GPU, where fused kernels, TF32 matmuls
and TensorRT legitimately move logits by about 1e-3) and the task's metrics (INT8: the change
is printed and recorded). The directory is written under a temporary name and renamed only
when the check passed. The manifest records what ran the check (runtime, device or ONNX
Runtime providers, TensorRT), the Paddle version that wrote the graph, and the dev-set batch
shapes (TensorRT's shape ranges are collected on them).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from typing import Dict, List

import numpy as np

from ..errors import UserError
from ..paths import check_not_replacing, check_writable_dir
from .engines import ONNX_MODEL, is_gpu
from .inference import MANIFEST, MANIFEST_VERSION, Predictor, write_manifest

OPSET = 14
TOLERANCE = 1e-4  # CPU: the export runs the dygraph model's own kernels (measured: exact or ~1e-6)
GPU_TOLERANCE = 1e-2  # GPU: fused kernels, TF32 (unit roundoff 4.9e-4) and TensorRT; a wrong graph is off by O(1)


# --------------------------------------------------------------- the source
def inspect_checkpoint(path: str, spec) -> str:
    """Model type of a classifier checkpoint this suite wrote; one-line errors otherwise."""
    from ..models.loading import (
        CONFIG_FILES,
        WEIGHTS_FILE,
        checkpoint_model_type,
        read_state_dict,
    )

    if not os.path.isdir(path):
        raise UserError(f"--model_dir {path}: no such directory; give a best_model/ written by finetune_teacher.py "
                        f"or task_distill.py")
    if os.path.isfile(os.path.join(path, MANIFEST)):
        raise UserError(f"--model_dir {path} is already an export (it has {MANIFEST}); give the training checkpoint "
                        f"it came from (its manifest names it)")
    if not any(os.path.isfile(os.path.join(path, name)) for name in CONFIG_FILES):
        raise UserError(f"--model_dir {path} is not a classifier checkpoint: no config.json; give a best_model/ "
                        f"written by finetune_teacher.py or task_distill.py")
    weights = os.path.join(path, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise UserError(f"--model_dir {path} is not a classifier checkpoint: no {WEIGHTS_FILE}")
    state = read_state_dict(weights)
    if "classifier.weight" not in state:
        raise UserError(f"--model_dir {path} has no classifier (no classifier.weight): it is a plain encoder; "
                        f"fine-tune it on {spec.name} first (finetune_teacher.py) or distil it (task_distill.py)")
    outputs = int(state["classifier.weight"].shape[-1])
    if outputs != spec.num_labels:
        raise UserError(f"--model_dir {path} has a classifier with {outputs} output(s), {spec.name} needs "
                        f"{spec.num_labels}: pass the --task_name it was trained on")
    return checkpoint_model_type(path)


# --------------------------------------------------------------- writers
def write_paddle(model, directory: str) -> List[str]:
    """The graph and weights, under the names this Paddle's ``jit.save`` gives them."""
    from .export import save_inference_model

    return save_inference_model(model, directory)


def write_onnx(model, directory: str, int8: bool, per_channel: bool = True) -> Dict[str, object]:
    """paddle2onnx, then ORT constant folding (and dynamic INT8 quantization)."""
    import onnxruntime as ort
    import paddle2onnx

    from .export import save_inference_model

    scratch = tempfile.mkdtemp(prefix="tinybert-onnx-", dir=directory)
    try:
        graph, params = save_inference_model(model, scratch)
        raw = os.path.join(scratch, "raw.onnx")
        with quiet_output():  # the converter prints progress (and our temporary paths) from C++
            paddle2onnx.export(os.path.join(scratch, graph), os.path.join(scratch, params),
                               **converter_options(paddle2onnx.export, raw))
        folded = os.path.join(scratch if int8 else directory, "folded.onnx" if int8 else ONNX_MODEL)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = folded
        options.log_severity_level = 3
        ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"])
        details: Dict[str, object] = {"opset": OPSET, "converter": f"paddle2onnx {paddle2onnx.__version__}"}
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(folded, os.path.join(directory, ONNX_MODEL), weight_type=QuantType.QInt8,
                             per_channel=per_channel)
            details["quantization"] = {"tool": f"onnxruntime {ort.__version__} quantize_dynamic", "weights": "int8",
                                       "activations": "uint8, dynamic (per batch)", "per_channel": per_channel}
        return details
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def converter_options(export, save_file: str) -> Dict[str, object]:
    """paddle2onnx's options on either of its lines: 2.x (Paddle 3, PIR graphs) or 1.3 (Paddle 2.6).

    ``optimize_tool="None"`` (2.x only): its default optimizer (polygraphy) may pip-install
    packages at export time; ONNX Runtime's own constant folding does the same job offline. 1.3
    has no such option (its optimizer is built in).
    """
    import inspect

    options: Dict[str, object] = {"save_file": save_file, "opset_version": OPSET, "enable_onnx_checker": True}
    if "optimize_tool" in inspect.signature(export).parameters:
        options["optimize_tool"] = "None"
    return options


@contextlib.contextmanager
def quiet_output():
    """Send file descriptors 1 and 2 to a temporary file; replay it only if the block fails."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace")[-4000:])


def paddle_int8_unsupported(calibration_examples: int) -> UserError:
    return UserError(
        "--format paddle --precision int8: Paddle's post-training quantization calibrates here but its converted "
        "model cannot be saved with dynamic batch and length on paddle 3.3.1 (paddle.jit.save fails in the quantize "
        f"layer), so --calibration_examples {calibration_examples} cannot be used; export INT8 with --format onnx")


# --------------------------------------------------------------- the run
DEFAULTS = dict(format="paddle", precision="float32", glue_dir=None, max_seq_length=128, device="cpu",
                calibration_examples=300, per_channel=True, cpu_kernels="mkl", tolerance=None, eval_batch_size=32,
                skip_bad_rows=False, tensorrt=False)


def export_checkpoint(model_dir: str, output_dir: str, task_name: str, **options) -> dict:
    """Python entry (the demo, tests): :func:`run` with export_model.py's defaults."""
    import argparse

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown export option(s): {', '.join(sorted(unknown))}")
    return run(argparse.Namespace(model_dir=model_dir, output_dir=output_dir, task_name=task_name,
                                  **{**DEFAULTS, **options}))


def run(settings) -> dict:
    from ..data.features import featurize
    from ..data.glue import load_split, task_dir
    from ..data.tasks import get_task
    from ..models.loading import load_model, load_tokenizer
    from ..runtime import select_device
    from ..training.checkpoint import atomic_directory
    from ..training.evaluate import predict_logits
    from ..training.metrics import task_metrics

    spec = get_task(settings.task_name)
    check_writable_dir(settings.output_dir, "--output_dir", replaced=True)  # before minutes of loading and checking
    check_not_replacing([("--output_dir", settings.output_dir, settings.output_dir)],  # it is replaced whole
                        [("--model_dir", settings.model_dir), ("--glue_dir's task directory", task_dir(settings.glue_dir, spec))])
    if settings.max_seq_length <= 1:
        raise UserError(f"--max_seq_length must be at least 2, got {settings.max_seq_length}")
    if settings.format == "paddle" and settings.precision == "int8":
        raise paddle_int8_unsupported(settings.calibration_examples)
    model_type = inspect_checkpoint(settings.model_dir, spec)
    device = select_device(settings.device)
    dev_sets = load_split(settings.glue_dir, spec, "dev", settings.skip_bad_rows)
    tokenizer = load_tokenizer(model_type, settings.model_dir, "--model_dir")
    model = load_model(model_type, settings.model_dir, "--model_dir", num_labels=spec.num_labels)
    model.eval()
    limit = settings.max_seq_length
    position_limit = int(getattr(model.config, "max_position_embeddings", limit))
    if limit > position_limit:
        raise UserError(f"--max_seq_length {limit} exceeds the model's {position_limit} position embeddings")
    devs = [featurize(d.examples, tokenizer, limit, spec.is_regression) for d in dev_sets]
    tolerance = settings.tolerance if settings.tolerance is not None else GPU_TOLERANCE if is_gpu(device) else TOLERANCE
    started = time.time()
    reference = [predict_logits(model, dev, settings.eval_batch_size, tokenizer.pad_token_id) for dev in devs]
    reference_metrics = task_metrics(spec, [(logits, dev.labels) for logits, dev in zip(reference, devs)])

    with atomic_directory(settings.output_dir) as temporary:
        details: Dict[str, object] = {}
        if settings.format == "paddle":
            files = write_paddle(model, temporary)
        else:
            details = write_onnx(model, temporary, settings.precision == "int8", settings.per_channel)
            files = [ONNX_MODEL]
        tokenizer.save_pretrained(temporary)
        manifest = {
            "manifest_version": MANIFEST_VERSION, "task": spec.name,
            "labels": list(spec.labels) if spec.labels else None, "pair": spec.is_pair,
            "max_seq_length": limit, "format": settings.format, "precision": settings.precision,
            "model_files": files, "inputs": ["input_ids", "token_type_ids", "attention_mask"],
            "output": "score" if spec.is_regression else "logits",
            "source_checkpoint": os.path.abspath(settings.model_dir), "source_model_type": model_type,
            "paddle_version": paddle_version(), "dev_shapes": dev_shapes(devs, settings.eval_batch_size), **details,
        }
        write_manifest(temporary, manifest)
        evaluation = verify(temporary, spec, [[ex.texts for ex in d.examples] for d in dev_sets], devs, reference,
                            reference_metrics, settings, device, tolerance)
        kernels = evaluation.pop("cpu_kernels")
        if kernels:
            manifest["cpu_kernels"] = kernels
        manifest["evaluation"] = evaluation
        manifest["size_bytes"] = directory_size(temporary, files)
        write_manifest(temporary, manifest)
    print(summary_line(manifest, time.time() - started))
    return manifest


def paddle_version() -> str:
    import paddle

    return str(paddle.__version__)


def dev_shapes(devs, batch_size: int) -> List[List[int]]:
    """The distinct (batch, padded length) shapes the dev set is run in (the check's batches)."""
    from ..data.features import eval_batches

    shapes = set()
    for dev in devs:
        for indices in eval_batches(dev.lengths, batch_size):
            shapes.add((len(indices), int(dev.lengths[indices].max())))
    return [list(shape) for shape in sorted(shapes)]


def verify(directory: str, spec, texts, devs, reference, reference_metrics, settings, device: str,
           tolerance: float) -> dict:
    """Dev logits of the written export (through Predictor) against the dygraph model's.

    The dev texts are tokenized again by the export's own tokenizer files, and must give the
    training checkpoint's token ids: a tokenizer that did not round-trip is caught here, not
    in production.
    """
    from ..training.metrics import task_metrics

    kernels = [None]
    if settings.format == "paddle" and not is_gpu(device):
        kernels = ["onednn", "mkl"] if settings.cpu_kernels == "onednn" else ["mkl"]
    for kernel in kernels:
        predictor = Predictor(directory, device=device, batch_size=settings.eval_batch_size, truncate=True,
                              cpu_kernels=kernel, tensorrt=settings.tensorrt)
        exported = []
        for dev, dev_texts in zip(devs, texts):
            served = predictor.encode(dev_texts)
            if served.input_ids != dev.input_ids:
                raise UserError(f"the tokenizer saved in the export does not reproduce {settings.model_dir}'s "
                                f"tokenization; check its tokenizer_config.json (do_lower_case)")
            exported.append(predictor.logits(dev))
        difference = max(float(np.max(np.abs(e - r))) if len(r) else 0.0 for e, r in zip(exported, reference))
        if kernel == "onednn" and difference > tolerance:
            print(f"note: Paddle Inference with oneDNN kernels differs from dygraph by {difference:.2e} "
                  f"(> {tolerance:g}) on this model; the export uses Paddle's MKL kernels instead")
            continue
        break
    metrics = task_metrics(spec, [(logits, dev.labels) for logits, dev in zip(exported, devs)])
    agreement = None
    if not spec.is_regression:
        agreement = float(np.mean(np.concatenate([np.argmax(e, 1) == np.argmax(r, 1) for e, r in zip(exported, reference)])))
    if settings.precision == "float32" and difference > tolerance:
        raise UserError(
            f"the {settings.format} export's dev logits differ from the dygraph model by {difference:.2e} "
            f"(> {tolerance:g}); nothing was written to {settings.output_dir}")
    return {"cpu_kernels": kernel, "dev_examples": int(sum(len(d) for d in devs)),
            "max_abs_logit_difference": difference,
            "argmax_agreement": agreement, "metrics": {k: float(v) for k, v in metrics.items()},
            "dygraph_metrics": {k: float(v) for k, v in reference_metrics.items()},
            "score_change": float(metrics["score"] - reference_metrics["score"]), "tolerance": tolerance,
            "engine": predictor.engine, "run_by": predictor.describe()}


def directory_size(directory: str, files: List[str]) -> int:
    return int(sum(os.path.getsize(os.path.join(directory, name)) for name in files))


def summary_line(manifest: dict, seconds: float) -> str:
    ev = manifest["evaluation"]
    metric = ", ".join(f"{k} {v:.4f}" for k, v in ev["metrics"].items() if k != "score")
    line = (f"exported {manifest['source_checkpoint']} -> {manifest['format']} {manifest['precision']} "
            f"({manifest['size_bytes'] / 1e6:.1f} MB); dev ({ev['dev_examples']} examples): {metric}; "
            f"max |logit - dygraph| {ev['max_abs_logit_difference']:.2e}")
    if manifest["precision"] == "int8":
        line += (f"; score change vs float32 dygraph {100 * ev['score_change']:+.2f} points"
                 + (f", argmax agreement {100 * ev['argmax_agreement']:.1f}%" if ev["argmax_agreement"] is not None
                    else ""))
    return line + f"; run by {ev['run_by']} [{seconds:.0f}s]"
