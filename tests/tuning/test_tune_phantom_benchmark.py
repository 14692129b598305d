"""The ready GPU command's script runs (smoke mode: tiny GAN, tiny sizes), so it cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from latent_transforms import GanBundle, GanConfig

ROOT = Path(__file__).resolve().parents[2]


def test_tune_phantom_benchmark_smoke(tmp_path):
    gan = GanBundle.random(GanConfig(resolution=16, channel_base=256, channel_max=32), seed=0)
    folder = gan.save_pretrained(tmp_path / "gan", w_stats_samples=500)
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "benchmarks.tune_phantom", "--device", "cpu", "--gan", str(folder),
        "--data", "phantom:patients=10,slices=4", "--trials", "2", "--n-real", "5", "--n-samples", "5",
        "--n-sources", "4", "--feature-network", "random", "--perceptual", "random", "--inversion-steps", "2",
        "--batch", "4", "--importance-rounds", "3", "--out", str(out), "--no-write",
    ]  # fmt: skip
    run = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = json.loads(run.stdout[run.stdout.index("{\n") :])
    assert printed["complete"] is True and printed["trials_wanted"] == 2
    assert "--reference inverted" in printed["tune_command"]
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["trials_complete"] == 2 and summary["reference"] == "inverted"
