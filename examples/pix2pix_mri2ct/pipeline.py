"""The whole benchmark, stage by stage: GAN -> latent cache -> Pix2Pix runs -> report.

:func:`run_benchmark` does what ``run.py`` does: it

1. gets the GAN: the built-in ``builtin:pelvis-phantom-64`` for the phantom, ``--gan`` when given, or
   one trained on the training patients with ``latent-transforms train`` (resumable) for other data;
2. opens the data at the GAN's resolution and splits it by patient (70 / 20 / 10 %);
3. inverts every training slice once into a latent cache keyed by dataset key, with LatentAugment's
   dataset statistics (what ``latent-transforms invert --split train --key dataset`` makes; ``--cache``
   reuses such a cache);
4. trains one Pix2Pix per (policy, seed): the five policies of Table II on every seed, the ablations of
   Table V and the ``p`` sweep of Fig. 6; each run is scored on the test patients (and its MAE on the
   validation patients) and saved in ``runs/<policy>-s<seed>/`` so an interrupted benchmark resumes
   where it stopped (``--max-minutes`` stops it on purpose between two runs);
5. writes ``report.md``, ``results.json`` and the figures from whatever runs are complete.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import latent_transforms as lt
from latent_transforms.evaluation import DEFAULT_DATA
from latent_transforms.inversion import STATS_NAME, invert_to_cache

from .data import BenchmarkData, open_benchmark_data
from .evaluation import curve_edges, example_slice, lpips_status, score_translation, translate
from .model import Pix2PixOptions
from .policies import BASELINE, Policy, ablation_policies, build_transform, main_policies, sweep_policies
from .report import write_report
from .training import train_pix2pix

#: The GAN the phantom benchmark uses (trained on DEFAULT_DATA's training patients).
PHANTOM_GAN = "builtin:pelvis-phantom-64"
#: The paper's p_aug grid for the sweep, as p = 1 - p_aug: ten steps over [0, 1).
FULL_SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class BenchmarkConfig:
    """Everything a benchmark run depends on (written to ``results.json``).

    Attributes:
        data: ``"phantom"`` (the built-in bundle's phantom), ``"phantom:..."``, a SynthRAD2023-style
            folder or a paired slice folder.
        out: the output folder.
        quick: the CPU smoke size (see :func:`quick_config`).
        gan: a GAN bundle (Hub id, folder or ``builtin:...``); ``None``: the phantom's, or train one.
        device: ``"cuda"``, ``"cpu"``... (``None``: CUDA when available).
        seeds: seeds of the Table II runs (mean ± std over them).
        ablation_seeds: seeds of the Table V runs.
        sweep_policy: the policy whose ``p`` is swept for Fig. 6 (``""``: no sweep).
        sweep_ps: the ``p`` values of the sweep (``1 - p_aug``).
        ablation: run Table V.
        pix2pix: Pix2Pix's options (the paper: 40 epochs, 20 decaying, batch 16, lr 2e-4, λ_L1 100).
        max_slices: at most this many (train, val, test) slices (``None``: all).
        split: patient fractions; split_seed: its seed.
        inversion_steps: projector steps per training slice.
        cache: a latent cache of the training slices by dataset key, made by ``latent-transforms invert
            --gan GAN --data DATA --split train --key dataset --cache CACHE`` with the same GAN, data and
            split: reused as it is when it holds every training slice, else completed (``None``:
            ``out/latents``).
        lpips: LPIPS backbone (``"alex"``) or ``None``.
        gan_kimg: training length when a GAN is trained here; gan_resolution: its resolution.
        max_minutes: stop between runs after this many minutes (rerun the command to resume).
        workers: DataLoader workers for slices that are not preloaded.
        save_models: keep each run's Pix2Pix weights (``pix2pix.safetensors``, ~100 MB per run at 64 px
            with the paper's 64 filters); the report needs only the results.
        progress: progress bars.
        command: the command line, for the report.
    """

    data: str = "phantom"
    out: str = "pix2pix-benchmark"
    quick: bool = False
    gan: str | None = None
    device: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ablation_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    sweep_policy: str = "latentaugment-mae"
    sweep_ps: list[float] = field(default_factory=lambda: list(FULL_SWEEP))
    ablation: bool = True
    pix2pix: Pix2PixOptions = field(default_factory=Pix2PixOptions)
    max_slices: list[int | None] = field(default_factory=lambda: [None, None, None])
    split: list[float] = field(default_factory=lambda: [0.7, 0.2, 0.1])
    split_seed: int = 0
    inversion_steps: int = 200
    cache: str | None = None
    lpips: str | None = "alex"
    gan_kimg: float = 10_000.0
    gan_resolution: int = 256
    max_minutes: float | None = None
    workers: int = 2
    save_models: bool = False
    progress: bool = True
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        out = asdict(self)
        out["pix2pix"] = self.pix2pix.to_dict()
        return out


def quick_config(**overrides: Any) -> BenchmarkConfig:
    """The ``--quick`` size: every stage and every table, small enough for 2 CPU cores in a few minutes.

    32 slices per split, a Pix2Pix with 8 base filters for 2 epochs (1 constant + 1 decaying), 20
    projector steps, two seeds for Table II, one for Table V, ``p`` in (0.1, 0.3, 0.6) for the sweep.
    Its numbers show that the machinery works, not what augmentation does.

    Example:
        >>> cfg = quick_config()
        >>> cfg.pix2pix.epochs, cfg.seeds, cfg.max_slices
        (2, [0, 1], [32, 32, 32])
    """
    base = {
        "quick": True,
        "seeds": [0, 1],
        "ablation_seeds": [0],
        "sweep_ps": [0.1, 0.3, 0.6],
        "pix2pix": Pix2PixOptions(epochs=2, epochs_decay=1, ngf=8, ndf=8),
        "max_slices": [32, 32, 32],
        "inversion_steps": 20,
        "gan_kimg": 2.0,
        "gan_resolution": 32,
        "device": "cpu",
        "workers": 0,
    }
    base.update(overrides)
    return BenchmarkConfig(**base)


@dataclass(frozen=True)
class Run:
    """One Pix2Pix training: a policy, a seed, and which tables it feeds."""

    policy: Policy
    seed: int
    roles: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.policy.name}-s{self.seed}"


def plan_runs(cfg: BenchmarkConfig) -> list[Run]:
    """Every (policy, seed) the benchmark trains, each once, with the tables it feeds.

    A sweep point at the swept policy's own ``p`` and seed is the Table II run itself, and the
    ablation's reference row is ``latentaugment-mae``: neither is trained twice.

    Example:
        >>> runs = plan_runs(quick_config())
        >>> len(runs), runs[0].name, runs[-1].name
        (17, 'baseline-s0', 'sweep-latentaugment-mae-p0.6-s0')
    """
    runs: dict[tuple[str, int], Run] = {}

    def add(policy: Policy, seed: int, role: str) -> None:
        key = (policy.name, seed)
        old = runs.get(key)
        runs[key] = Run(policy, seed, (*old.roles, role) if old else (role,))

    mains = {p.name: p for p in main_policies()}
    for seed in cfg.seeds:
        for policy in mains.values():
            add(policy, seed, "main")
    if cfg.ablation:
        reference = mains["latentaugment-mae"]
        for seed in cfg.ablation_seeds:
            add(reference, seed, "ablation")
            for policy in ablation_policies(reference):
                add(policy, seed, "ablation")
    if cfg.sweep_policy:
        if cfg.sweep_policy not in mains:
            raise lt.ConfigError(f"--sweep-policy {cfg.sweep_policy!r} is not one of {sorted(mains)}.")
        base = mains[cfg.sweep_policy]
        seed = cfg.seeds[0]
        for policy in sweep_policies(base, cfg.sweep_ps):
            if abs(policy.p - base.p) < 1e-9:
                add(base, seed, "sweep")
            else:
                add(policy, seed, "sweep")
    return list(runs.values())


def _git_commit() -> str | None:
    """The checkout's commit; ``LATENT_TRANSFORMS_COMMIT`` when set (a copy without ``.git``, e.g. on a
    remote GPU machine)."""
    if os.environ.get("LATENT_TRANSFORMS_COMMIT"):
        return os.environ["LATENT_TRANSFORMS_COMMIT"]
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        return (out.stdout.strip() or None) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Device, versions and commit, for the report."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {
        "device": str(device),
        "device_name": name,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "latent_transforms": lt.__version__,
        "python": sys.version.split()[0],
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


# -- stage 1: the GAN ---------------------------------------------------------------------------------
def is_phantom(data: str) -> bool:
    return data == "phantom" or data.startswith("phantom:")


def prepare_gan(cfg: BenchmarkConfig) -> str:
    """The GAN bundle's source: ``--gan``, the built-in phantom bundle, or one trained here.

    Training goes through ``latent-transforms train`` (its Python entry point) into ``<out>/gan``,
    with the benchmark's patient split, so the GAN never sees a validation or test patient; rerunning
    resumes it.
    """
    if cfg.gan:
        return cfg.gan
    if is_phantom(cfg.data):
        return PHANTOM_GAN
    from latent_transforms.cli import main as cli

    folder = Path(cfg.out) / "gan"
    bundle = folder / "bundle"
    if (bundle / "config.json").is_file() and (folder / "DONE").is_file():
        return str(bundle)
    argv = [
        "train",
        "--data",
        cfg.data,
        "--out",
        str(folder),
        "--resolution",
        str(cfg.gan_resolution),
        "--kimg",
        str(cfg.gan_kimg),
        "--split",
        ",".join(str(f) for f in cfg.split),
        "--split-seed",
        str(cfg.split_seed),
        "--workers",
        str(cfg.workers),
    ]
    if cfg.device:
        argv += ["--device", cfg.device]
    if cfg.quick:  # a tiny GAN: the pipeline runs, the images are poor
        argv += ["--channel-base", "1024", "--channel-max", "64", "--z-dim", "64", "--w-dim", "64"]
        argv += ["--metric-samples", "64", "--eval-samples", "64", "--snap", "1", "--metric-kimg", "0"]
    print(f"training the GAN: latent-transforms {' '.join(argv)}", flush=True)
    code = cli(argv)
    if code != 0:
        raise lt.ConfigError(f"GAN training failed (exit {code}); see the messages above.")
    (folder / "DONE").write_text("done\n")
    return str(bundle)


# -- stage 3: the latent cache ------------------------------------------------------------------------
def cache_is_complete(bundle: lt.GanBundle, folder: Path, keys: list[str]) -> bool:
    """Whether ``folder`` holds this generator's latent of every key and the statistics."""
    if not (folder / "cache.json").is_file() or not (folder / STATS_NAME).is_file():
        return False
    cache = lt.LatentCache.open(folder)
    try:
        return cache.fingerprint == bundle.fingerprint and all(k in cache for k in keys)
    finally:
        cache.close()


