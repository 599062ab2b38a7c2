"""Fork handling: a worker forked after onnxruntime was imported exits with the status it
asked for, and an arbiter that expected a fork loads the model itself when none comes.

gunicorn imports main.py in the arbiter and forks workers; onnxruntime's native teardown
hangs in such a child unless functions.loading.fork_exit steps in (installed by the model loader).
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import os, sys, time
import main
main._rt.holder._done.wait(30)
statuses = []
for code in (0, 3):
    pid = os.fork()
    if pid == 0:
        sys.exit(code)
    deadline = time.monotonic() + 20  # a hang, not a speed limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            statuses.append(os.waitstatus_to_exitcode(status))
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        statuses.append("hung")
print(statuses)
"""


def test_forked_children_exit_with_their_status(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False,
                         env={"MODEL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[0, 3]", out.stderr


ARBITER = """
import sys, time
import functions_framework._cli  # as when functions-framework's command line imports main.py
import main
holder = main._rt.holder
holder._done.wait(30)
print(holder._expect_fork, holder.model is not None)
"""


def test_arbiter_that_never_forks_still_loads(tmp_path: Path) -> None:
    env = {"MODEL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "FORK_WAIT_SECONDS": "0.2"}
    out = subprocess.run([sys.executable, "-c", ARBITER], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False, env=env)
    assert out.stdout.split() == ["True", "True"], out.stderr
    assert "no worker forked within 0.2s" in out.stderr
    debug = subprocess.run([sys.executable, "-c", ARBITER], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, check=False, env={**env, "DEBUG": "1"})
    assert debug.stdout.split() == ["False", "True"], debug.stderr
