"""tinybert.paths: the up-front checks of every path flag (the README's Troubleshooting).

Each check must refuse with a message naming the flag and the culprit, and must leave the
disk exactly as it found it. Permissions do not stop root, so when the tests run as root the
unwritable cases run in a forked child that switched to an unprivileged user (skipped, saying
so, where that is impossible).
"""
import os
import subprocess
import tempfile

import pytest

from tinybert.errors import UserError
from tinybert.paths import check_not_replacing, check_readable_file, check_writable_dir, nearest_existing

NOBODY = 65534


def snapshot(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, dirs, files in os.walk(root) for name in dirs + files)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    return tmp_path


def refused(check, *args):
    with pytest.raises(UserError) as err:
        check(*args)
    return str(err.value)


def test_nearest_existing_walks_up_to_what_exists(here):
    assert nearest_existing("adir/new/deeper") == "adir"
    assert nearest_existing("afile/x/y") == "afile"
    assert nearest_existing("nothing/at/all") == "."
    assert nearest_existing(str(here / "adir" / "n")) == str(here / "adir")


@pytest.mark.parametrize("replaced", [False, True])
def test_a_path_under_a_file_names_the_flag_and_the_file(here, replaced):
    before = snapshot(here)
    message = refused(check_writable_dir, "afile/x/y", "--output_dir", replaced)
    assert message.startswith("--output_dir afile/x/y: afile is a file") and "\n" not in message
    assert snapshot(here) == before


def test_a_file_given_as_a_directory_is_refused(here):
    assert "--export_dir afile is a file; give a directory" in refused(check_writable_dir, "afile", "--export_dir")
    assert "--output_dir is empty" in refused(check_writable_dir, "", "--output_dir")


@pytest.mark.parametrize("path", ["adir", "adir/new/deeper", "fresh", "."])
def test_existing_or_creatable_directories_pass_and_nothing_is_created(here, path):
    before = snapshot(here)
    check_writable_dir(path, "--output_dir")
    check_writable_dir(path, "--output_dir", replaced=True)
    assert snapshot(here) == before


def test_an_output_that_is_or_holds_an_input_is_refused_however_it_is_spelled(here):
    os.makedirs("run/best_model")
    os.symlink("run", "link")
    out = lambda value, name="best_model": [("--output_dir", value, os.path.join(value, name))]  # noqa: E731
    line = refused(check_not_replacing, out("run"), [("--teacher_path", "run/best_model")])
    assert line == ("--output_dir run would overwrite --teacher_path run/best_model: this run replaces "
                    "run/best_model; give another --output_dir")
    for spelling in ("./run/", "adir/../run", "link", os.path.abspath("run")):  # one directory, four names
        assert "would overwrite --teacher_path" in refused(check_not_replacing, out(spelling),
                                                            [("--teacher_path", "run/best_model")])
    line = refused(check_not_replacing, out("link"), [("--teacher_path", "run/best_model")])
    assert f"(both are {os.path.realpath('run/best_model')})" in line
    line = refused(check_not_replacing, [("--export_dir", "run", "run")], [("--model_dir", "run/best_model/")])
    assert "this run replaces run, which holds it" in line  # a parent of the input
    assert snapshot(here) == sorted(["afile", "adir", "run", "run/best_model", "link"])


def test_outputs_beside_or_inside_an_input_pass(here):
    os.makedirs("run/best_inter_model")
    check_not_replacing([("--output_dir", "run", "run/best_model"), ("--output_dir", "run", "run/checkpoint-last")],
                        [("--student_model_name_or_path", "run/best_inter_model"), ("--teacher_path", "run"),
                         ("--teacher_path", "bert-base-uncased"), ("--cache_dir", "run/best_modelx")])


def test_readable_file_checks(here):
    check_readable_file("afile", "--input", "give a text file")
    assert refused(check_readable_file, "nope.txt", "--input", "give a text file") == "--input nope.txt: no such file; give a text file"
    assert refused(check_readable_file, "adir", "--input", "give a file").startswith("--input adir is a directory")
    assert refused(check_readable_file, "afile/x.txt", "--input", "give a file").startswith("--input afile/x.txt: afile is a file")
    os.symlink("gone", "dangling")
    assert "dangling link" in refused(check_readable_file, "dangling", "--input", "give a file")


CASES = [(check_writable_dir, ("locked/out", "--output_dir")),
         (check_writable_dir, ("locked", "--output_dir")),
         (check_writable_dir, ("open/inside", "--export_dir", True)),
         (check_writable_dir, ("open", "--export_dir", True)),
         (check_readable_file, ("secret.txt", "--input", "give a file"))]


def outcomes():
    results = []
    for check, args in CASES:
        try:
            check(*args)
            results.append("passed")
        except UserError as err:
            results.append(str(err))
    return results


def outcomes_as(user, work):
    """``outcomes`` in a forked child that switched to ``user`` (the interpreter is already loaded:
    the child needs no access to its files)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
            os.chdir(work)
            os.write(write, "\n".join(outcomes()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        data = handle.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"
    return data.splitlines()


def test_unwritable_and_unreadable_paths_are_refused(monkeypatch):
    """As root every permission check passes (as root's writes would): then run as another user."""
    work = tempfile.mkdtemp(prefix="tinybert-perm-")  # under /tmp: reachable by the other user
    try:
        os.chmod(work, 0o755)
        os.mkdir(os.path.join(work, "locked"), 0o555)
        os.mkdir(os.path.join(work, "open"))
        with open(os.path.join(work, "secret.txt"), "w") as handle:
            handle.write("x")
        os.chmod(os.path.join(work, "secret.txt"), 0o000)
        if os.geteuid() == 0:
            if not hasattr(os, "fork"):
                pytest.skip("running as root without fork: permissions do not apply to root, nothing to check")
            os.chown(os.path.join(work, "open"), NOBODY, NOBODY)
            os.chmod(work, 0o555)  # open/ cannot be replaced by a rename: its parent is read-only
            lines = outcomes_as(NOBODY, work)
        else:
            os.chmod(work, 0o555)
            monkeypatch.chdir(work)
            lines = outcomes()
        denied = "(permission denied); fix its permissions or choose another path"
        assert lines == [
            f"--output_dir locked/out cannot be written: locked is not writable {denied}",
            f"--output_dir locked is not writable {denied}",
            "passed",  # open/ is writable, so open/inside can be created (and later renamed) in it
            f"--export_dir open cannot be written: . is not writable {denied}",  # replacing open/ needs its parent
            f"--input secret.txt is not readable {denied}",
        ]
        assert sorted(os.listdir(work)) == ["locked", "open", "secret.txt"] and not os.listdir(os.path.join(work, "open"))
    finally:
        for folder, _, _ in os.walk(work):
            os.chmod(folder, 0o755)
        subprocess.run(["rm", "-rf", work], check=False)
