"""run_cli in a process started by paddle.distributed.launch: it leaves with os._exit (skipping the
interpreter shutdown where gloo aborted), yet with the right status, all output and no child left."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import atexit, multiprocessing, os, sys, time
    sys.path.insert(0, {root!r})
    from tinybert.errors import UserError, run_cli

    atexit.register(lambda: print("normal shutdown ran"))  # skipped by os._exit

    @run_cli
    def main(outcome):
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), daemon=True)
        child.start()
        print(child.pid)
        sys.stdout.write("last words without a newline")  # must still be flushed
        if outcome == "user_error":
            raise UserError("--flag is wrong; give a right one")
        if outcome == "signal":
            sys.exit(143)
        return "done"

    main(sys.argv[1])
""")


@pytest.mark.parametrize("outcome, status", [("ok", 0), ("user_error", 2), ("signal", 143)])
@pytest.mark.parametrize("world", ["1", "2"])
def test_a_launched_process_leaves_with_its_status_its_output_and_no_child(tmp_path, outcome, status, world):
    script = tmp_path / "cli.py"
    script.write_text(SCRIPT.format(root=ROOT), encoding="utf-8")
    env = dict(os.environ, PADDLE_TRAINERS_NUM=world)
    done = subprocess.run([sys.executable, str(script), outcome], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == status, done.stderr
    pid, rest = done.stdout.split("\n", 1)
    assert rest.startswith("last words without a newline")
    assert ("normal shutdown ran" in rest) == (world == "1")
    if outcome == "user_error":
        assert done.stderr.strip() == "error: --flag is wrong; give a right one"
    with pytest.raises(ProcessLookupError):  # the daemon child was stopped (and reaped) on the way out
        os.kill(int(pid), 0)
