"""The pieces of the Pix2Pix benchmark example: metrics, run plan, policies, training loop, tables."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import latent_transforms as lt
from examples.pix2pix_mri2ct.data import SliceSet, open_benchmark_data
from examples.pix2pix_mri2ct.evaluation import curve_edges, hu_error_sums, score_translation
from examples.pix2pix_mri2ct.figures import interval_minima
from examples.pix2pix_mri2ct.model import Pix2PixOptions
from examples.pix2pix_mri2ct.pipeline import BenchmarkConfig, plan_runs, quick_config
from examples.pix2pix_mri2ct.policies import (
    ABLATIONS,
    ablation_policies,
    build_transform,
    main_policies,
    policy_by_name,
)
from examples.pix2pix_mri2ct.report import mean_std, paper_comparison, table_ii, table_v, write_report
from examples.pix2pix_mri2ct.training import train_pix2pix

WINDOWS = {"mri": lt.IntensityWindow(0, 1900), "ct": lt.IntensityWindow(-1000, 2000, "HU")}


def test_hu_error_sums_match_a_loop_over_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    ct = torch.rand(2, 1, 6, 6, generator=g) * 3000 - 1000
    ct[0, 0, 0, 0] = 2000.0  # the closed last edge
    sct = ct + torch.randn(ct.shape, generator=g) * 100
    edges = (-1000.0, -200.0, 300.0, 2000.0)
    sums, counts = hu_error_sums(sct, ct, edges)
    want_sums, want_counts = [0.0] * 3, [0] * 3
    for x, e in zip(ct.flatten().tolist(), (sct - ct).abs().flatten().tolist(), strict=True):
        k = next(i for i in range(3) if edges[i] <= x < edges[i + 1] or (i == 2 and x == edges[-1]))
        want_sums[k] += e
        want_counts[k] += 1
    assert counts == want_counts and sum(counts) == ct.numel()
    assert sums == pytest.approx(want_sums, rel=1e-5)


def test_curve_edges_follow_the_window() -> None:
    assert curve_edges(WINDOWS["ct"])[1] - curve_edges(WINDOWS["ct"])[0] == pytest.approx(50.0)
    grey = curve_edges(lt.IntensityWindow(0, 255, "uint8"))
    assert grey[0] == 0.0 and grey[-1] == 255.0 and len(grey) == 61


def test_the_mae_is_scored_inside_the_body_only() -> None:
    ct = torch.full((1, 1, 16, 16), -1000.0)
    ct[..., 4:12, 4:12] = 40.0  # the body
    sct = ct.clone()
    sct[..., 4:12, 4:12] += 25.0
    sct[ct < -500] += 400.0  # a large error in the air does not count
    out = score_translation(sct, ct, window=WINDOWS["ct"], body_threshold=-500.0, lpips_net=None)
    assert out["mean"]["mae"] == pytest.approx(25.0)
    assert set(out["per_slice"]) == {"mae", "ssim", "psnr"} and len(out["per_slice"]["psnr"]) == 1
    assert sum(out["hu_curve"]["counts"]) == 256


def test_the_quick_plan_trains_each_policy_and_seed_once() -> None:
    runs = plan_runs(quick_config())
    names = [r.name for r in runs]
    assert len(names) == len(set(names)) == 17
    shared = next(r for r in runs if r.name == "latentaugment-mae-s0")
    assert shared.roles == ("main", "ablation", "sweep")  # Table II, Table V's reference and a sweep point
    assert {r.policy.p for r in runs if "sweep" in r.roles} == {0.1, 0.3, 0.6}


def test_the_full_plan_has_every_table_on_three_seeds() -> None:
    runs = plan_runs(BenchmarkConfig())
    roles = [role for r in runs for role in r.roles]
    assert roles.count("main") == 15 and roles.count("ablation") == 18 and roles.count("sweep") == 10
    assert len(runs) == 15 + 15 + 9


def test_the_policies_are_the_papers() -> None:
    by_name = {p.name: p for p in main_policies()}
    assert {n: p.p for n, p in by_name.items()} == {
        "baseline": 0.0,
        "standard-da": 0.1,
        "sg2-da": 0.3,
        "latentaugment-f1": lt.PRESETS["f1"]["p"],
        "latentaugment-mae": lt.PRESETS["mae"]["p"],
    }
    ablated = {p.name: p for p in ablation_policies()}
    for name, zeroed in ABLATIONS.items():
        assert all(ablated[name].options[w] == 0.0 for w in zeroed)
        assert ablated[name].p == by_name["latentaugment-mae"].p
    da = build_transform(policy_by_name("standard-da"), gan=None, cache=None, seed=0, device="cpu")
    assert isinstance(da, lt.StandardDA) and da.elastic is not None and da.rotate == 3.0
    assert build_transform(by_name["baseline"], gan=None, cache=None, seed=0, device="cpu") is None
    with pytest.raises(lt.ConfigError, match="needs a GAN"):
        build_transform(by_name["sg2-da"], gan=None, cache=None, seed=0, device="cpu")
    with pytest.raises(lt.ConfigError, match="unknown policy"):
        policy_by_name("mixup")


def test_latentaugment_finds_latents_by_dataset_key_and_refuses_missing_ones(tmp_path: Path) -> None:
    from latent_transforms.features.perceptual import perceptual_network
    from latent_transforms.transforms.gpu import apply_to_keys

    cfg = lt.GanConfig(resolution=16, channel_base=256, channel_max=32, z_dim=16, w_dim=16)
    bundle = lt.GanBundle.random(cfg, seed=0)
    w = bundle.generator.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(0)), None)[:, 0]
    real = (
        bundle.generator.synthesis(w[:, None].expand(-1, bundle.generator.num_ws, -1)).clamp(-1, 1).detach()
    )
    cache = lt.LatentCache(tmp_path, fingerprint=bundle.fingerprint)
    cache.put_batch(["p/0000", "p/0001"], w.detach())
    cache.flush()
    stats = lt.DatasetStats.compute(
        [(real, w.detach())], perceptual=perceptual_network("random"), patch_size=8
    )
    stats.save(tmp_path / "stats.safetensors")
    policy = policy_by_name("latentaugment-mae").with_p(1.0)
    t = build_transform(policy, gan=bundle, cache=tmp_path, seed=0, device="cpu")
    assert isinstance(t, lt.LatentAugment) and t.on_missing == "raise" and t.alpha_pix == 3.0
    physical = torch.stack(
        [m.window.denormalize(real[:, i]) for i, m in enumerate(bundle.config.modalities)], 1
    )
    batch = {"mri": physical[:, :1], "ct": physical[:, 1:], "key": ["p/0000", "p/0001"]}
    out = apply_to_keys(t, batch, ["mri", "ct"])
    assert out["ct"].shape == (2, 1, 16, 16) and not torch.equal(out["ct"], batch["ct"])
    with pytest.raises(lt.MissingLatentError):
        apply_to_keys(t, {**batch, "key": ["p/0000", "q/0000"]}, ["mri", "ct"])


class CountingTransform:
    """Shifts every second sample of a batch by 1 (a stand-in for a policy)."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        y = x.clone()
        y[::2] += 1.0
        return y


