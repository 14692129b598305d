"""The examples run end to end in their ``--quick`` mode (tiny sizes, CPU)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def test_torchvision_pipeline_example(tmp_path: Path) -> None:
    out = run_example("torchvision_pipeline.py", "--out", str(tmp_path / "grid.png"), cwd=tmp_path)
    assert "inverted 4 slices" in out
    assert "per-sample pipeline in 1 worker(s)" in out
    assert "GPUAugment on cpu: 1 batches" in out
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert grid.dtype == np.uint8 and grid.shape[0] > 4 * 64 and grid.astype(float).std() > 10


@pytest.mark.skipif(importlib.util.find_spec("monai") is None, reason="MONAI is not installed")
def test_monai_workflow_example(tmp_path: Path) -> None:
    out = run_example("monai_workflow.py", cwd=tmp_path)
    assert "(by dataset key): inverted 6 slices" in out
    assert "trained 8 iterations on cpu" in out
    assert "validation MAE in the body" in out
