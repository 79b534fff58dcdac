"""Self-check of the GPU paths, on tiny generated models and data (about three minutes on a GPU).

    bash scripts/gpu_check.sh            # what the README's GPU section asks users to run first

One GPU: fine-tuning, task distillation stage 1 and stage 2 (with ``--amp float16`` where the
GPU supports it), export to Paddle Inference and to ONNX with the dev-set check on the GPU,
predict.py on both, TensorRT when its libraries are installed, and augmentation giving the same
file at two batch sizes. Two GPUs, under ``python -m paddle.distributed.launch --gpus 0,1``:
stage 1 and stage 2 each stopped by SIGTERM after a checkpoint and resumed from it; every
control message between the processes while they sit on their GPUs (host tensors over gloo);
``--device cpu`` under the launcher staying on the CPU with gloo; and a one-process run resumed
with fewer GPUs visible than when it saved (its random state is this GPU's own).

Every check prints one line, ``PASS``/``FAIL``/``SKIP`` with its time and what it saw; the
Paddle, CUDA, cuDNN, TensorRT and ONNX Runtime versions come first. The exit status is 1 when a
check failed. Without a GPU it says so and exits 0. ``--cpu_rehearsal`` runs the same checks
on the CPU (two processes instead of two GPUs): how the script itself is checked on machines
without a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))  # tiny.py: the generated models and GLUE-format files

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

MAX_LEN = "32"


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


def versions() -> str:
    import onnxruntime
    import paddle
    from paddle import inference

    ort = f"onnxruntime {onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    if not paddle.device.is_compiled_with_cuda():
        return f"Paddle {paddle.__version__} (CPU build); {ort}"
    trt = ".".join(str(v) for v in inference.get_trt_compile_version())
    return (f"Paddle {paddle.__version__} (CUDA {paddle.version.cuda()}, cuDNN {paddle.version.cudnn()}, built with "
            f"TensorRT {trt}); {ort}")


def gpu_count() -> tuple:
    import paddle

    if not paddle.device.is_compiled_with_cuda():
        return 0, "this Paddle build has no CUDA (install paddlepaddle-gpu)"
    count = paddle.device.cuda.device_count()
    return count, "" if count else "this CUDA build of Paddle sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"


class Runner:
    """Runs the checks in a scratch directory and prints one line each."""

    def __init__(self, work: str, device: str):
        self.work, self.device = work, device
        self.counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}

    def check(self, name: str, function) -> None:
        started = time.time()
        try:
            status, detail = "PASS", function() or ""
        except Skipped as skip:
            status, detail = "SKIP", str(skip)
        except Failed as failure:
            status, detail = "FAIL", str(failure)
        except Exception as error:  # a bug in the check itself: still one line, and the run goes on
            status, detail = "FAIL", f"{type(error).__name__}: {error}"
        self.counts[status] += 1
        print(f"{status} {name} [{time.time() - started:.0f}s]" + (f": {detail}" if detail else ""), flush=True)

    def script(self, script: str, *flags: str, timeout: int = 600) -> subprocess.CompletedProcess:
        """A root script in the scratch directory; Failed (with its last error line) unless it exits 0."""
        done = subprocess.run([sys.executable, os.path.join(ROOT, script), *flags], cwd=self.work, capture_output=True,
                              text=True, timeout=timeout, env=environment())
        if done.returncode != 0:
            raise Failed(f"{script} exited {done.returncode}: {last_error(done.stderr)}")
        return done

    def path(self, *parts: str) -> str:
        return os.path.join(self.work, *parts)


def environment() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ENDPOINTS", "PADDLE_CURRENT_ENDPOINT"):
        env.pop(name, None)
    return env


def last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error" in line]
    return (errors or lines or ["(no output)"])[-1][:300]


def make_fixtures(work: str) -> None:
    import tiny

    tiny.write_task(os.path.join(work, "glue"), "SST-2", n_train=256, n_dev=64)
    tiny.make_bert(os.path.join(work, "teacher"), layers=2, hidden=64, heads=4, intermediate=128)
    tiny.make_bert(os.path.join(work, "student"), layers=2, hidden=32, heads=4, intermediate=64,
                   model_type="tinybert", fit_size=64)
    tiny.make_bert_mlm(os.path.join(work, "mlm"))
    with open(os.path.join(work, "sentences.txt"), "w", encoding="utf-8") as handle:
        handle.write("a good film\nthe plot was dull and the actor was sad\nnice\n")


def amp_flag(rehearsal: bool) -> tuple:
    """``--amp float16`` where this GPU runs it (nothing on the CPU rehearsal), and a note."""
    if rehearsal:
        return (), "amp off (CPU)"
    from tinybert.training.accelerate import amp_unsupported

    problem = amp_unsupported("float16")
    return ((), f"amp off: {problem}") if problem else (("--amp", "float16"), "amp float16")


def one_device_checks(run: Runner, rehearsal: bool) -> None:
    device = run.device
    common = ("--task_name", "SST-2", "--glue_dir", "glue", "--max_seq_length", MAX_LEN, "--batch_size", "16",
              "--logging_steps", "20", "--save_steps", "20", "--device", device)
    amp, amp_note = amp_flag(rehearsal)

    def on_device(done) -> None:
        if f"device {device}" not in done.stdout:
            raise Failed(f"the run did not report device {device}: {last_error(done.stdout + done.stderr)}")
        if amp and "warning: --amp" in done.stderr:
            raise Failed(last_error(done.stderr))

    def finetune():
        on_device(run.script("finetune_teacher.py", "--model_name_or_path", "teacher", "--learning_rate", "1e-3",
                             "--max_steps", "40", "--output_dir", "ft", *common))

    def stage(first: bool):
        def go():
            start = "student" if first else "d/best_inter_model"
            on_device(run.script("task_distill.py", "--teacher_path", "ft/best_model", "--student_model_name_or_path",
                                 start, "--learning_rate", "5e-3", "--max_steps", "40", "--output_dir", "d",
                                 *(("--intermediate_distill",) if first else ()), *amp, *common))
            return amp_note
        return go

    def export(fmt: str, *extra: str):
        def go():
            target = f"ex-{fmt}" + ("-trt" if extra else "")
            run.script("export_model.py", "--model_dir", "d/best_model", "--output_dir", target, "--format", fmt,
                       "--task_name", "SST-2", "--glue_dir", "glue", "--max_seq_length", MAX_LEN, "--device", device,
                       *extra)
            with open(run.path(target, "manifest.json"), encoding="utf-8") as handle:
                evaluation = json.load(handle)["evaluation"]
            if extra and not evaluation["engine"].get("tensorrt"):
                raise Failed(f"TensorRT was not used: {evaluation['run_by']}")
            note = f"max |logit - dygraph| {evaluation['max_abs_logit_difference']:.1e} (tolerance " \
                   f"{evaluation['tolerance']:g}), run by {evaluation['run_by']}"
            if fmt == "onnx" and device != "cpu" and "CUDAExecutionProvider" not in evaluation["engine"]["providers"]:
                note += "; for ONNX on the GPU install onnxruntime-gpu (docs/deploying.md)"
            return note
        return go

    def predict(fmt: str, *extra: str):
        def go():
            target = f"ex-{fmt}" + ("-trt" if extra else "")
            done = run.script("predict.py", "--model_dir", target, "--input", "sentences.txt", "--device", device,
                              *extra)
            if len(done.stdout.splitlines()) != 3:
                raise Failed(f"{len(done.stdout.splitlines())} output lines for 3 inputs")
            return done.stderr.strip().splitlines()[-1]
        return go

    def tensorrt_ready():
        if rehearsal:
            raise Skipped("no TensorRT on the CPU")
        from tinybert.serving.engines import tensorrt_runtime

        version, why = tensorrt_runtime()
        if version is None:
            raise Skipped(why)

    def with_tensorrt(step):
        def go():
            tensorrt_ready()
            return step()
        return go

    def augmentation():
        outputs = []
        for batch in ("2", "64"):
            glue = run.path(f"aug-{batch}")
            shutil.copytree(run.path("glue", "SST-2"), os.path.join(glue, "SST-2"))
            run.script("data_augmentation.py", "--pretrained_bert_model", "mlm", "--glue_dir", glue, "--task_name",
                       "SST-2", "--N", "4", "--device", device, "--batch_size", batch)
            with open(os.path.join(glue, "SST-2", "train_aug.tsv"), "rb") as handle:
                outputs.append(handle.read())
        if outputs[0] != outputs[1]:
            raise Failed("train_aug.tsv differs between --batch_size 2 and 64 on this device: the top-K tie "
                         "tolerance is too tight for its floating-point noise (tinybert/augmentation/augment.py)")
        lines = outputs[0].count(b"\n")
        return f"{lines} lines, identical"

    run.check("fine-tune (1 device)", finetune)
    run.check("task distillation stage 1", stage(True))
    run.check("task distillation stage 2", stage(False))
    run.check("export to Paddle Inference, checked on the device", export("paddle"))
    run.check("export to ONNX, checked on the device", export("onnx"))
    run.check("predict.py on the Paddle Inference export", predict("paddle"))
    run.check("predict.py on the ONNX export", predict("onnx"))
    run.check("export with --tensorrt", with_tensorrt(export("paddle", "--tensorrt")))
    run.check("predict.py --tensorrt", with_tensorrt(predict("paddle", "--tensorrt")))
    run.check("augmentation: the same file at two batch sizes", augmentation)


def checkpoint_step(directory: str) -> int:
    with open(os.path.join(directory, "trainer_state.pkl"), "rb") as handle:
        return int(pickle.load(handle)["progress"]["step"])


def two_device_checks(run: Runner, rehearsal: bool, count: int) -> None:
    """Stage 1 and stage 2 under the launcher: stopped by SIGTERM after a checkpoint, resumed."""
    where = ["--nproc_per_node", "2"] if rehearsal else ["--gpus", "0,1"]
    amp, _ = amp_flag(rehearsal)

    def interrupted_and_resumed(first: bool):
        output = "two-inter" if first else "two-pred"
        checkpoint = run.path(output, "checkpoint-last-inter" if first else "checkpoint-last")
        flags = ["--teacher_path", "ft/best_model", "--student_model_name_or_path",
                 "student" if first else "d/best_inter_model", "--task_name", "SST-2", "--glue_dir", "glue",
                 "--max_seq_length", MAX_LEN, "--batch_size", "8", "--learning_rate", "1e-3", "--max_steps", "300",
                 "--save_steps", "10", "--logging_steps", "100", "--output_dir", output, "--device", run.device,
                 *(("--intermediate_distill",) if first else ()), *amp]

        def launch(name: str, *extra: str):
            log_dir = run.path(f"log-{name}")
            command = [sys.executable, "-m", "paddle.distributed.launch", *where, "--log_dir", log_dir,
                       os.path.join(ROOT, "task_distill.py"), *flags, *extra]
            env = environment()
            if rehearsal:
                env["OMP_NUM_THREADS"] = "1"
            return subprocess.Popen(command, cwd=run.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=env), log_dir

        def rank0(log_dir: str) -> str:
            with open(os.path.join(log_dir, "workerlog.0"), encoding="utf-8", errors="replace") as handle:
                return handle.read()

        def go():
            process, log_dir = launch(output)
            deadline = time.time() + 300
            while True:
                try:
                    if checkpoint_step(checkpoint) >= 10:
                        break
                except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                    pass
                if process.poll() is not None:
                    raise Failed(f"the launcher exited {process.returncode} before a checkpoint: "
                                 f"{last_error(rank0(log_dir))}")
                if time.time() > deadline:
                    process.kill()
                    raise Failed("no checkpoint within 5 minutes")
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
            saved = checkpoint_step(checkpoint)
            if "SIGTERM" not in rank0(log_dir) or saved >= 300:
                raise Failed(f"the run was not stopped by SIGTERM (checkpoint at step {saved}): "
                             f"{last_error(rank0(log_dir))}")
            process, log_dir = launch(output + "-resumed", "--resume")
            process.wait(timeout=600)
            log = rank0(log_dir)
            if process.returncode != 0 or f"at step {saved}" not in log:
                raise Failed(f"the resumed run exited {process.returncode}: {last_error(log)}")
            if checkpoint_step(checkpoint) != 300:
                raise Failed(f"the resumed run ended at step {checkpoint_step(checkpoint)}, not 300")
            return f"stopped at step {saved}, resumed there, ended at step 300"
        return go

    def one_gpu_only():
        raise Skipped(f"{count} GPU visible")

    name = "two processes (CPU rehearsal)" if rehearsal else "two GPUs"
    for first, stage in ((True, "stage 1"), (False, "stage 2")):
        enough = rehearsal or count >= 2
        run.check(f"{name}: {stage} saved on SIGTERM and resumed", interrupted_and_resumed(first) if enough
                  else one_gpu_only)


PROBE = """
import sys
sys.path.insert(0, {root!r})
from tinybert.runtime import prepare_process
prepare_process()
import paddle
import paddle.distributed as dist
from tinybert.errors import run_cli
from tinybert.training.distributed import Distribution