def prepare_cache(
    bundle: lt.GanBundle,
    data: BenchmarkData,
    folder: Path,
    *,
    steps: int,
    device: torch.device,
    progress: bool,
) -> dict[str, Any]:
    """Invert every training slice once (by dataset key) and store LatentAugment's statistics."""
    started = time.perf_counter()
    if cache_is_complete(bundle, folder, data.train.keys):
        return {"folder": str(folder), "reused": True, "seconds": 0.0}
    projector = lt.Projector(
        bundle, steps=steps, perceptual=None, patience=None, device=device, progress=progress, seed=0
    )
    summary = invert_to_cache(bundle, data.train, folder, projector, key="dataset", progress=progress)
    return {
        "folder": str(folder),
        "reused": False,
        "inverted": int(summary.get("inverted", 0)),
        "mean_psnr": summary.get("mean_psnr_this_run"),
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 2),
    }


# -- stage 4: the runs --------------------------------------------------------------------------------
def run_one(
    run: Run,
    *,
    data: BenchmarkData,
    bundle: lt.GanBundle,
    cache: Path,
    cfg: BenchmarkConfig,
    device: torch.device,
    lpips_net: str | None,
    folder: Path,
) -> dict[str, Any]:
    """Train, score and save one run; returns its result (also written to ``folder/result.json``)."""
    windows = {m.name: m.window for m in bundle.config.modalities}
    transform = build_transform(
        run.policy, gan=bundle if run.policy.needs_gan else None, cache=cache, seed=run.seed, device=device
    )
    model, log = train_pix2pix(
        data.train,
        transform,
        windows=windows,
        options=cfg.pix2pix,
        device=device,
        seed=run.seed,
        num_workers=0 if data.train.preloaded else cfg.workers,
        progress=cfg.progress,
        description=run.name,
    )

    def score(split: Any, lpips: str | None) -> tuple[dict[str, Any], torch.Tensor]:
        sct, ct = translate(model, split, windows=windows, device=device)
        edges = curve_edges(windows["ct"])
        kwargs = {"body_threshold": data.body_threshold, "lpips_net": lpips, "device": device, "edges": edges}
        return score_translation(sct, ct, window=windows["ct"], **kwargs), sct

    test, sct = score(data.test, lpips_net)
    val, _ = score(data.val, None)  # the validation MAE of the p sweep
    folder.mkdir(parents=True, exist_ok=True)
    if cfg.save_models:
        model.save(folder / "pix2pix.safetensors")
    index = example_slice(data.test, data.body_threshold)
    from safetensors.torch import save_file

    save_file({"sct": sct[index].contiguous()}, str(folder / "example.safetensors"))
    result = {
        "run": run.name,
        "policy": run.policy.describe(),
        "seed": run.seed,
        "roles": list(run.roles),
        "training": log.summary(),
        "epochs": log.epochs,
        "test": test,
        "val": {"mean": val["mean"]},
        "example_index": index,
        "example_key": data.test.keys[index],
        "transform": repr(transform) if transform is not None else None,
    }
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, folder / "result.json")
    return result


