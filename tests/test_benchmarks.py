"""The benchmark scripts run (smoke mode: tiny sizes), so they cannot rot between GPU sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generator_forward_benchmark_smoke():
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.generator_forward",
        "--device",
        "cpu",
        "--resolution",
        "16",
        "--channel-base",
        "256",
        "--batch",
        "2",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--no-write",
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    table = [
        line for line in run.stdout.splitlines() if line.startswith("| fp32") or line.startswith("| bf16")
    ]
    assert len(table) == 8  # 2 dtypes x 2 paths x 2 memory formats


def test_training_throughput_benchmark_smoke():
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.training_throughput",
        "--device",
        "cpu",
        "--resolution",
        "16",
        "--channel-base",
        "128",
        "--batch",
        "4",
        "--warmup",
        "1",
        "--repeats",
        "1",
        "--no-write",
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    table = [line for line in run.stdout.splitlines() if line.startswith(("| fp32", "| bf16"))]
    assert len(table) == 2


def test_inversion_benchmark_smoke():
    cmd = [sys.executable, "-m", "benchmarks.inversion", "--device", "cpu", "--resolution", "16"]
    cmd += [
        "--channel-base",
        "256",
        "--z-dim",
        "16",
        "--images",
        "4",
        "--batch",
        "4",
        "--baseline-images",
        "1",
    ]
    cmd += ["--baseline-steps", "5", "--encoder-steps", "3", "--encoder-batch", "4", "--perceptual", "random"]
    cmd += ["--threads", "1", "--no-write"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith(("| baseline", "| batched"))]
    assert len(rows) == 3


def test_transforms_benchmark_smoke():
    cmd = [sys.executable, "-m", "benchmarks.transforms", "--device", "cpu", "--resolution", "16"]
    cmd += ["--channel-base", "256", "--channel-max", "32", "--z-dim", "16", "--batch", "4", "--real", "16"]
    cmd += ["--perceptual", "random", "--warmup", "1", "--repeats", "1", "--threads", "1", "--no-write"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [
        line for line in run.stdout.splitlines() if line.startswith(("| StandardDA", "| SG2", "| Latent"))
    ]
    assert len(rows) == 3


def test_the_suite_runs_every_section_in_smoke_mode():
    cmd = [sys.executable, "-m", "benchmarks.run", "--smoke", "--device", "cpu", "--no-write"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    for section in ("policies", "variants", "walk", "inversion", "training"):
        assert f"== {section} (smoke)" in run.stdout
    assert "== compiled: not in the smoke profile, skipped" in run.stdout
    for figure in (
        "LatentAugment, s per batch",
        "Pix2Pix epoch with LatentAugment",
        "its PSNR against the fp32",
        "One walk step (forward + backward of each part",
        "aten operator calls per step",
    ):
        assert figure in run.stdout
    assert "(H100 reference only)" in run.stdout  # no target is judged on a CPU


def test_the_summary_judges_targets_only_on_the_reference_gpu_run():
    from benchmarks.run import markdown

    meta = {
        "device": "NVIDIA H100",
        "profile": "reference",
        "device_type": "cuda",
        "commit": "c",
        "torch": "t",
    }
    fast = markdown({"latentaugment_s": 0.05, "training_ratio": 2.0}, {"latentaugment_s": 0.1}, meta)
    assert "<= 0.1: met" in fast and "<= 1.5: MISSED" in fast and "(-50%)" in fast
    assert "2.55 (51.0x ours)" in fast
    cpu = markdown({"latentaugment_s": 0.05}, None, {**meta, "device_type": "cpu", "profile": "cpu"})
    assert "met" not in cpu and "x ours" not in cpu


def _dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**__import__("os").environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", "benchmarks/gpu_run.sh", "--dry-run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )


def test_the_gpu_run_plans_every_pending_figure_and_its_commands_parse():
    """``benchmarks/gpu_run.sh --dry-run``: the plan of the one-call GPU run, and every command's arguments
    checked by its own parser (so a renamed flag fails here, not on the GPU machine)."""
    run = _dry_run()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    out = run.stdout
    steps = ["pytest-cuda", "training-throughput", "suite-a", "suite-c", "suite-b", "suite-fastest",
             "evaluate", "tune", "pix2pix"]  # fmt: skip
    order = [out.index(f"  {name} ") for name in steps]
    assert order == sorted(order)  # most important first
    assert out.count("\nok   ") == len(steps) - 1 and "FAIL" not in out  # pytest is not parsed
    readme = (ROOT / "benchmarks" / "results" / "README.md").read_text()
    for pending in (  # the pending GPU commands of the results README, each in the plan
        "benchmarks.training_throughput --device cuda",
        "benchmarks.run --device cuda --sections policies,variants,walk --tag a",
        "benchmarks.run --device cuda --sections compiled --tag b",
        "benchmarks.run --device cuda --sections inversion,training --tag c",
        "benchmarks.tune_phantom --device cuda --max-minutes",
    ):
        assert pending in readme and pending in out, pending
    only = _dry_run("--only", "evaluate,tune")
    assert only.returncode == 0 and "suite-a" not in only.stdout and "  tune " in only.stdout


def test_a_command_whose_arguments_do_not_parse_is_reported():
    from benchmarks.parse_check import check

    ok, said = check(f"{sys.executable} -m benchmarks.training_throughput --device cuda --no-such-flag")
    assert not ok and "unrecognized arguments: --no-such-flag" in said
    assert check(f"{sys.executable} -m benchmarks.training_throughput --device cuda --tag x")[0]


def _toy_medmnist(path, seed: int):
    """Two classes in the MedMNIST layout (28 px; class 1 has a bright square): 16 / 12 / 4 images."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 16), ("val", 12), ("test", 4)):
        labels = np.arange(n) % 2
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[labels == 1, 8:20, 8:20] = 220
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    np.savez(path, **arrays)
    return path