def _slices(n: int = 12, resolution: int = 32) -> SliceSet:
    return SliceSet(lt.PelvisPhantom(3, n // 3, resolution=resolution), preload=True)


def test_training_augments_each_paired_batch_and_times_it() -> None:
    slices = _slices()
    transform = CountingTransform()
    options = Pix2PixOptions(epochs=2, epochs_decay=1, batch_size=4, ngf=4, ndf=4)
    _, log = train_pix2pix(slices, transform, windows=WINDOWS, options=options, device="cpu", seed=0)
    assert (
        transform.shapes == [(4, 2, 32, 32)] * 6
    )  # MRI and CT stacked as two channels, 3 batches x 2 epochs
    assert len(log.augment_seconds) == 6 and log.augmented == [2] * 6
    assert log.summary()["augmented_fraction"] == 0.5 and len(log.epochs) == 2
    assert log.epochs[0]["lr"] == pytest.approx(2e-4) and log.epochs[1]["lr"] < 2e-4
    _, base = train_pix2pix(slices, None, windows=WINDOWS, options=options, device="cpu", seed=0)
    assert base.augment_seconds == [] and base.summary()["augment_seconds_per_batch"] is None


def test_the_same_seed_trains_the_same_model() -> None:
    slices = _slices()
    options = Pix2PixOptions(epochs=1, epochs_decay=0, batch_size=4, ngf=4, ndf=4)
    a, _ = train_pix2pix(slices, None, windows=WINDOWS, options=options, device="cpu", seed=3)
    b, _ = train_pix2pix(slices, None, windows=WINDOWS, options=options, device="cpu", seed=3)
    c, _ = train_pix2pix(slices, None, windows=WINDOWS, options=options, device="cpu", seed=4)
    wa, wb, wc = (m.generator.state_dict() for m in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_the_splits_are_disjoint_by_patient() -> None:
    data = open_benchmark_data("phantom:patients=10,slices=3", 16)
    patients = {
        name: {k.split("/")[0] for k in s.keys}
        for name, s in [("tr", data.train), ("va", data.val), ("te", data.test)]
    }
    assert not (patients["tr"] & patients["va"]) and not (patients["tr"] & patients["te"])
    assert not (patients["va"] & patients["te"])
    assert len(data.train) + len(data.val) + len(data.test) == 30


def test_interval_minima_pick_the_lowest_point_of_each_range() -> None:
    points = [(0.05, 3.0), (0.15, 2.0), (0.3, 9.0), (0.35, 8.0), (0.95, 1.0), (1.0, 0.5)]
    assert interval_minima(points) == [(0.15, 2.0), (0.35, 8.0), (1.0, 0.5)]


def _fake_result(policy: dict, seed: int, mae: float, seconds: float | None, roles: tuple[str, ...]) -> dict:
    per_slice = {"mae": [mae - 1, mae + 1], "ssim": [0.9, 0.8], "psnr": [30.0, 31.0]}
    return {
        "run": f"{policy['name']}-s{seed}",
        "policy": policy,
        "seed": seed,
        "roles": list(roles),
        "training": {"augment_seconds_per_batch": seconds, "augmented_fraction": 0.25 if seconds else 0.0},
        "test": {
            "mean": {k: sum(v) / 2 for k, v in per_slice.items()},
            "per_slice": per_slice,
            "hu_curve": {"edges": [-1000.0, 0.0, 2000.0], "sums": [10.0 * mae, 0.0], "counts": [10, 0]},
        },
        "val": {"mean": {"mae": mae + 5}},
        "example_index": 0,
    }


def _fake_results() -> list[dict]:
    out = []
    for i, policy in enumerate(main_policies()):
        for seed in (0, 1):
            mae = 50.0 - 2 * i + seed  # seeds 0 and 1: mean 50.5 - 2i, std sqrt(0.5)
            roles = ("main", "ablation") if policy.name == "latentaugment-mae" else ("main",)
            out.append(_fake_result(policy.describe(), seed, mae, None if i == 0 else 0.1 * i, roles))
    for j, policy in enumerate(ablation_policies()):
        for seed in (0, 1):
            out.append(_fake_result(policy.describe(), seed, 44.0 + j, 0.2, ("ablation",)))
    return out


def test_table_ii_is_the_mean_and_std_over_seeds() -> None:
    markdown, numbers = table_ii(_fake_results(), "HU")
    for i, label in enumerate(["Baseline", "Standard DA", "Standard SG2 DA"]):
        assert numbers[label]["mae"]["mean"] == pytest.approx(50.5 - 2 * i)
        assert numbers[label]["mae"]["std"] == pytest.approx(math.sqrt(0.5))
    assert numbers["Standard DA"]["mae_change_vs_baseline"] == pytest.approx(-2 / 50.5)
    assert "| Baseline | - | 0 (1) | 50.50 ± 0.71 |" in markdown
    assert "LPIPS" not in markdown  # not computed, no column
    comparison = paper_comparison(numbers)
    assert "-4.0%" in comparison and "-13.8%" in comparison  # ours (-2 / 50.5) and the paper's F1 row


def test_table_v_reports_each_ablation_against_the_full_loss() -> None:
    markdown, numbers = table_v(_fake_results(), "HU")
    ref = numbers["latentaugment-mae"]["mae"]["mean"]
    assert ref == pytest.approx(50.5 - 8)
    assert numbers["ablate-diversity"]["alphas"] == {
        "alpha_pix": 0.0,
        "alpha_perc": 0.0,
        "alpha_lat": 0.0,
        "alpha_f": 0.01,
    }
    assert numbers["ablate-fidelity"]["mae"]["mean"] == pytest.approx(48.0)
    assert f"({(48.0 - ref) / ref:+.1%})" in markdown and len(markdown.splitlines()) == 2 + 6


def test_mean_std_is_the_sample_standard_deviation() -> None:
    assert mean_std([2.0, 4.0, 6.0]) == (4.0, 2.0) and mean_std([5.0]) == (5.0, 0.0)


def test_the_report_writes_every_table_and_figure(tmp_path: Path) -> None:
    results = _fake_results()
    for r in results:
        if r["policy"]["name"] == "latentaugment-mae" and r["seed"] == 0:
            r["roles"].append("sweep")
    context = {
        "config": quick_config().to_dict(),
        "environment": {
            "device": "cpu",
            "device_name": "cpu",
            "torch": "x",
            "latent_transforms": "y",
            "commit": None,
            "date": "d",
        },
        "data": {
            "data": "phantom",
            "resolution": 16,
            "patients": {},
            "slices_used": {},
            "split_fractions": [],
            "split_seed": 0,
        },
        "units": "HU",
        "body_threshold": -500.0,
        "gan": {"source": "builtin", "fingerprint": "f"},
        "latent_cache": None,
        "lpips": None,
        "lpips_note": "no weights. Fix: place them",
        "planned_runs": [r["run"] for r in results],
        "complete": True,
    }
    example = {
        "mri": torch.rand(1, 8, 8),
        "ct": torch.rand(1, 8, 8),
        "sct": {"Baseline": torch.rand(1, 8, 8)},
        "key": "p/0",
    }
    summary = write_report(tmp_path, results, context, example)
    text = (tmp_path / "report.md").read_text()
    for heading in ("Table II", "Table III", "Table V", "Fig. 4", "Fig. 6", "Table IV"):
        assert f"## {heading}" in text
    for name in ("fig4_mae_vs_hu.png", "fig6_p_sweep.png", "table4_error_maps.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert summary["fig6"]["points"] == [(0.3, 47.0)]  # seed 0 of the MAE preset: 42 + 5
    assert "Friedman" in text and (tmp_path / "results.json").is_file()
    assert "no weights (the fix is in results.json" in text


@pytest.mark.parametrize(
    "module", ["data", "evaluation", "figures", "model", "pipeline", "policies", "report", "training"]
)
def test_the_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"examples.pix2pix_mri2ct.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and (result.attempted > 0 or module == "pipeline")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_and_scoring_run_on_cuda() -> None:
    slices = _slices()
    options = Pix2PixOptions(epochs=1, epochs_decay=0, batch_size=4, ngf=4, ndf=4)
    da = lt.StandardDA(p=0.5, seed=0, device="cuda")
    model, log = train_pix2pix(slices, da, windows=WINDOWS, options=options, device="cuda", seed=0)
    assert next(model.parameters()).is_cuda and len(log.augment_seconds) == 3
    from examples.pix2pix_mri2ct.evaluation import translate

    sct, ct = translate(model, slices, windows=WINDOWS, device="cuda")
    out = score_translation(
        sct, ct, window=WINDOWS["ct"], body_threshold=-500.0, lpips_net=None, device="cuda"
    )
    assert sct.device.type == "cpu" and math.isfinite(out["mean"]["mae"])


def test_a_split_too_large_for_memory_is_spilled_to_disk_once(tmp_path: Path) -> None:
    phantom = lt.PelvisPhantom(2, 3, resolution=16)
    spilled = SliceSet(phantom, preload=False, spill=tmp_path / "train.npy")
    in_memory = SliceSet(phantom, preload=True)
    assert not spilled.preloaded and (tmp_path / "train.keys.json").is_file()
    assert spilled.keys == in_memory.keys
    for i in (0, 5):
        assert torch.equal(spilled[i]["ct"], in_memory[i]["ct"]) and torch.equal(
            spilled[i]["mri"], in_memory[i]["mri"]
        )
    stamp = (tmp_path / "train.npy").stat().st_mtime_ns
    again = SliceSet(phantom, preload=False, spill=tmp_path / "train.npy")  # reused, not rewritten
    assert (tmp_path / "train.npy").stat().st_mtime_ns == stamp and again.keys == spilled.keys
    import pickle

    clone = pickle.loads(pickle.dumps(spilled))  # what a DataLoader worker receives
    assert torch.equal(clone[3]["ct"], in_memory[3]["ct"])
