"""The bad-input catalogue of docs/troubleshooting.md (issue 5): one test per entry, one line, exit 2.

Each entry runs a real entry point (in-process, through the same ``run_cli`` wrapper the
command line uses) and checks: exit status 2, exactly one line on stderr starting with
``error:``, no traceback, and the fragments that name the file/line/flag and the fix.
The ids below are the rows of docs/troubleshooting.md's table.
"""
import hashlib
import importlib
import os
import shutil

import pytest
import tiny


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    tiny.write_task(str(root / "glue"), "SST-2", n_train=16, n_dev=8)
    tiny.write_task(str(root / "glue"), "MRPC", n_train=16, n_dev=8)
    tiny.make_bert(str(root / "teacher"), layers=2, hidden=32, heads=2)
    tiny.make_bert(str(root / "student"), layers=1, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    return root


@pytest.fixture
def work(base, tmp_path, monkeypatch):
    shutil.copytree(base, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for folder, _, _ in os.walk(tmp_path):  # an entry may have locked a directory
        os.chmod(folder, 0o755)


def finetune(*extra, task="SST-2", model="teacher"):
    return ("finetune_teacher", ["--model_name_or_path", model, "--task_name", task, "--glue_dir", "glue",
                                 "--output_dir", "out", "--device", "cpu", "--max_steps", "1", *extra])


def distill(*extra, student="student", teacher="teacher"):
    return ("task_distill", ["--student_model_name_or_path", student, "--teacher_path", teacher,
                             "--task_name", "sst-2", "--intermediate_distill", "--glue_dir", "glue",
                             "--output_dir", "out", "--device", "cpu", "--max_steps", "1", *extra])


def distill2(*extra, student="student", teacher="teacher"):
    """Stage 2 (no --intermediate_distill)."""
    return ("task_distill", [arg for arg in distill(*extra, student=student, teacher=teacher)[1]
                             if arg != "--intermediate_distill"])


def inside_output(source, name):
    """A model placed where this run's output will be written (out/<name>), as a real workflow leaves it."""
    return lambda work: shutil.copytree(source, os.path.join("out", name))


def general(*extra, corpus="corpus.txt"):
    return ("general_distill", ["--teacher_path", "teacher", "--student_num_layers", "1", "--student_hidden_size", "16",
                                "--student_intermediate_size", "32", "--corpus", corpus, "--max_seq_length", "32",
                                "--batch_size", "2", "--output_dir", "out", "--device", "cpu", "--max_steps", "1", *extra])


def export(*extra):
    return ("export_model", ["--model_dir", "teacher", "--output_dir", "exported", "--task_name", "SST-2",
                             "--glue_dir", "glue", *extra])


def augment(*extra):
    return ("data_augmentation", ["--pretrained_bert_model", "none", "--glove_embs", "glove.txt", "--glue_dir", "glue",
                                  "--task_name", "SST-2", "--device", "cpu", *extra])


def predict(*extra):
    return ("predict", ["--model_dir", "teacher", "--input", "reviews.txt", *extra])


def write(path, text, mode="w"):
    with open(path, mode) as handle:
        handle.write(text)


def truncate(path):
    with open(path, "rb") as handle:
        data = handle.read()
    write(path, data[: len(data) // 3], "wb")


def replace_line(path, number, text):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    lines[number - 1] = text
    write(path, "\n".join(lines))


def mismatched_vocab(work):
    tiny.make_bert("other", layers=1, hidden=16, model_type="tinybert", fit_size=32)
    write("other/vocab.txt", "extra\n", "a")


def ernie_teacher_and_tinybert_zh_student(work):
    """ERNIE 3.0's vocabulary differs from bert-base-chinese's, which the TinyBERT -zh students use."""
    tiny.write_clue_task("glue", "AFQMC", n_train=8, n_dev=4)
    tiny.make_zh("ernie", model_type="ernie")
    tiny.make_zh("tinybert-zh", model_type="tinybert", layers=1, hidden=16, fit_size=32)
    write("tinybert-zh/vocab.txt", "额外\n", "a")


CATALOGUE = [
    # id, set-up(work), (script, argv), fragments of the one-line error
    ("missing-glue-dir", None, finetune("--glue_dir", "nowhere"), ["nowhere/SST-2/train.tsv", "--glue_dir"]),
    ("missing-dev-file", lambda w: os.remove("glue/SST-2/dev.tsv"), finetune(), ["dev.tsv", "does not exist"]),
    ("empty-file", lambda w: write("glue/SST-2/train.tsv", ""), finetune(), ["train.tsv", "no SST-2 examples"]),
    ("header-only-file", lambda w: write("glue/SST-2/train.tsv", "sentence\tlabel\n"), finetune(), ["train.tsv", "only a header"]),
    ("unreadable-file", lambda w: (os.remove("glue/SST-2/train.tsv"), os.mkdir("glue/SST-2/train.tsv")), finetune(),
     ["train.tsv", "is a directory"]),
    ("malformed-row", lambda w: replace_line("glue/MRPC/train.tsv", 4, "1\t2\tonly three columns"), finetune(task="mrpc"),
     ["train.tsv:4", "column(s), MRPC needs at least 5", "--skip_bad_rows"]),
    ("label-outside-label-set", lambda w: replace_line("glue/SST-2/train.tsv", 3, "a fine movie\t7"), finetune(),
     ["train.tsv:3", "label '7'", "0, 1"]),
    ("empty-text-field", lambda w: replace_line("glue/SST-2/train.tsv", 5, " \t1"), finetune(), ["train.tsv:5", "empty"]),
    ("non-utf8-bytes", lambda w: write("glue/SST-2/train.tsv", b"sentence\tlabel\ngood\t1\ncaf\xe9\t0\n", "wb"), finetune(),
     ["train.tsv:3", "UTF-8"]),
    ("missing-augmented-file", None, distill("--use_aug"), ["train_aug.tsv", "data_augmentation.py"]),
    ("unknown-task", None, finetune(task="sst3"), ["unknown task 'sst3'", "SST-2"]),
    ("nonexistent-model-path", None, finetune(model="./no/such/model"), ["--model_name_or_path ./no/such/model", "no such directory"]),
    ("teacher-student-vocabulary-mismatch", mismatched_vocab, distill(student="other"),
     ["teacher and other have different vocabularies", "build_student.py"]),
    ("ernie-teacher-non-ernie-student", ernie_teacher_and_tinybert_zh_student,
     distill("--teacher_model_type", "ernie", "--task_name", "afqmc", student="tinybert-zh", teacher="ernie"),
     ["ernie and tinybert-zh have different vocabularies", "use an ERNIE student (--model_type ernie",
      "build_student.py"]),
    ("head-count-mismatch", lambda w: tiny.make_bert("h4", layers=1, hidden=16, heads=4, model_type="tinybert", fit_size=32),
     distill(student="h4"), ["attention heads", "equal head counts"]),
    ("non-dividing-depths", lambda w: three_over_two(), distill(teacher="t3", student="s2"), ["not a multiple", "--layer_map"]),
    ("bad-temperature", None, distill("--T", "-1"), ["--T"]),
    ("bad-learning-rate", None, finetune("--learning_rate", "0"), ["--learning_rate must be positive"]),
    ("bad-batch-size", None, finetune("--batch_size", "0"), ["--batch_size must be positive"]),
    ("bad-epochs", None, finetune("--num_train_epochs", "0", "--max_steps", "-1"), ["--num_train_epochs must be positive"]),
    ("teacher-wrong-number-of-labels", lambda w: tiny.make_bert("t3labels", layers=2, num_labels=3), distill(teacher="t3labels"),
     ["3 outputs", "SST-2 needs 2"]),
    ("teacher-without-classifier", lambda w: strip_classifier("teacher"), distill(), ["no classifier", "finetune_teacher.py"]),
    ("corrupt-checkpoint-file", lambda w: truncate("teacher/model_state.pdparams"), finetune(), ["model_state.pdparams", "corrupt"]),
    ("corrupt-resume-state", "corrupt-resume", finetune("--resume"), ["trainer_state.pkl", "corrupt"]),
    ("resume-without-checkpoint", None, finetune("--resume"), ["--resume", "does not exist"]),
    ("resume-with-other-settings", "other-run", finetune("--resume", "--batch_size", "8", "--seed", "7"),
     ["--resume", "--batch_size: 32 -> 8", "--seed: 42 -> 7", "--overwrite_output_dir"]),
    ("output-dir-of-another-run", "other-run", finetune("--learning_rate", "1e-4"), ["already holds", "--overwrite_output_dir"]),
    ("no-space-left-while-saving", "no-space", finetune(), ["no space left", "previous copy is intact"]),
    ("output-dir-under-a-file", "afile", finetune("--output_dir", "afile/out"), ["--output_dir afile/out: afile is a file"]),
    ("export-dir-under-a-file", "afile", finetune("--export_dir", "afile/export"), ["--export_dir afile/export: afile is a file"]),
    ("distill-output-dir-under-a-file", "afile", distill("--output_dir", "afile/out"), ["--output_dir afile/out: afile is a file"]),
    ("general-output-dir-under-a-file", "afile", general("--output_dir", "afile/out"), ["--output_dir afile/out: afile is a file"]),
    ("export-output-dir-under-a-file", "afile", export("--output_dir", "afile/x"), ["--output_dir afile/x: afile is a file"]),
    ("augment-glue-dir-under-a-file", "afile", augment("--glue_dir", "afile/glue"), ["--glue_dir's task directory afile/glue/SST-2: afile is a file"]),
    ("predict-input-under-a-file", "afile", predict("--input", "afile/reviews.txt"), ["--input afile/reviews.txt: afile is a file"]),
    ("predict-input-missing", None, predict("--input", "reviews.txt"), ["--input reviews.txt: no such file", "- for standard input"]),
    ("output-dir-unwritable", "locked", finetune("--output_dir", "locked/out"), ["--output_dir locked/out", "locked is not writable"]),
    ("augment-task-dir-unwritable", lambda w: os.chmod("glue/SST-2", 0o555), augment(),
     ["--glue_dir's task directory glue/SST-2 is not writable"]),
    ("cache-dir-under-a-file", "afile", distill("--cache_dir", "afile/cache"), ["--cache_dir afile/cache: afile is a file"]),
    ("max-seq-length-above-positions", None, distill("--max_seq_length", "200"),
     ["--max_seq_length 200 exceeds the 128 positions of --teacher_path", "--max_seq_length 128 or less"]),
    ("teacher-inside-output", inside_output("teacher", "best_model"), distill2(teacher="out/best_model"),
     ["--output_dir out would overwrite --teacher_path out/best_model: this run replaces out/best_model",
      "give another --output_dir"]),
    ("student-source-inside-output", inside_output("student", "best_inter_model"),
     distill(student="out/best_inter_model"),
     ["--output_dir out would overwrite --student_model_name_or_path out/best_inter_model", "give another --output_dir"]),
    ("finetune-source-inside-output", inside_output("teacher", "best_model"), finetune(model="out/best_model"),
     ["--output_dir out would overwrite --model_name_or_path out/best_model", "give another --output_dir"]),
    ("general-teacher-inside-output", inside_output("teacher", "general_model"),
     general("--teacher_path", "out/general_model"),
     ["--output_dir out would overwrite --teacher_path out/general_model", "give another --output_dir"]),
    ("export-dir-over-the-output-dir", None, finetune("--export_dir", "out"),
     ["--export_dir out would overwrite --output_dir out", "give another --export_dir"]),
    ("export-into-its-model-dir", None, export("--output_dir", "teacher"),
     ["--output_dir teacher would overwrite --model_dir teacher: this run replaces teacher", "give another --output_dir"]),
    ("degenerate-corpus", lambda w: write("one.txt", "x" * 200_000 + "\n"), general(corpus="one.txt"),
     ["one.txt", "1.0 token(s) each", "100% of them [UNK]"]),
]
UNWRITABLE = {"output-dir-unwritable", "augment-task-dir-unwritable"}
WRITES_BEFORE_FAILING = {"no-space-left-while-saving"}  # the run trained; the point is what it did not leave


def three_over_two():
    tiny.make_bert("t3", layers=3, hidden=32)
    tiny.make_bert("s2", layers=2, hidden=16, model_type="tinybert", fit_size=32)


def strip_classifier(directory):
    import paddle

    path = os.path.join(directory, "model_state.pdparams")
    state = paddle.load(path)
    paddle.save({k: v for k, v in state.items() if not k.startswith("classifier")}, path)


def prepare(kind, work, monkeypatch):
    if kind is None:
        return
    if kind == "afile":
        write("afile", "a regular file where a directory is expected\n")
        return
    if kind == "locked":
        os.mkdir("locked", 0o555)
        return
    if callable(kind):
        kind(work)
        return
    if kind in ("corrupt-resume", "other-run"):
        assert invoke(*finetune()) == 0
        if kind == "corrupt-resume":
            write("out/checkpoint-last/trainer_state.pkl", "garbage")
    if kind == "no-space":
        import errno

        import tinybert.training.checkpoint as checkpoint

        def full_disk(directory):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(checkpoint, "_fsync_tree", full_disk)


def invoke(script, argv):
    module = importlib.import_module(script)
    try:
        module.main(argv)
    except SystemExit as stop:
        return stop.code
    return 0


@pytest.mark.parametrize("entry", CATALOGUE, ids=[entry[0] for entry in CATALOGUE])
def test_catalogue_entry_gives_one_line_error_and_exit_2(entry, work, monkeypatch, capsys):
    name, kind, (script, argv), fragments = entry
    if name in UNWRITABLE and os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop root from writing, so no directory is unwritable "
                    "(tests/test_paths.py checks the message as an unprivileged user)")
    prepare(kind, work, monkeypatch)
    before = snapshot(work)
    capsys.readouterr()
    code = invoke(script, argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if name not in WRITES_BEFORE_FAILING:
        assert snapshot(work) == before, "a refused run must leave the disk as it was"


def snapshot(root):
    """Every path under ``root`` with its size, modification time and (files) the SHA-256 of its bytes."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            digest = None
            if name in files and os.path.isfile(path) and os.access(path, os.R_OK):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns, digest)
    return found


def test_no_partial_checkpoint_is_left_under_a_final_name_when_the_disk_is_full(work, monkeypatch, capsys):
    prepare("no-space", work, monkeypatch)
    assert invoke(*finetune()) == 2
    assert not [name for name in os.listdir("out") if name.startswith(("best_model", "checkpoint-last"))]


def test_catalogue_matches_the_documented_table():
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "troubleshooting.md")
    with open(page, encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("## Every problem you can fix is one line", 1)[1].split("\n## ", 1)[0]
    ids = [line.split("|")[1].strip().strip("`") for line in section.splitlines()
           if line.startswith("| `")]
    assert ids == [entry[0] for entry in CATALOGUE]
