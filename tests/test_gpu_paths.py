"""Issue 28: the GPU paths, checked on a CPU machine.

Real runtimes wherever this machine has them (ONNX Runtime's CPU package, Paddle Inference on
the CPU, Paddle's shape collection, predict.py falling back from ``--device gpu``); where only a
GPU would answer (compute capability, TensorRT's libraries, a CUDA provider) Paddle's and ONNX
Runtime's own query functions are patched, never our code. What needs a real GPU is
scripts/gpu_check.sh's job.
"""
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest
import tiny

from tinybert.errors import UserError
from tinybert.serving import engines
from tinybert.serving.deploy import export_checkpoint
from tinybert.serving.inference import Predictor
from tinybert.training import accelerate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LEN = 32


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-paths")
    tiny.write_task(str(root / "glue"), "SST-2", n_train=8, n_dev=40)
    tiny.make_bert(str(root / "student"), layers=1, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    done = {}
    for fmt in ("paddle", "onnx"):
        target = str(root / fmt)
        done[fmt] = target, export_checkpoint(str(root / "student"), target, "SST-2", format=fmt,
                                              glue_dir=str(root / "glue"), max_seq_length=MAX_LEN, eval_batch_size=16)
    return root, done


def our_warnings(err):
    return [line for line in err.splitlines() if line.startswith("warning:")]


# ------------------------------------------------------------------ item 2: mixed precision
def a_gpu(monkeypatch, capability, cuda="12.0", float16=True, bfloat16=True, name="Tesla T4"):
    """Paddle's answers on a GPU of ``capability``: its support functions and device queries."""
    monkeypatch.setattr(paddle.amp, "is_float16_supported", lambda device=None: float16)
    monkeypatch.setattr(paddle.amp, "is_bfloat16_supported", lambda device=None: bfloat16)
    monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(paddle.device.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(paddle.version, "cuda", lambda: cuda)
    monkeypatch.setattr(paddle, "is_compiled_with_rocm", lambda: False)


def test_amp_is_checked_before_training_and_falls_back_in_one_line(monkeypatch, capsys):
    a_gpu(monkeypatch, (7, 5))  # a T4: float16 yes, bfloat16 no
    assert accelerate.resolve_amp("float16", "gpu") == "float16"
    assert capsys.readouterr().err == ""
    assert accelerate.resolve_amp("bfloat16", "gpu") == "off"
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --amp bfloat16:")
    assert "Tesla T4" in lines[0] and "7.5" in lines[0] and "training in float32" in lines[0]
    assert "--amp float16 works" in lines[0]

    # a P100: Paddle's is_float16_supported says yes (it accepts 5.3), auto_cast would not run (needs 7.0)
    a_gpu(monkeypatch, (6, 0), name="Tesla P100")
    assert accelerate.resolve_amp("float16", "gpu:1") == "off"
    line, = capsys.readouterr().err.strip().splitlines()
    assert "compute capability 6.0" in line and "needs compute capability 7.0" in line

    a_gpu(monkeypatch, (8, 0), cuda="10.2")  # bfloat16 also needs CUDA 11
    assert accelerate.resolve_amp("bfloat16", "gpu") == "off"
    assert "CUDA 11" in capsys.readouterr().err
    a_gpu(monkeypatch, (8, 0), cuda="11.8")
    assert accelerate.resolve_amp("bfloat16", "gpu") == "bfloat16"
    assert accelerate.resolve_amp("fp16", "gpu:0") == "float16"  # the aliases still resolve
    a_gpu(monkeypatch, (9, 0), bfloat16=False)  # Paddle itself says no
    assert accelerate.resolve_amp("bfloat16", "gpu") == "off"
    assert "Paddle reports" in capsys.readouterr().err


def test_paddles_own_warnings_are_shown_and_only_the_known_noise_is_hidden():
    probe = ("from tinybert.runtime import prepare_process; prepare_process()\n"
             "import warnings, paddle\n"
             "warnings.warn('probe-user-warning', UserWarning)\n"
             "with paddle.amp.auto_cast(enable=True, dtype='float16'):\n"
             "    pass\n"
             "warnings.warn('No ccache found. probe', UserWarning)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "probe-user-warning" in done.stderr
    assert "amp_guard can only be enabled on" in done.stderr  # auto_cast turning itself off on the CPU
    assert "No ccache found" not in done.stderr


# ------------------------------------------------------------------ item 3: TensorRT
def test_tensorrt_counts_as_present_only_when_its_libraries_load(monkeypatch):
    from paddle import inference

    def versions(compiled, runtime):
        monkeypatch.setattr(inference, "get_trt_compile_version", lambda: compiled)
        monkeypatch.setattr(inference, "get_trt_runtime_version", runtime)

    versions((0, 0, 0), lambda: (0, 0, 0))
    version, why = engines.tensorrt_runtime()
    assert version is None and "has no TensorRT" in why
    versions((8, 6, 1), lambda: (0, 0, 0))  # built with it, libnvinfer not installed
    version, why = engines.tensorrt_runtime()
    assert version is None and "libnvinfer" in why and "TensorRT 8.6" in why and "LD_LIBRARY_PATH" in why

    def missing():
        raise RuntimeError("The third-party dynamic library (libnvinfer.so) ... cannot be loaded")

    versions((8, 6, 1), missing)
    assert engines.tensorrt_runtime()[0] is None
    versions((8, 6, 1), lambda: (8, 6, 1))
    assert engines.tensorrt_runtime() == ("8.6.1", "")


class RecordedConfig:
    """Stands in for ``paddle.inference.Config`` on a GPU build: records what is switched on."""

    def __init__(self, *files):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_tensorrt_is_switched_on_only_when_asked_for_with_the_tuned_shapes(monkeypatch):
    from paddle import inference

    monkeypatch.setattr(inference, "Config", RecordedConfig)
    monkeypatch.setattr(inference, "get_trt_compile_version", lambda: (8, 6, 1))  # a build with TensorRT
    default = engines.paddle_config("m.json", "m.pdiparams", "gpu:1", 2)
    names = [name for name, _, _ in default.calls]
    assert ("enable_use_gpu", (256, 1), {}) in default.calls
    assert not any("tensorrt" in name for name in names)
    asked = engines.paddle_config("m.json", "m.pdiparams", "gpu", 2, tensorrt="shapes.pbtxt", max_batch=8)
    engine = [kwargs for name, _, kwargs in asked.calls if name == "enable_tensorrt_engine"]
    assert len(engine) == 1 and engine[0]["precision_mode"] == inference.PrecisionType.Float32
    assert engine[0]["max_batch_size"] == 8
    assert ("enable_tuned_tensorrt_dynamic_shape", ("shapes.pbtxt", True), {}) in asked.calls


def shape_ranges(path, name):
    with open(path, encoding="utf-8") as handle:
        block = re.search(r'name: "%s"(.*?)}' % name, handle.read(), re.S).group(1)
    found = {}
    for kind, value in re.findall(r"(min|max|opt)_shape: (\d+)", block):
        found.setdefault(kind, []).append(int(value))
    return found


def test_tuned_shape_ranges_come_from_the_dev_batches_and_cover_every_servable_batch(exports, tmp_path):
    root, done = exports
    directory, manifest = done["paddle"]
    from paddlenlp.transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(directory)
    with open(root / "glue" / "SST-2" / "dev.tsv", encoding="utf-8") as handle:
        sentences = [line.split("\t")[0] for line in handle.read().splitlines()[1:]]
    lengths = np.sort([min(len(tokenizer(s)["input_ids"]), MAX_LEN) for s in sentences])
    expected = sorted({(len(chunk), int(chunk.max())) for chunk in np.split(lengths, range(16, len(lengths), 16))})
    assert [tuple(shape) for shape in manifest["dev_shapes"]] == expected  # the check's batches: 16, 16, 8
    plan = engines.shape_plan(manifest, max_batch=8)
    assert (1, 2) in plan and (8, MAX_LEN) in plan and all(b <= 8 for b, _ in plan)
    graph, params = engines.paddle_files(directory, manifest)
    ranges = shape_ranges(engines.collect_shape_ranges(graph, params, plan, str(tmp_path / "s.pbtxt")), "input_ids")
    assert ranges["min"] == [1, 2] and ranges["max"] == [8, MAX_LEN]


def test_tensorrt_on_the_cpu_says_so_and_changes_nothing(exports, capsys):
    _, done = exports
    directory, _ = done["paddle"]
    texts = ["a good film", "bad", "the plot was dull"]
    plain = Predictor(directory).predict(texts)
    capsys.readouterr()
    asked = Predictor(directory, tensorrt=True)
    assert our_warnings(capsys.readouterr().err) == [
        "warning: --tensorrt: TensorRT runs on GPUs only; running on the CPU without it"]
    assert asked.engine["tensorrt"] is None and asked.predict(texts) == plain


# ------------------------------------------------------------------ item 4: ONNX Runtime providers
def test_onnx_sessions_report_their_providers_and_a_gpu_request_on_the_cpu_package_says_how_to_fix_it(exports,
                                                                                                   capsys):
    import onnxruntime

    _, done = exports
    directory, manifest = done["onnx"]
    assert manifest["evaluation"]["engine"]["providers"] == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in manifest["evaluation"]["run_by"]
    capsys.readouterr()
    predictor = Predictor(directory, device="gpu")
    line, = our_warnings(capsys.readouterr().err)
    assert "CPU-only package" in line and f"pip install onnxruntime-gpu=={onnxruntime.__version__}" in line
    assert predictor.engine["providers"] == ["CPUExecutionProvider"]


def test_a_cuda_provider_that_does_not_start_is_reported_and_stdout_stays_clean(exports, capsys, monkeypatch):
    import onnxruntime

    _, done = exports
    directory, _ = done["onnx"]
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    predictor = Predictor(directory, device="gpu:0")
    captured = capsys.readouterr()
    line, = our_warnings(captured.err)
    assert "CUDA provider did not start" in line and "CPUExecutionProvider" in line
    assert captured.out == "" and predictor.engine["providers"] == ["CPUExecutionProvider"]


# ------------------------------------------------------------------ item 5: predict.py's device
def test_predict_on_gpu_without_one_falls_back_in_one_line_with_the_cpu_settings(exports):
    _, done = exports
    directory, _ = done["paddle"]

    def predict(device):
        return subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), "--model_dir", directory, "--input",
                               "-", "--device", device, "--threads", "2"], input="a good film\nbad\n",
                              capture_output=True, text=True, timeout=300)

    gpu, cpu = predict("gpu"), predict("cpu")
    assert gpu.returncode == 0, gpu.stderr[-2000:]
    line, = our_warnings(gpu.stderr)
    assert "--device gpu" in line and "using the CPU" in line
    assert "on cpu (mkl kernels, 2 threads)" in gpu.stderr.strip().splitlines()[-1]
    assert gpu.stdout == cpu.stdout and len(gpu.stdout.splitlines()) == 2


