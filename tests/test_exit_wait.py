"""A process that exits as soon as its model is visible waits for the load's ready
callbacks (which start the calibration, inside onnxruntime), instead of tearing the
interpreter down under them: the model is visible before its callbacks have run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys, time
from functions.config.settings import Settings
from functions.loading.holder import ModelHolder
from functions.loading.stores import Stores
import functions.service  # its exit handler waits for loads, then calibrations

done = sys.argv[1]
holder = ModelHolder(Settings.from_env(), Stores())
def slow_ready():  # stands for the ready callbacks' work (plan, tokenizer, calibration)
    time.sleep(1.5)
    open(done, "w").write("callbacks ran to the end")
holder.on_ready(slow_ready)
holder.start()
while holder.model is None:
    time.sleep(0.005)
print("exiting with the model visible", flush=True)
"""


def test_exit_waits_for_the_ready_callbacks_of_a_load(tmp_path: Path) -> None:
    done = tmp_path / "done"
    out = subprocess.run([sys.executable, "-c", PROBE, str(done)], cwd=ROOT, timeout=60,
                         capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "MODEL_PATH": str(ROOT / "models")})
    assert out.returncode == 0, out.stderr
    assert "exiting with the model visible" in out.stdout
    assert done.read_text() == "callbacks ran to the end", out.stderr
