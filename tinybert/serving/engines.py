"""The runtimes an export runs on, and what each says it runs on.

- :class:`PaddleInferenceBackend`: ``paddle.inference`` on the CPU (Paddle's MKL kernels or
  oneDNN) or a GPU, with TensorRT only when asked for (``--tensorrt``) *and* its libraries load;
- :class:`OnnxRuntimeBackend`: an ONNX Runtime session, on the CUDA provider when asked for and
  installed.

A backend is built from the export directory and its manifest, runs one collated numpy batch
(:meth:`run`), and describes what actually runs it (:attr:`engine`, :meth:`describe`): the
device and TensorRT version for Paddle Inference, the providers the session reports for ONNX
Runtime. Asking for a GPU that cannot be had falls back to the CPU with one ``warning:`` line,
never silently.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from .latency import default_threads

ONNX_MODEL = "model.onnx"
TRT_WORKSPACE = 1 << 30
TRT_MIN_SUBGRAPH = 5


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def is_gpu(device: str) -> bool:
    return str(device).lower().startswith("gpu")


def device_index(device: str) -> int:
    return int(str(device).split(":")[1]) if ":" in str(device) else 0


# ------------------------------------------------------------------ Paddle Inference files
def paddle_files(directory: str, manifest: dict) -> Tuple[str, str]:
    """(graph, weights) paths of a Paddle export, as its manifest names them.

    Paddle 3.x writes the graph as ``model.json`` (PIR), Paddle 2.6 as ``model.pdmodel``; a
    PIR graph cannot be read by Paddle 2.x, which is said in one line.
    """
    import paddle

    from .export import GRAPH_SUFFIXES, PARAMS_SUFFIX

    files = list(manifest.get("model_files") or [])
    graphs = [name for name in files if name.endswith(GRAPH_SUFFIXES)]
    params = [name for name in files if name.endswith(PARAMS_SUFFIX)]
    if len(graphs) != 1 or len(params) != 1:
        raise UserError(f"{directory}/manifest.json lists {files} as model_files; a Paddle export has one graph "
                        f"({' or '.join(GRAPH_SUFFIXES)}) and one {PARAMS_SUFFIX}; re-run export_model.py")
    major = int(str(paddle.__version__).split(".")[0])
    if graphs[0].endswith(".json") and 0 < major < 3:
        written = manifest.get("paddle_version", "3.x")
        raise UserError(f"{directory} was exported by Paddle {written} (a PIR graph, {graphs[0]}), which "
                        f"Paddle {paddle.__version__} cannot read; export it again with this Paddle, or serve it "
                        f"with Paddle 3")
    return os.path.join(directory, graphs[0]), os.path.join(directory, params[0])


# ------------------------------------------------------------------ TensorRT
def tensorrt_runtime() -> Tuple[Optional[str], str]:
    """``(version, "")`` when TensorRT can run here, else ``(None, why not)``.

    ``get_trt_compile_version()`` only says the Paddle build was compiled against TensorRT; the
    libraries (libnvinfer) are installed separately, and only ``get_trt_runtime_version()``,
    which loads them, says they are there.
    """
    from paddle import inference

    compiled = tuple(inference.get_trt_compile_version())
    if not any(compiled):
        return None, "this Paddle build has no TensorRT (it needs a paddlepaddle-gpu build compiled with it)"
    try:
        runtime = tuple(inference.get_trt_runtime_version())
    except Exception:  # the dynamic loader's error when libnvinfer is missing
        runtime = (0, 0, 0)
    if not any(runtime):
        wanted = ".".join(str(v) for v in compiled)
        return None, (f"this Paddle build was compiled with TensorRT {wanted} but its libraries (libnvinfer) are "
                      f"not found; install TensorRT {wanted.rsplit('.', 1)[0]} and add its lib directory to "
                      f"LD_LIBRARY_PATH")
    return ".".join(str(v) for v in runtime), ""


def shape_plan(manifest: dict, max_batch: int) -> List[Tuple[int, int]]:
    """The (batch, length) shapes the tuned TensorRT ranges are collected on.

    The dev-set batch shapes the export recorded (``dev_shapes``), clipped to ``max_batch``, plus
    the extremes this predictor accepts: one input of two tokens ([CLS] [SEP]) and ``max_batch``
    inputs of ``max_seq_length`` tokens, so no served batch falls outside the ranges.
    """
    length = int(manifest["max_seq_length"])
    shapes = [(min(int(b), max_batch), min(int(n), length)) for b, n in manifest.get("dev_shapes") or []]
    shapes += [(1, 2), (max_batch, length)]
    return sorted(set(shapes))


def collect_shape_ranges(graph: str, params: str, shapes: Sequence[Tuple[int, int]], path: str,
                         device: str = "cpu") -> str:
    """Run the graph once per shape with Paddle's shape collection on; the ranges file (``path``).

    The file names every tensor of the graph with its min/max/opt shape, the inside-the-graph
    tensors included (a TensorRT subgraph that starts inside the graph needs them). It is
    collected in the process that uses it: Paddle 3's PIR names tensors by in-process ids.
    """
    from paddle import inference

    config = inference.Config(graph, params)
    config.disable_glog_info()
    if is_gpu(device):
        config.enable_use_gpu(256, device_index(device))
    else:
        config.disable_gpu()
    config.collect_shape_range_info(path)
    predictor = inference.create_predictor(config)
    for batch, length in shapes:
        values = {"input_ids": np.ones((batch, length), "int64"), "token_type_ids": np.zeros((batch, length), "int64"),
                  "attention_mask": np.ones((batch, length), "int64")}
        for name in predictor.get_input_names():
            handle = predictor.get_input_handle(name)
            handle.reshape([batch, length])
            handle.copy_from_cpu(values[name])
        predictor.run()
    del predictor  # the file is written when the predictor goes
    if not os.path.isfile(path):
        raise RuntimeError(f"Paddle wrote no shape-range file at {path}")
    return path


def paddle_config(graph: str, params: str, device: str, threads: int, onednn: bool = False,
                  tensorrt: Optional[str] = None, max_batch: int = 64):
    """The ``paddle.inference.Config`` for an export (split out so the GPU path is testable on CPU).

    ``tensorrt``: a shape-range file from :func:`collect_shape_ranges`; TensorRT is enabled
    (float32, tuned dynamic shapes, engines rebuilt at run time for a shape outside the ranges)
    only when it is given, which only happens on ``--tensorrt`` with the runtime present.
    """
    from paddle import inference

    config = inference.Config(graph, params)
    config.disable_glog_info()
    if is_gpu(device):
        config.enable_use_gpu(256, device_index(device))
        if tensorrt:
            config.enable_tensorrt_engine(workspace_size=TRT_WORKSPACE, max_batch_size=max_batch,
                                          min_subgraph_size=TRT_MIN_SUBGRAPH,
                                          precision_mode=inference.PrecisionType.Float32, use_static=False,
                                          use_calib_mode=False)
            config.enable_tuned_tensorrt_dynamic_shape(tensorrt, True)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(32)  # one cached kernel set per input shape: bound it
        else:
            config.disable_mkldnn()
    return config


# ------------------------------------------------------------------ backends
class PaddleInferenceBackend:
    """``paddle.inference`` predictor: Paddle's MKL kernels or oneDNN on CPU; a GPU, with
    TensorRT on request, on ``device='gpu'``.

    The device is chosen as the training scripts choose it (``tinybert.runtime.select_device``):
    ``gpu`` on a Paddle without CUDA, or without a visible GPU, says so in one line and runs on
    the CPU with the CPU settings (threads, kernels) rather than Paddle's single-threaded default.

    Which CPU kernels is recorded in the manifest (``cpu_kernels``) by the export check. The
    default is Paddle's own kernels (MKL for matmuls): they reproduce dygraph exactly and cost
    nothing per new input shape. oneDNN (``export_model.py --cpu_kernels onednn``) was about 2x
    faster at batch 32 on MiniLM here, but it builds kernels for every new input shape (batch 1
    with dynamic padding sees a new length almost every call: slower than dygraph here), and on a
    tiny random TinyBERT it differed from dygraph by 1.1e-4 on logits of 0.008 (a 1.4% relative
    error, not rounding); when the check fails that way the export falls back to the MKL kernels.

    TensorRT (``tensorrt=True``, off by default) needs its libraries at run time
    (:func:`tensorrt_runtime`) and the shape range of every tensor up front: they are collected
    in this process on the dev-set batch shapes the export recorded (:func:`shape_plan`).
    """

    name = "Paddle Inference"

    def __init__(self, directory: str, manifest: dict, device: str = "cpu", threads: Optional[int] = None,
                 max_batch: int = 64, tensorrt: bool = False, cpu_kernels: Optional[str] = None):
        import paddle
        from paddle import inference

        from ..runtime import select_device

        device = select_device(device)
        graph, params = paddle_files(directory, manifest)
        kernels = cpu_kernels or manifest.get("cpu_kernels", "mkl")
        threads = threads or default_threads()
        self._scratch = None  # holds the shape-range file while the predictor lives
        trt_version, shape_file = None, None
        if tensorrt:
            trt_version, shape_file = self._tensorrt(graph, params, manifest, device, max_batch)
        self.config = paddle_config(graph, params, device, threads, onednn=kernels == "onednn", tensorrt=shape_file,
                                    max_batch=max_batch)
        self.predictor = inference.create_predictor(self.config)
        self.input_names = list(self.predictor.get_input_names())
        self.output_name = self.predictor.get_output_names()[0]
        on_gpu = is_gpu(device)
        self.engine = {"runtime": f"paddle inference {paddle.__version__}", "device": device,
                       "cpu_kernels": None if on_gpu else kernels, "threads": None if on_gpu else threads,
                       "tensorrt": trt_version}

    def _tensorrt(self, graph, params, manifest, device, max_batch) -> Tuple[Optional[str], Optional[str]]:
        if not is_gpu(device):
            warn("--tensorrt: TensorRT runs on GPUs only; running on the CPU without it")
            return None, None
        version, why = tensorrt_runtime()
        if version is None:
            warn(f"--tensorrt: {why}; running on the GPU without TensorRT")
            return None, None
        self._scratch = tempfile.TemporaryDirectory(prefix="tinybert-trt-")
        path = os.path.join(self._scratch.name, "shape_range_info.pbtxt")
        return version, collect_shape_ranges(graph, params, shape_plan(manifest, max_batch), path, device)

    def describe(self) -> str:
        engine = self.engine
        if engine["tensorrt"]:
            return f"{engine['runtime']} on {engine['device']} with TensorRT {engine['tensorrt']} (float32)"
        if is_gpu(engine["device"]):
            return f"{engine['runtime']} on {engine['device']}"
        return f"{engine['runtime']} on cpu ({engine['cpu_kernels']} kernels, {engine['threads']} threads)"

    def run(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        for name in self.input_names:
            handle = self.predictor.get_input_handle(name)
            value = np.ascontiguousarray(batch[name])
            handle.reshape(list(value.shape))
            handle.copy_from_cpu(value)
        self.predictor.run()
        return self.predictor.get_output_handle(self.output_name).copy_to_cpu()


class OnnxRuntimeBackend:
    """An ONNX Runtime session: the CUDA provider first when a GPU is asked for and the
    onnxruntime-gpu package is installed, the CPU otherwise.

    The providers the session actually uses (``session.get_providers()``) are the engine's
    description: the CPU package has no CUDA provider, and a CUDA provider whose libraries do not
    load is dropped by ONNX Runtime itself; both cases print one line instead of running on the
    CPU unseen.
    """

    name = "ONNX Runtime"
    CUDA = "CUDAExecutionProvider"

    def __init__(self, directory: str, manifest: dict, device: str = "cpu", threads: Optional[int] = None,
                 tensorrt: bool = False, **_):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # the converter leaves unused constants ORT warns about
        if tensorrt:
            warn("--tensorrt applies to Paddle Inference exports (--format paddle); this ONNX export runs without it")
        available = list(ort.get_available_providers())
        providers: List[object] = ["CPUExecutionProvider"]
        if is_gpu(device) and self.CUDA in available:
            providers.insert(0, (self.CUDA, {"device_id": device_index(device)}))
        elif is_gpu(device):
            warn(f"--device {device}: the installed onnxruntime {ort.__version__} is the CPU-only package (providers: "
                 f"{', '.join(available)}), so this runs on the CPU; for the GPU: "
                 f"pip uninstall -y onnxruntime && pip install onnxruntime-gpu=={ort.__version__}")
        with contextlib.redirect_stdout(sys.stderr):  # ORT prints a provider fallback on stdout, predict.py's output
            self.session = ort.InferenceSession(os.path.join(directory, ONNX_MODEL), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.providers = list(self.session.get_providers())
        if is_gpu(device) and self.CUDA in available and self.CUDA not in self.providers:
            warn(f"--device {device}: ONNX Runtime's CUDA provider did not start (its CUDA or cuDNN libraries are "
                 f"missing or not the versions onnxruntime-gpu {ort.__version__} needs), so this runs on "
                 f"{', '.join(self.providers)}")
        self.engine = {"runtime": f"onnxruntime {ort.__version__}", "providers": self.providers,
                       "threads": options.intra_op_num_threads}

    def describe(self) -> str:
        return f"{self.engine['runtime']} on {', '.join(self.providers)}"

    def run(self, batch: Dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {name: batch[name] for name in self.input_names})[0]


BACKENDS = {"paddle": PaddleInferenceBackend, "onnx": OnnxRuntimeBackend}
