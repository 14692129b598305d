"""Kill a real training process right after its first checkpoint (SIGKILL), for the resume tests of both
trainers: the checkpoint on disk must be complete and resume to the uninterrupted run's state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
import latent_transforms.training.loop as loop
{setup}

save = loop.save_training_state

def save_then_wait(state, folder):
    path = save(state, folder)
    print("checkpoint", state["cur_nimg"], flush=True)
    time.sleep(60)  # killed here
    return path

loop.save_training_state = save_then_wait
{run}
"""


def kill_after_first_checkpoint(tmp_path: Path, setup: str, run: str) -> tuple[str, Path]:
    """Run ``setup`` then ``run`` (which trains into ``sys.argv[1]``) in a fresh Python process and SIGKILL
    it while it waits right after writing its first checkpoint; returns the line it printed then
    (``"checkpoint <cur_nimg>"``) and its output folder."""
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(Path(__file__).parents[2]), setup=setup, run=run))
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # the same arithmetic as here
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return line, out
