"""Augmentation at scale (tinybert/augmentation/parts.py): chunks, resuming, several processes.

The promise checked here: ``train_aug.tsv`` is the same bytes whatever the chunk size, the
batch size, an interruption and resumption, or the number of processes, for the same seed.
"""
import json
import os
import shutil
import subprocess

import pytest
import tiny
from test_multiprocess import environment, launch_cmd, worker_logs

import data_augmentation
from tinybert import api
from tinybert.augmentation import augment
from tinybert.augmentation.parts import MANIFEST, PARTS_SUFFIX
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.settings import AugmentSettings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("scale-assets")
    return {"mlm": tiny.make_bert_mlm(str(base / "mlm")), "glove": tiny.write_glove(str(base / "glove.txt"))}


def flags(glue_dir, task, assets, *extra):
    return ["--pretrained_bert_model", assets["mlm"], "--glove_embs", assets["glove"], "--glue_dir", str(glue_dir),
            "--task_name", task, "--device", "cpu", "--N", "5", *extra]


def augmented(glue_dir, task, assets, *extra):
    """Run data_augmentation.py in-process; the bytes of train_aug.tsv."""
    data_augmentation.main(flags(glue_dir, task, assets, *extra))
    with open(os.path.join(str(glue_dir), get_task(task).name, "train_aug.tsv"), "rb") as handle:
        return handle.read()


def parts_dir(glue_dir, task):
    return os.path.join(str(glue_dir), get_task(task).name, "train_aug.tsv" + PARTS_SUFFIX)


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory, assets):
    """An MRPC task and its one-chunk, one-process augmentation: the reference bytes."""
    glue = tmp_path_factory.mktemp("mrpc")
    tiny.write_task(str(glue), "MRPC", n_train=18)
    return glue, augmented(glue, "MRPC", assets, "--chunk_rows", "100000")


def test_the_file_does_not_depend_on_chunk_rows_or_batching(mrpc, assets, monkeypatch):
    glue, reference = mrpc
    assert len(read_examples(os.path.join(str(glue), "MRPC", "train_aug.tsv"), get_task("MRPC"))) > 18
    monkeypatch.setattr(augment, "EXAMPLES_PER_SEARCH", 2)  # masked-LM batches of other compositions
    for chunk_rows, batch_size in (("1", "1"), ("5", "3"), ("7", "64")):
        assert augmented(glue, "MRPC", assets, "--chunk_rows", chunk_rows, "--batch_size", batch_size) == reference
    assert not os.path.exists(parts_dir(glue, "MRPC")), "the parts are removed once merged"


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, finished):
    """Make the run die inside chunk ``finished`` (after some of its lines), like a kill would."""
    real = augment.augment_chunk
    calls = []

    def dying(rows, *args, **kwargs):
        calls.append(len(rows))
        lines = real(rows, *args, **kwargs)
        if len(calls) > finished:
            yield next(iter(lines))
            raise Interrupted
        yield from lines

    monkeypatch.setattr(augment, "augment_chunk", dying)
    return calls


@pytest.fixture
def cola(tmp_path, assets):
    """A CoLA task (no header) interrupted after 3 of its 7 chunks, and the uninterrupted bytes."""
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for glue in (whole, broken):
        tiny.write_task(str(glue), "CoLA", n_train=26)
    reference = augmented(whole, "CoLA", assets, "--chunk_rows", "4")
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after(patch, 3)
        with pytest.raises(Interrupted):
            augmented(broken, "CoLA", assets, "--chunk_rows", "4")
    return broken, reference


def test_an_interrupted_run_resumes_at_its_first_missing_chunk_and_ends_byte_identical(cola, assets, monkeypatch,
                                                                                      capsys):
    broken, reference = cola
    parts = parts_dir(broken, "CoLA")
    assert sorted(os.listdir(parts)) == [MANIFEST, "part-000000.tsv", "part-000001.tsv", "part-000002.tsv"]
    assert not os.path.exists(os.path.join(str(broken), "CoLA", "train_aug.tsv"))
    with open(os.path.join(parts, "part-000003.tsv.tmp999999"), "w") as handle:
        handle.write("what a SIGKILL mid-write leaves\n")
    capsys.readouterr()
    calls = interrupt_after(monkeypatch, 99)
    assert augmented(broken, "CoLA", assets, "--chunk_rows", "4") == reference
    assert calls == [4, 4, 4, 2], "only the missing chunks are augmented, one chunk of rows at a time"
    out = capsys.readouterr().out
    assert "3 of 7 chunks done, 4 to go" in out
    assert "rows/s (14 rows augmented by this run)" in out.splitlines()[-1]
    assert not os.path.exists(parts)


