"""``examples/pix2pix_mri2ct/run.py`` end to end: the quick phantom protocol (what CI runs), resuming, and
a folder of 8-bit paired slices with a GAN trained on the spot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import latent_transforms as lt
from examples.pix2pix_mri2ct.policies import main_policies

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "examples" / "pix2pix_mri2ct" / "run.py"
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    run = subprocess.run(
        [sys.executable, str(RUN), *args, "--no-progress"],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, f"run.py failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run


def _fake_squeezenet_hub(root: Path) -> Path:
    """A torch hub folder with randomly initialised SqueezeNet-1.1 weights where LPIPS looks for them."""
    import torchvision

    from latent_transforms.metrics.lpips import LPIPS_BACKBONES

    torch.manual_seed(0)
    (root / "hub" / "checkpoints").mkdir(parents=True)
    state = torchvision.models.squeezenet1_1().state_dict()
    torch.save(state, root / "hub" / "checkpoints" / LPIPS_BACKBONES["squeeze"].filename)
    return root


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float, dict[str, str]]:
    pytest.importorskip("lpips")
    pytest.importorskip("matplotlib")
    work = tmp_path_factory.mktemp("quick")
    env = {"TORCH_HOME": str(_fake_squeezenet_hub(work / "torch_home"))}
    started = time.perf_counter()
    run = _run(["--data", "phantom", "--quick", "--out", "bench", "--lpips", "squeeze"], work, env)
    return work / "bench", run.stdout, time.perf_counter() - started, env


def test_the_quick_protocol_writes_every_table_and_figure(quick) -> None:
    out, stdout, seconds, _ = quick
    report = (out / "report.md").read_text()
    for heading in ("Table II", "Table III", "Table V", "Fig. 4", "Fig. 6", "Table IV"):
        assert f"## {heading}" in report
    assert "Status: **complete**" in report and "LPIPS ↓" in report and "Friedman p =" in report
    for name in ("fig4_mae_vs_hu.png", "fig6_p_sweep.png", "table4_error_maps.png"):
        image = np.asarray(Image.open(out / name).convert("L"), dtype=float)
        assert image.shape[0] > 200 and image.std() > 10, name
    assert "[17/17]" in stdout
    print(f"quick protocol: {seconds:.0f} s")  # the budget is 8 minutes on 2 CPU cores


def test_the_results_hold_per_slice_values_for_the_statistics(quick) -> None:
    out = quick[0]
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and len(results["runs"]) == 17
    assert results["environment"]["torch"] == torch.__version__ and results["lpips"] == "squeeze"
    test_slices = results["data"]["slices_used"]["test"]
    for run in results["runs"]:
        assert set(run["test"]["per_slice"]) == {"mae", "ssim", "psnr", "lpips"}
        assert all(len(v) == test_slices for v in run["test"]["per_slice"].values())
        assert all(np.isfinite(v).all() for v in run["test"]["per_slice"].values())
        timing = run["training"]["augment_seconds_per_batch"]
        assert (timing is None) == (run["policy"]["kind"] == "none")
    table = results["table_ii"]
    assert set(table) == {p.label for p in main_policies()}
    assert all(entry["mae"]["n"] == 2 for entry in table.values())
    la = [r for r in results["runs"] if r["policy"]["kind"] == "latentaugment"]
    assert all(r["training"]["augmented_fraction"] > 0 for r in la)
    assert len(results["fig6"]["points"]) == 3 and len(results["table_v"]) == 6


def test_rerunning_resumes_without_training_again(quick) -> None:
    out, _, first, env = quick
    started = time.perf_counter()
    run = _run(["--data", "phantom", "--quick", "--out", "bench", "--lpips", "squeeze"], out.parent, env)
    assert "[1/17]" not in run.stdout and "'reused': True" in run.stdout
    assert time.perf_counter() - started < first / 3
    assert json.loads((out / "results.json").read_text())["complete"]


def _eight_bit_folder(root: Path, patients: int = 10, slices: int = 3, size: int = 32) -> Path:
    """Phantom slices windowed to 8 bits (MRI [0, 1900], CT [-1000, 2000] HU -> 0..255), as PNG pairs."""
    phantom = lt.PelvisPhantom(patients, slices, resolution=size, seed=5)
    windows = {"mri": (0.0, 1900.0), "ct": (-1000.0, 2000.0)}
    for i in range(len(phantom)):
        item = phantom[i]
        for name, folder in (("mri", "MRI"), ("ct", "CT")):
            low, high = windows[name]
            grey = ((item[name][0].clamp(low, high) - low) / (high - low) * 255).round().to(torch.uint8)
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(grey.numpy()).save(root / folder / f"{item['patient']}_{item['slice']:03d}.png")
    return root


def test_a_folder_of_8_bit_slices_trains_its_own_gan_and_scores_in_grey_levels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    folder = _eight_bit_folder(tmp_path / "slices")
    args = ["--data", str(folder), "--quick", "--out", "bench", "--seeds", "0", "--no-ablation"]
    run = _run([*args, "--sweep-policy", "", "--gan-kimg", "0.05", "--lpips", "none"], tmp_path)
    assert "training the GAN" in run.stdout
    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert results["units"] == "grey levels" and results["body_threshold"] == pytest.approx(42.5)
    assert results["gan"]["source"].endswith("bench/gan/bundle") and results["gan"]["resolution"] == 32
    assert len(results["runs"]) == 5 and results["lpips"] is None
    assert results["fig4"]["Baseline"]["centres"][0] == pytest.approx(255 / 120)  # bins over [0, 255]
    report = (tmp_path / "bench" / "report.md").read_text()
    assert "MAE [grey levels]" in report and "not computed: LPIPS switched off" in report