# ------------------------------------------------------------------ item 1: export file names
def test_the_export_records_the_files_jit_save_wrote_and_paddle_2_refuses_a_pir_graph(exports, monkeypatch):
    _, done = exports
    directory, manifest = done["paddle"]
    graph = "model.json" if int(paddle.__version__.split(".")[0]) >= 3 else "model.pdmodel"
    assert manifest["model_files"] == [graph, "model.pdiparams"] and manifest["paddle_version"] == paddle.__version__
    assert all(os.path.isfile(os.path.join(directory, name)) for name in manifest["model_files"])
    pir = {"model_files": ["model.json", "model.pdiparams"], "paddle_version": "3.3.1"}
    monkeypatch.setattr(paddle, "__version__", "2.6.2")
    with pytest.raises(UserError, match="exported by Paddle 3.3.1 .* which Paddle 2.6.2 cannot read"):
        engines.paddle_files(directory, pir)
    monkeypatch.setattr(paddle, "__version__", "3.3.1")
    assert engines.paddle_files("d", pir) == (os.path.join("d", "model.json"), os.path.join("d", "model.pdiparams"))


def test_the_paddle_26_leg_pins_what_the_main_requirements_pin_but_paddle_and_its_converter():
    def pins(*names):
        found = {}
        for name in names:
            with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
                for line in handle:
                    line = line.split("#")[0].strip()
                    if "==" in line:
                        package, version = line.split("==")
                        found[package.lower()] = version
        return found

    main, leg = pins("requirements.txt", "requirements-test.txt"), pins("requirements-paddle26.txt")
    changed = {name: (main.get(name), leg.get(name)) for name in set(main) | set(leg)
               if main.get(name) != leg.get(name)}
    assert changed == {"paddlepaddle": ("3.3.1", "2.6.2"), "paddle2onnx": ("2.1.0", "1.3.1")}


# ------------------------------------------------------------------ item 6: the self-check script
def test_gpu_check_says_there_is_no_gpu_here_and_exits_0():
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh")], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"gpu_check: Paddle {paddle.__version__}") and "onnxruntime" in lines[0]
    assert lines[1].startswith("gpu_check: no GPU here: this Paddle build has no CUDA")