def test_diffusion_recipe_report_from_a_tiny_run(tmp_path):
    import json

    toy = _toy_medmnist(tmp_path / "toy.npz", seed=0)
    run_dir = tmp_path / "run"
    train = [
        sys.executable, "-m", "latent_transforms.cli", "train-diffusion", "--data", f"medmnist:{toy}",
        "--out", str(run_dir), "--resolution", "16", "--channels", "8,16", "--attention", "0,1",
        "--head-channels", "8", "--norm-groups", "8", "--timesteps", "20", "--kimg", "0.032", "--batch", "4",
        "--snap", "0.016", "--metric-kimg", "0.016", "--metric-samples", "8", "--metric-steps", "2",
        "--sample-steps", "2",
        "--metric-network", "random", "--quiet",
    ]  # fmt: skip
    made = subprocess.run(train, cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    out = tmp_path / "report"
    cmd = [
        sys.executable, "-m", "benchmarks.diffusion_recipe", "--run", str(run_dir),
        "--data", f"medmnist:{toy}", "--out", str(out), "--steps", "2", "--feature-network", "random",
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    assert [r["kimg"] for r in result["training"]["curve"]] == [0.016, 0.032]
    scores = result["fidelity"]["diffusion"]
    assert set(scores["per_class"]) == {"0", "1"} and all(c["n"] == 6 for c in scores["per_class"].values())
    assert 0.0 <= scores["precision"] <= 1.0 and 0.0 <= scores["recall"] <= 1.0
    for figure in ("fid-curve.png", "samples.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    assert "| diffusion | all |" in (out / "report.md").read_text()


def _train_tiny_gan(toy, run_dir) -> None:
    """8 images of a 16 px conditional GAN on the toy MedMNIST file, one unscored snapshot."""
    train = [
        sys.executable, "-m", "latent_transforms.cli", "train", "--data", f"medmnist:{toy}",
        "--out", str(run_dir), "--resolution", "16", "--z-dim", "8", "--w-dim", "8", "--channel-base", "128",
        "--channel-max", "16", "--batch", "4", "--kimg", "0.008", "--snap", "0.008", "--metric-kimg", "0",
        "--metric-network", "none", "--workers", "0",
    ]  # fmt: skip
    made = subprocess.run(train, cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]


def test_gan_checkpoints_scores_a_bundle_and_a_training_state_per_class(tmp_path):
    import json

    from latent_transforms.tasks import ResNetClassifier, save_classifier

    toy = _toy_medmnist(tmp_path / "toy.npz", seed=1)
    run_dir = tmp_path / "gan"
    _train_tiny_gan(toy, run_dir)
    out = tmp_path / "report"
    task = save_classifier(ResNetClassifier(1, 2, depth=10, width=4), tmp_path / "task.safetensors")
    cmd = [
        sys.executable, "-m", "benchmarks.gan_checkpoints", "--data", f"medmnist:{toy}", "--out", str(out),
        "--checkpoints", str(run_dir / "bundle"), str(run_dir / "training-state.pt"),
        "--task-network", str(task), "--feature-network", "random", "--draws", "2",
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    bundle, state = result["checkpoints"]
    assert state["kimg"] == 0.008 and result["split"] == "val" and result["draws"] == 2
    assert set(state["scores"]) == {"random", "task-resnet"}  # the saved task network is loaded and used
    scores = state["scores"]["random"]
    assert set(scores["per_class"]) == {"0", "1"} and all(c["n"] == 6 for c in scores["per_class"].values())
    assert all(0.0 <= c["recall"] <= 1.0 for c in scores["per_class"].values())
    # the bundle of an unscored run is the EMA generator of its last state: the same samples, the same scores
    assert bundle["scores"] == state["scores"]
    assert "| 0.008 | random | 1 | 6 |" in (out / "report.md").read_text()
    # listed again with the same settings, a measured checkpoint is kept, not measured again
    again = subprocess.run([*cmd[:-2], "--draws", "2"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("measured before, kept") == 2, again.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["checkpoints"] == result["checkpoints"]
    other = subprocess.run([*cmd[:-2], "--draws", "1"], cwd=ROOT, capture_output=True, text=True)
    assert other.returncode == 0 and "measured before" not in other.stdout  # other settings: measured anew


def test_state_snapshots_turns_saved_training_states_into_kept_snapshot_bundles(tmp_path):
    from latent_transforms import GanBundle
    from latent_transforms.training import snapshot_bundles

    toy = _toy_medmnist(tmp_path / "toy.npz", seed=2)
    run_dir = tmp_path / "gan"
    _train_tiny_gan(toy, run_dir)
    copy = tmp_path / "state-8.pt"
    copy.write_bytes((run_dir / "training-state.pt").read_bytes())
    cmd = [
        sys.executable, "-m", "benchmarks.state_snapshots", "--run", str(run_dir),
        "--data", f"medmnist:{toy}", "--states", str(copy),
    ]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    (kimg, folder), *rest = snapshot_bundles(run_dir)
    assert kimg == 0.008 and not rest
    snapshot, final = GanBundle.from_pretrained(folder), GanBundle.from_pretrained(run_dir / "bundle")
    # the run's last state: the same EMA generator and discriminator as the run's own bundle
    assert snapshot.fingerprint == final.fingerprint and snapshot.discriminator is not None
    assert snapshot.config.training["snapshot_kimg"] == 0.008
    assert snapshot.config.training["data"] == f"medmnist:{toy} (train split)"