@run_cli  # leaves as the commands do, not through the interpreter's shutdown (docs/distributed.md#faults)
def main():
    control = Distribution.start({device!r})
    shared = control.broadcast(list(range(3)) if control.is_main else None)
    gathered = control.gather(control.rank)
    ok = (shared == [0, 1, 2] and gathered == list(range(control.world_size)) and control.any(control.rank == 1)
          and control.smallest(5 + control.rank) == 5 and control.main_does(lambda: 1, "a probe") in (1, None))
    print("PROBE", paddle.get_device(), dist.get_backend(), "ok" if ok else "wrong", flush=True)
    control.barrier("the probe's end")


main()
"""


def distribution_checks(run: Runner, rehearsal: bool, count: int) -> None:
    """Issue 24's GPU-only behaviour: control messages from GPU processes, the CPU under the launcher,
    a resume with another number of visible GPUs."""
    where = ["--nproc_per_node", "2"] if rehearsal else ["--gpus", "0,1"]
    enough = rehearsal or count >= 2

    def probe(label: str, device: str, expected: str):
        def go():
            if not enough:
                raise Skipped(f"{count} GPU visible")
            path = run.path(f"probe-{label}.py")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(PROBE.format(root=ROOT, device=device))
            log_dir = run.path(f"log-probe-{label}")
            env = dict(environment(), OMP_NUM_THREADS="1")
            done = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", *where, "--log_dir", log_dir,
                                   path], cwd=run.work, capture_output=True, text=True, timeout=300, env=env)
            lines = []
            for rank in range(2):
                with open(os.path.join(log_dir, f"workerlog.{rank}"), encoding="utf-8", errors="replace") as handle:
                    lines += [line for line in handle.read().splitlines() if line.startswith("PROBE")]
            if done.returncode != 0 or len(lines) != 2:
                raise Failed(f"the launcher exited {done.returncode}: {lines or last_error(done.stdout + done.stderr)}")
            wrong = [line for line in lines if not line.endswith("ok") or expected not in line.lower()]
            if wrong:
                raise Failed(f"expected '{expected}' and ok on both ranks, got {lines}")
            return "; ".join(line[len("PROBE "):] for line in lines)
        return go

    def resume_with_fewer_gpus():
        if rehearsal or count < 2:
            raise Skipped("needs two GPUs" if not rehearsal else "GPU only")
        flags = ["--teacher_path", "ft/best_model", "--student_model_name_or_path", "student", "--task_name", "SST-2",
                 "--glue_dir", "glue", "--max_seq_length", MAX_LEN, "--batch_size", "8", "--learning_rate", "1e-3",
                 "--intermediate_distill", "--max_steps", "300", "--save_steps", "10", "--logging_steps", "100",
                 "--output_dir", "fewer", "--device", "gpu"]
        checkpoint = run.path("fewer", "checkpoint-last-inter")
        env = dict(environment(), CUDA_VISIBLE_DEVICES="0,1")
        process = subprocess.Popen([sys.executable, os.path.join(ROOT, "task_distill.py"), *flags], cwd=run.work,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if checkpoint_step(checkpoint) >= 10:
                    break
            except (OSError, EOFError, ValueError, pickle.UnpicklingError):
                pass
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        saved = checkpoint_step(checkpoint)
        done = subprocess.run([sys.executable, os.path.join(ROOT, "task_distill.py"), *flags, "--resume"],
                              cwd=run.work, capture_output=True, text=True, timeout=600,
                              env=dict(environment(), CUDA_VISIBLE_DEVICES="0"))
        if done.returncode != 0 or "random state was saved on" in done.stderr:
            raise Failed(f"resumed with one GPU visible: exit {done.returncode}: {last_error(done.stderr)}")
        return f"saved at step {saved} with 2 GPUs visible, resumed with 1"

    name = "two processes (CPU rehearsal)" if rehearsal else "two GPUs"
    run.check(f"{name}: every control message, from {'CPU' if rehearsal else 'GPU'} processes",
              probe("messages", run.device, "cpu gloo" if rehearsal else "nccl"))
    run.check(f"{name}: --device cpu under the launcher stays on the CPU with gloo", probe("cpu", "cpu", "cpu gloo"))
    run.check("one GPU: resumed with fewer GPUs visible than when it saved", resume_with_fewer_gpus)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu_rehearsal", action="store_true",
                        help="run every check on the CPU (two processes for two GPUs): checks this script itself")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (printed) after the run")
    args = parser.parse_args(argv)
    print(f"gpu_check: {versions()}", flush=True)
    count, why = gpu_count()
    if not count and not args.cpu_rehearsal:
        print(f"gpu_check: no GPU here: {why}. Nothing to check; run this on the machine with the GPUs.")
        return 0
    import paddle

    if count and not args.cpu_rehearsal:
        print(f"gpu_check: {count} GPU(s); GPU 0 is {paddle.device.cuda.get_device_name(0)} (compute capability "
              f"{'.'.join(str(v) for v in paddle.device.cuda.get_device_capability(0))})", flush=True)
        paddle.set_device("gpu")
    work = tempfile.mkdtemp(prefix="tinybert-gpu-check-")
    run = Runner(work, "cpu" if args.cpu_rehearsal else "gpu")
    try:
        make_fixtures(work)
        one_device_checks(run, args.cpu_rehearsal)
        two_device_checks(run, args.cpu_rehearsal, count)
        distribution_checks(run, args.cpu_rehearsal, count)
    finally:
        if args.keep:
            print(f"gpu_check: scratch directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    counts = run.counts
    print(f"gpu_check: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
