"""``pip install .`` gives an importable ``tinybert`` and the six console commands, with the root
scripts' flags, from outside the checkout.

The wheel is built from a copy of the package's files (the checkout stays clean) without network
(``--no-build-isolation``: the test venv has pyproject.toml's setuptools) and installed into a
fresh venv whose only other packages are the test venv's, reached through a ``.pth`` file: pip
then resolves the package's pinned dependencies against them, offline, so a pin that does not
match what requirements.txt installs fails here.
"""
import importlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = {"tinybert-finetune": "finetune_teacher.py", "tinybert-augment": "data_augmentation.py",
            "tinybert-distill": "task_distill.py", "tinybert-general": "general_distill.py", "tinybert-prune": "prune_distill.py",
            "tinybert-export": "export_model.py", "tinybert-predict": "predict.py"}


def pins(lines):
    return {m.group(1).lower(): m.group(2) for m in (re.match(r"\s*\"?([A-Za-z0-9_.-]+)==([^\"\s,]+)", line)
                                                     for line in lines) if m}


def test_the_package_pins_are_requirements_txt():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        project = tomllib.load(handle)["project"]
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as handle:
        required = pins(line for line in handle if not line.lstrip().startswith("#"))
    packaged = pins(project["dependencies"] + project["optional-dependencies"]["cpu"])
    assert packaged == required
    assert set(project["scripts"]) == set(COMMANDS)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    os.makedirs(source)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, "tinybert"), source / "tinybert",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = lambda *command, **kw: subprocess.run(command, capture_output=True, text=True, timeout=600, **kw)  # noqa: E731
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(source),
                "-w", str(work / "dist"))
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    venv = work / "fresh"
    made = run(sys.executable, "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    with open(os.path.join(site, "test-venv-packages.pth"), "w", encoding="utf-8") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")  # the test venv's installed dependencies
    wheel = next(iter((work / "dist").glob("tinybert_paddle-*.whl")))
    done = run(python, "-m", "pip", "install", "--no-index", f"{wheel}[cpu]")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work, venv, done.stdout


def test_pip_resolves_every_pinned_dependency_against_what_requirements_txt_installs(installed):
    _, _, log = installed
    assert "Successfully installed tinybert-paddle" in log
    assert "Requirement already satisfied: paddlepaddle==3.3.1" in log and "paddlenlp==2.8.1" in log


def flags(help_text):
    return sorted(set(re.findall(r"(--[a-z_0-9]+)", help_text)))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_console_command_takes_exactly_its_root_scripts_flags(installed, command, capsys):
    work, venv, _ = installed
    outside = work / "elsewhere"
    os.makedirs(outside, exist_ok=True)
    env = dict(os.environ, PYTHONPATH="")
    mine = subprocess.run([str(venv / "bin" / command), "--help"], cwd=outside, capture_output=True, text=True,
                          timeout=300, env=env)
    assert mine.returncode == 0, mine.stderr[-2000:]
    with pytest.raises(SystemExit):  # the root script's own parser, in this process
        importlib.import_module(COMMANDS[command][:-3]).parse_args(["--help"])
    assert flags(mine.stdout) == flags(capsys.readouterr().out) and len(flags(mine.stdout)) > 3
    assert mine.stdout.startswith(f"usage: {command} ")


def test_the_api_runs_from_the_installed_package_outside_the_checkout(installed):
    work, venv, _ = installed
    tiny.write_task(str(work / "glue"), "SST-2", n_train=16, n_dev=8)
    tiny.make_bert(str(work / "teacher"), layers=1, hidden=16, heads=2)
    script = (
        "import tinybert, tinybert.data.hparams as h\n"
        "from tinybert import api\n"
        "result = api.finetune_teacher(task_name='SST-2', model_name_or_path='teacher', glue_dir='glue',\n"
        "                              output_dir='out', max_steps=2, save_steps=2, device='cpu', max_seq_length=16)\n"
        "print(tinybert.__file__)\n"
        "print(h.task_hparams('SST-2')['inter_epochs'], result['best_dir'])\n"
    )
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script], cwd=work, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=""))
    assert done.returncode == 0, done.stderr[-3000:]
    location, table = done.stdout.strip().splitlines()[-2:]
    assert location.startswith(str(venv)) and not location.startswith(ROOT)  # the installed copy, not the checkout
    epochs, best = table.split()
    assert float(epochs) > 0 and best.endswith(os.path.join("out", "best_model"))  # the table ships as package data
    assert os.path.isfile(work / "out" / "best_model" / "model_state.pdparams")