@pytest.mark.parametrize("change, expected", [
    (("--seed", "7"), "seed 42 -> 7"),
    (("--chunk_rows", "5"), "chunk_rows 4 -> 5"),
    (("--N", "3"), "N 5 -> 3"),
    ("edit train.tsv", "train.tsv changed"),
])
def test_resuming_with_other_settings_is_refused_in_one_line_and_touches_nothing(cola, assets, capsys, change,
                                                                                expected):
    broken, _ = cola
    parts = parts_dir(broken, "CoLA")
    argv = ["--chunk_rows", "4"]
    if change == "edit train.tsv":
        with open(os.path.join(str(broken), "CoLA", "train.tsv"), "a", encoding="utf-8") as handle:
            handle.write("gj04\t1\t\tone more good film\n")
    else:
        argv += list(change)
    before = {name: open(os.path.join(parts, name), "rb").read() for name in os.listdir(parts)}
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        data_augmentation.main(flags(broken, "CoLA", assets, *argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    assert expected in err[0] and f"delete {parts} to start over" in err[0]
    assert {name: open(os.path.join(parts, name), "rb").read() for name in os.listdir(parts)} == before
    assert not os.path.exists(os.path.join(str(broken), "CoLA", "train_aug.tsv"))


def test_deleting_the_parts_starts_over(cola, assets):
    broken, reference = cola
    shutil.rmtree(parts_dir(broken, "CoLA"))
    assert augmented(broken, "CoLA", assets, "--chunk_rows", "4", "--batch_size", "2") == reference


def test_the_python_api_augments_a_file_quietly(mrpc, assets, tmp_path, capsys):
    glue, reference = mrpc
    copy = tmp_path / "glue"
    shutil.copytree(os.path.join(str(glue), "MRPC"), copy / "MRPC", ignore=shutil.ignore_patterns("train_aug*"))
    path = api.augment(AugmentSettings(task_name="mrpc", pretrained_bert_model=assets["mlm"], glove_embs=assets["glove"],
                                       glue_dir=str(copy), N=5, device="cpu", chunk_rows=6), progress=False)
    with open(path, "rb") as handle:
        assert handle.read() == reference
    captured = capsys.readouterr()
    assert "augmenting" not in captured.err  # no progress bar
    assert captured.out.strip().splitlines()[-1].startswith(f"wrote {path}: ") and " rows/s" in captured.out


def test_two_processes_write_the_file_of_one(mrpc, assets, tmp_path):
    glue, reference = mrpc
    copy = tmp_path / "glue"
    shutil.copytree(os.path.join(str(glue), "MRPC"), copy / "MRPC", ignore=shutil.ignore_patterns("train_aug*"))
    command = launch_cmd(tmp_path / "log", "data_augmentation.py", *flags(copy, "MRPC", assets, "--chunk_rows", "4"))
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=environment())
    logs = worker_logs(tmp_path / "log")
    assert result.returncode == 0, result.stdout[-3000:] + "\n".join(log[-3000:] for log in logs)
    assert "rank 1: wrote 2 part(s) of 5; rank 0 merges them" in logs[1]  # chunks 1 and 3
    assert "rows/s" in logs[0] and "rows/s" not in logs[1]
    with open(copy / "MRPC" / "train_aug.tsv", "rb") as handle:
        assert handle.read() == reference
    assert not os.path.exists(parts_dir(copy, "MRPC"))


# --- issue 28: the device and precision the parts were scored on ---------------------------------

def test_parts_scored_on_another_device_are_refused_in_one_line_and_touched_not(cola, assets, capsys):
    broken, reference = cola
    parts = parts_dir(broken, "CoLA")
    path = os.path.join(parts, MANIFEST)
    with open(path, encoding="utf-8") as handle:
        written = json.load(handle)
    assert written["compute"] == {"device": "cpu", "precision": "float32"}
    written["compute"] = {"device": "gpu (NVIDIA A100-SXM4-40GB)", "precision": "tf32"}  # what a GPU run records
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(written, handle)
    before = {name: open(os.path.join(parts, name), "rb").read() for name in os.listdir(parts)}
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        data_augmentation.main(flags(broken, "CoLA", assets, "--chunk_rows", "4"))
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "scored on gpu (NVIDIA A100-SXM4-40GB) in tf32, this run scores on cpu in float32" in err[0]
    assert {name: open(os.path.join(parts, name), "rb").read() for name in os.listdir(parts)} == before
    written["compute"] = {"device": "cpu", "precision": "float32"}  # put back: the run finishes, same bytes
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(written, handle)
    assert augmented(broken, "CoLA", assets, "--chunk_rows", "4") == reference


def test_the_compute_record_names_the_gpu_and_whether_its_matmuls_are_tf32(monkeypatch):
    import paddle

    monkeypatch.setattr(paddle.device.cuda, "get_device_name", lambda device=None: "NVIDIA A100")
    monkeypatch.setattr(paddle.base.core, "get_cublas_switch", lambda: True, raising=False)
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    settings = AugmentSettings(task_name="SST-2", pretrained_bert_model="mlm", device="gpu")
    for capability, precision in (((8, 0), "tf32"), ((7, 5), "float32")):
        monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda device=None: capability)
        assert augment.compute_record(settings, "gpu:0") == {"device": "gpu (NVIDIA A100)", "precision": precision}
    monkeypatch.setattr(paddle.device.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    assert augment.compute_record(settings, "gpu:0")["precision"] == "float32"
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE")
    monkeypatch.setattr(paddle.base.core, "get_cublas_switch", lambda: False, raising=False)
    assert augment.compute_record(settings, "gpu:0")["precision"] == "float32"
    glove_only = AugmentSettings(task_name="SST-2", pretrained_bert_model="none", glove_embs="g.txt", device="gpu")
    assert augment.compute_record(glove_only, "gpu:0") == {"device": "cpu", "precision": "float32"}  # numpy
    assert augment.compute_record(settings, "cpu") == {"device": "cpu", "precision": "float32"}  # fell back