def load_result(folder: Path) -> dict[str, Any] | None:
    """A finished run's result, or ``None``."""
    path = folder / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_benchmark(cfg: BenchmarkConfig) -> dict[str, Any]:
    """Run (or resume) the whole benchmark and write the report; returns ``results.json``'s content."""
    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data_spec = DEFAULT_DATA if cfg.data == "phantom" else cfg.data
    gan_source = prepare_gan(cfg)
    bundle = lt.load_gan(gan_source, device=device)
    data = open_benchmark_data(
        data_spec,
        bundle.resolution,
        fractions=cfg.split,
        split_seed=cfg.split_seed,
        max_slices=cfg.max_slices,
        spill_dir=out / "slices",
    )
    names = bundle.modalities
    if list(names) != ["mri", "ct"]:
        raise lt.ConfigError(f"the benchmark translates MRI to CT; the GAN's channels are {names}.")
    print(
        f"data {data_spec}: {data.info['slices_used']} slices (train/val/test) of "
        f"{data.info['patients']} patients; GAN {gan_source} at {bundle.resolution} px on {device}",
        flush=True,
    )
    lpips_net = cfg.lpips
    lpips_note = lpips_status(lpips_net)
    if lpips_note is not None:
        print(f"LPIPS is not computed: {lpips_note}", flush=True)
        lpips_net = None
    runs = plan_runs(cfg)
    needs_cache = any(r.policy.needs_latents for r in runs)
    cache_folder = Path(cfg.cache) if cfg.cache else out / "latents"
    cache_info = (
        prepare_cache(
            bundle, data, cache_folder, steps=cfg.inversion_steps, device=device, progress=cfg.progress
        )
        if needs_cache
        else None
    )
    if cache_info:
        print(f"latent cache {cache_folder}: {cache_info}", flush=True)
    results: list[dict[str, Any]] = []
    stopped = False
    for i, run in enumerate(runs):
        folder = out / "runs" / run.name
        done = load_result(folder)
        if done is not None:
            done["roles"] = list(run.roles)
            results.append(done)
            continue
        elapsed = (time.perf_counter() - started) / 60
        if cfg.max_minutes is not None and elapsed > cfg.max_minutes:
            stopped = True
            print(
                f"stopping after {elapsed:.1f} min (--max-minutes); rerun the same command to resume",
                flush=True,
            )
            break
        t0 = time.perf_counter()
        result = run_one(
            run,
            data=data,
            bundle=bundle,
            cache=cache_folder,
            cfg=cfg,
            device=device,
            lpips_net=lpips_net,
            folder=folder,
        )
        results.append(result)
        mean = result["test"]["mean"]
        print(
            f"[{i + 1}/{len(runs)}] {run.name}: test MAE {mean['mae']:.2f} {data.units}, "
            f"SSIM {mean['ssim']:.4f}, PSNR {mean['psnr']:.2f} dB, "
            f"val MAE {result['val']['mean']['mae']:.2f} ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    context = {
        "config": cfg.to_dict(),
        "environment": environment(device),
        "data": data.info,
        "units": data.units,
        "body_threshold": data.body_threshold,
        "gan": {
            "source": gan_source,
            "resolution": bundle.resolution,
            "fingerprint": bundle.fingerprint[:16],
        },
        "latent_cache": cache_info,
        "lpips": lpips_net,
        "lpips_note": lpips_note,
        "planned_runs": [r.name for r in runs],
        "complete": not stopped and len(results) == len(runs),
        "baseline": BASELINE,
        "seconds_this_call": round(time.perf_counter() - started, 1),
    }
    example = _example_images(data, bundle, results, out)
    summary = write_report(out, results, context, example)
    print(f"wrote {out / 'report.md'} and {out / 'results.json'}", flush=True)
    return summary


def _example_images(
    data: BenchmarkData, bundle: lt.GanBundle, results: list[dict[str, Any]], out: Path
) -> dict[str, Any] | None:
    """The example test slice (MRI, CT) and each Table II policy's sCT of it (first seed)."""
    from safetensors.torch import load_file

    main = [r for r in results if "main" in r["roles"]]
    if not main:
        return None
    index = main[0]["example_index"]
    mri, ct = data.test.stacked()
    window = {m.name: m.window for m in bundle.config.modalities}["ct"]
    sct: dict[str, torch.Tensor] = {}
    for r in sorted(main, key=lambda r: r["seed"]):
        label = r["policy"]["label"]
        if label not in sct:
            sct[label] = load_file(str(out / "runs" / r["run"] / "example.safetensors"))["sct"]
    return {
        "mri": mri[index],
        "ct": ct[index].clamp(window.low, window.high),
        "sct": sct,
        "key": data.test.keys[index],
        "units": data.units,
    }
