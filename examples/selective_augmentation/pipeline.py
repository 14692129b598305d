"""Selective synthetic augmentation (Xue et al. 2021) on a labelled image set, end to end, resumable.

Stages, each written under ``<out>/work`` so that a rerun skips what is done:

1. data: train / validation / test splits (a MedMNIST file's own, or stratified 70/10/20 of a folder);
2. the task network: the classifier trained on the real training images (the baseline of seed 0), used
   as the feature network of the GAN's checkpoint choice, of :class:`SelectiveFilter` and of FID;
3. the class-conditional StyleGAN2 (``--gan`` given, or trained here with checkpoints scored by FID on
   the task network's features and chosen by the smoothed FID);
4. its fidelity on the held-out test split: FID and per-class precision / recall (k = 3) on
   EfficientNet-Lite0 and on the task network's features;
5. the synthetic sets: ``4·r·N_i`` samples per class filtered by :class:`SelectiveFilter` (and the
   unfiltered, entropy-only and centroid-only variants);
6. the classifier runs of every row, ``runs`` seeds each; the online policies' ``p`` is chosen on the
   validation split first;
7. the report (``report.md``, ``results.json``, figures).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from latent_transforms import GanBundle, GanConfig, LatentAugment, Modality, SelectiveFilter, load_gan
from latent_transforms.data import IntensityWindow, LabelledImages, stratified_split
from latent_transforms.features import feature_network
from latent_transforms.inversion import Projector, invert_to_cache
from latent_transforms.metrics import class_fidelity
from latent_transforms.tasks import (
    ClassifierOptions,
    ResNetClassifier,
    classifier_config_path,
    classifier_features,
    evaluate_classifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from latent_transforms.training import (
    FidScorer,
    Trainer,
    TrainingOptions,
    load_training_state,
    snapshot_bundles,
)

from . import policies

ROW_ORDER = (
    "baseline",
    "standard_da",
    "gan_r0.5",
    "entropy_r0.5",
    "centroid_r0.5",
    "selective_r0.5",
    "selective_r0.8",
    "selective_r1.0",
    "sg2sample",
    "latent_augment",
)
ONLINE = {"standard_da", "sg2sample", "latent_augment"}
#: The GAN checkpoint rules (:attr:`GanRecipe.select`).
SELECTIONS = ("smoothed-fid", "class-recall")
#: Base seed of the validation draws of the ``"class-recall"`` checkpoint choice.
SELECT_SEED = 500
#: Rows whose results do not depend on the GAN (stored once, whichever GAN the experiment uses).
NO_GAN = {"baseline", "standard_da"}
#: Samples are drawn with fresh noise maps, as the GAN was trained (and as StyleGAN2's metrics sample).
NOISE = "random"


@dataclass
class GanRecipe:
    """The class-conditional StyleGAN2 trained when no ``--gan`` is given (the CPU recipe)."""

    channel_base: int = 2048
    channel_max: int = 256
    z_dim: int = 128
    mapping_layers: int = 2
    #: Measured on PneumoniaMNIST: 16.8-17.6 images/s on one thread (OMP_NUM_THREADS=1, the machine's
    #: other core busy), so 140 kimg took 2.6 hours of one core with the FID snapshots. The FID on the
    #: task network's features is flat from 80 kimg on. On EfficientNet-Lite0 features the minority class
    #: (normal) is the weak one: its recall (k = 3) was 0.32-0.39 on the validation split and 0.20 on the
    #: test split. Continued on class-balanced batches (``--gan-class-balance --gan-kimg 300``) the
    #: normal recall on validation rose 0.316 -> 0.54, and ``--gan-select class-recall`` picks the 260-kimg
    #: snapshot (docs/classification.md). The run resumes exactly, so it can be spread over several
    #: sittings (``--max-minutes``).
    kimg: float = 140.0
    batch_size: int = 32
    r1_gamma: float | None = None
    augment: str = "all"
    augment_strength: str = "ada"
    ada_target: float = 0.6
    ada_kimg: float = 100.0
    snapshot_kimg: float = 20.0
    metric_samples: int = 2000
    #: Show both classes about equally often (``TrainingOptions.class_balance``); may be switched on when
    #: a finished run is continued to a larger ``kimg``.
    class_balance: bool = False
    #: An optional cap in minutes of training steps (summed over resumed runs; contention counts too).
    max_minutes: float | None = None
    seed: int = 0
    #: How the checkpoint is chosen: ``"smoothed-fid"`` (Xue et al. 2021: the lowest smoothed FID on the
    #: task network's features, while training) or ``"class-recall"`` (after training, among the kept
    #: snapshots: the highest smallest per-class recall on the validation split, EfficientNet-Lite0
    #: features, k = 3, mean of ``ExperimentConfig.fidelity_draws`` draws; ties go to the lower FID).
    #: The FID weighs classes by their size, so on imbalanced data it can prefer a checkpoint that covers
    #: the minority class worse; the recall rule looks at the worst-covered class. It keeps every snapshot
    #: (``TrainingOptions.keep_snapshots``, about 27 MB each for this recipe).
    select: str = "smoothed-fid"


@dataclass
class ExperimentConfig:
    """Everything that defines one experiment (the command line fills it)."""

    data: str = "medmnist:../shared/data/pneumoniamnist.npz"
    out: str = "runs/selective"
    resolution: int = 32
    channel_names: tuple[str, ...] = ("xray",)
    gan: str | None = None
    recipe: GanRecipe = field(default_factory=GanRecipe)
    classifier: ClassifierOptions = field(default_factory=lambda: ClassifierOptions(epochs=10))
    runs: int = 5
    ratios: tuple[float, ...] = (0.5, 0.8, 1.0)
    mc_samples: int = 5
    p_grid: tuple[float, ...] = (0.1, 0.3)
    rows: tuple[str, ...] = ROW_ORDER
    inversion_steps: int = 100
    perceptual: str = "efficientnet-lite0"
    fidelity_k: int = 3
    #: Independent sample draws averaged in the GAN's test-split fidelity (and its class-recall choice).
    fidelity_draws: int = 3
    device: str = "cpu"
    max_minutes: float | None = None
    progress: bool = True
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["classifier"] = self.classifier.to_dict()
        return data


def quick_config() -> ExperimentConfig:
    """Smoke size for CI: tiny generated data, tiny networks, two runs, every stage and table."""
    return ExperimentConfig(
        data="toy",
        resolution=16,
        recipe=GanRecipe(
            channel_base=256,
            channel_max=32,
            z_dim=16,
            kimg=0.256,
            batch_size=8,
            snapshot_kimg=0.128,
            metric_samples=64,
            max_minutes=None,
        ),
        classifier=ClassifierOptions(epochs=2, batch_size=16, depth=10, width=4),
        runs=2,
        mc_samples=2,
        p_grid=(0.5,),
        inversion_steps=5,
        perceptual="random",
        progress=False,
    )


# -- data --------------------------------------------------------------------------------------------


def make_toy_medmnist(path: Path, *, per_class: tuple[int, int, int] = (48, 16, 16), seed: int = 0) -> Path:
    """A tiny MedMNIST-style file: class 0 a bright disc, class 1 a bright ring, on noise (28 px, uint8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    arrays = {}
    for split, n in zip(("train", "val", "test"), per_class, strict=True):
        labels = np.arange(n) % 2
        images = np.empty((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):
            cy, cx = rng.uniform(10, 18, size=2)
            r = np.hypot(yy - cy, xx - cx)
            shape = r < 6 if label == 0 else (r > 4) & (r < 8)
            image = 40 + 150 * shape + rng.normal(0, 15, (28, 28))
            images[i] = np.clip(image, 0, 255).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def open_splits(cfg: ExperimentConfig) -> dict[str, Any]:
    """``{"train", "val", "test"}`` datasets of ``{"image", "label", "key"}`` items."""
    spec = cfg.data
    if spec == "toy":
        spec = "medmnist:" + str(make_toy_medmnist(Path(cfg.out) / "work" / "toy.npz"))
    if spec.startswith("medmnist:"):
        path = spec.split(":", 1)[1]
        return {
            split: LabelledImages.from_medmnist(
                path, split, resolution=cfg.resolution, channel_names=cfg.channel_names
            )
            for split in ("train", "val", "test")
        }
    whole = LabelledImages.from_folder(spec, resolution=cfg.resolution, channel_names=cfg.channel_names)
    train, val, test = stratified_split(whole, (0.7, 0.1, 0.2), seed=0)
    return {"train": train, "val": val, "test": test}


def _tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from latent_transforms.tasks import as_image_labels

    return as_image_labels(data)


# -- small persistence helpers ------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _load_classifier(path: Path) -> ResNetClassifier | None:
    """The classifier saved at ``path``, or None when it is not there yet."""
    if not (path.is_file() and classifier_config_path(path).is_file()):
        return None
    return load_classifier(path)


class Deadline:
    """Stops the experiment between units of work once ``minutes`` have passed (rerun to resume)."""

    def __init__(self, minutes: float | None) -> None:
        self.end = None if minutes is None else time.monotonic() + 60 * minutes

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() > self.end


class Stopped(Exception):
    """The time budget ran out; everything done so far is on disk."""


# -- the experiment -----------------------------------------------------------------------------------


class Experiment:
    """Runs the stages of the module docstring for one :class:`ExperimentConfig`."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.work = self.out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.deadline = Deadline(cfg.max_minutes)
        self.splits = open_splits(cfg)
        self.train_xy = _tensors(self.splits["train"])
        self.val_xy = _tensors(self.splits["val"])
        self.num_classes = int(self.train_xy[1].max()) + 1
        self.counts = torch.bincount(self.train_xy[1], minlength=self.num_classes).tolist()

    def log(self, message: str) -> None:
        if self.cfg.progress:
            print(message, flush=True)

    def check_time(self) -> None:
        if self.deadline.passed():
            raise Stopped

    def gan_work(self, bundle: GanBundle) -> Path:
        """The folder of everything that depends on the GAN (its scores, samples, latents and rows): one
        per generator, named by its weights' fingerprint, so that a rerun with another ``--gan`` (or a
        retrained GAN) never reuses another generator's results."""
        return self.work / f"gan-{bundle.fingerprint[:12]}"

    def work_for(self, row: str, bundle: GanBundle | None) -> Path:
        """Where ``row``'s runs and ``p`` sweep are stored."""
        if row in NO_GAN:
            return self.work
        assert bundle is not None, f"row {row!r} needs the GAN"
        return self.gan_work(bundle)

    # 2. the task network ----------------------------------------------------------------------------
    def task_network(self) -> ResNetClassifier:
        path = self.work / "rows" / "baseline" / "seed0.safetensors"
        model = _load_classifier(path)
        if model is None:
            self.run_row("baseline", 0)
            model = _load_classifier(path)
        assert model is not None
        return model

    # 3. the GAN --------------------------------------------------------------------------------------
    def gan(self) -> GanBundle:
        if self.cfg.gan is not None:
            return load_gan(self.cfg.gan)
        folder = self.work / "gan"
        r = self.cfg.recipe
        done = _read_json(folder / "done.json") if (folder / "done.json").is_file() else None
        if r.select not in SELECTIONS:
            raise ValueError(f"unknown GAN checkpoint rule {r.select!r}; known: {', '.join(SELECTIONS)}")
        if done is not None and float(done["kimg"]) >= r.kimg - r.batch_size / 1000:
            # finished (a larger --gan-kimg continues it)
            return self.chosen_gan(folder, lambda: GanBundle.from_pretrained(folder / "bundle"))
        train = self.splits["train"]
        window = getattr(getattr(train, "dataset", train), "window", IntensityWindow(0.0, 255.0))
        config = GanConfig(
            resolution=self.cfg.resolution,
            modalities=tuple(Modality(name, window) for name in self.cfg.channel_names),
            z_dim=r.z_dim,
            w_dim=r.z_dim,
            c_dim=self.num_classes,
            mapping_layers=r.mapping_layers,
            channel_base=r.channel_base,
            channel_max=r.channel_max,
        )
        options = TrainingOptions(
            total_kimg=r.kimg,
            batch_size=r.batch_size,
            r1_gamma=r.r1_gamma,
            pl_weight=0.0,
            style_mixing=0.0,
            augment=r.augment,
            augment_strength=r.augment_strength,
            ada_target=r.ada_target,
            ada_kimg=r.ada_kimg,
            snapshot_kimg=r.snapshot_kimg,
            metric_kimg=r.snapshot_kimg,
            metric_samples=r.metric_samples,
            seed=r.seed,
            class_balance=r.class_balance,
            keep_snapshots=r.select == "class-recall",
        )
        from latent_transforms.training import TensorImages

        images = TensorImages(*self.train_xy)
        scorer = FidScorer(
            images,
            classifier_features(self.task_network()),
            list(self.cfg.channel_names),
            n_samples=r.metric_samples,
        )
        trainer = Trainer(
            config,
            images,
            folder,
            options,
            scorer=scorer,
            device=self.cfg.device,
            progress=self.cfg.progress,
            description=f"{self.cfg.data} (train split)",
        )
        state = load_training_state(folder)
        spent = 0.0 if state is None else float(state["elapsed"]) / 60  # training minutes so far
        minutes = None if r.max_minutes is None else max(r.max_minutes - spent, 0.0)
        if self.deadline.end is not None:
            left = (self.deadline.end - time.monotonic()) / 60
            minutes = left if minutes is None else min(minutes, left)
        bundle = trainer.run(max_minutes=minutes)
        finished = trainer.cur_nimg >= math.ceil(r.kimg * 1000 / r.batch_size) * r.batch_size
        out_of_budget = r.max_minutes is not None and trainer.elapsed / 60 >= r.max_minutes - 0.5
        if not (finished or out_of_budget):
            raise Stopped
        _write_json(folder / "done.json", {"kimg": trainer.cur_nimg / 1000, "seconds": trainer.elapsed})
        return self.chosen_gan(folder, lambda: bundle)

    def chosen_gan(self, folder: Path, smoothed_fid: Callable[[], GanBundle]) -> GanBundle:
        """The GAN of the experiment: the trainer's smoothed-FID choice (``smoothed_fid()``, only called
        for that rule), or the kept snapshot that the ``"class-recall"`` rule picks on the validation
        split (scores kept in ``gan/selection.json``)."""
        r = self.cfg.recipe
        if r.select == "smoothed-fid":
            return smoothed_fid()
        snapshots = snapshot_bundles(folder)
        if not snapshots:
            raise ValueError(
                f"{folder} kept no snapshots to choose from; the class-recall rule needs a run trained with "
                "it (or continued with it: snapshots are kept from then on)."
            )
        settings = {
            "rule": r.select,
            "split": "val",
            "features": self.cfg.perceptual,
            "k": self.cfg.fidelity_k,
            "draws": self.cfg.fidelity_draws,
            "seed": SELECT_SEED,
        }
        path = folder / "selection.json"
        stored = _read_json(path) or {}
        scores: dict[str, Any] = stored.get("snapshots", {}) if stored.get("settings") == settings else {}
        net = feature_network(self.cfg.perceptual)
        val_x, val_y = self.val_xy
        for kimg, snapshot in snapshots:
            if snapshot.name in scores:
                continue
            bundle = GanBundle.from_pretrained(snapshot)

            def sample(n: int, label: int, seed: int, bundle: GanBundle = bundle) -> torch.Tensor:
                return bundle.sample(n, labels=label, seed=seed, noise_mode=NOISE)

            self.log(f"scoring the GAN snapshot at {kimg} kimg on the validation split")
            out = class_fidelity(
                sample,
                val_x,
                val_y,
                net,
                k=self.cfg.fidelity_k,
                seed=SELECT_SEED,
                draws=self.cfg.fidelity_draws,
            )
            out.pop("seconds_per_1000")
            scores[snapshot.name] = {"kimg": kimg, **out}
            _write_json(path, {"settings": settings, "snapshots": scores})
            self.check_time()
        present = {s.name for _, s in snapshots}
        candidates = {name: v for name, v in scores.items() if name in present}
        chosen = max(
            candidates,
            key=lambda name: (
                min(c["recall"] for c in candidates[name]["per_class"].values()),
                -candidates[name]["fid"],
            ),
        )
        _write_json(path, {"settings": settings, "snapshots": scores, "chosen": chosen})
        return GanBundle.from_pretrained(folder / "snapshots" / chosen)

    def gan_selection(self) -> dict[str, Any] | None:
        """The ``"class-recall"`` choice's validation scores (``None`` for the smoothed-FID rule)."""
        if self.cfg.gan is not None or self.cfg.recipe.select == "smoothed-fid":
            return None
        return _read_json(self.work / "gan" / "selection.json")

    # 4. fidelity on the test split -------------------------------------------------------------------
    @torch.no_grad()
    def fidelity(self, bundle: GanBundle) -> dict[str, Any]:
        path = self.gan_work(bundle) / "fidelity.json"
        done = _read_json(path)
        if done is not None:
            return done
        test_x, test_y = _tensors(self.splits["test"])
        networks = {
            "efficientnet-lite0": feature_network("efficientnet-lite0")
            if self.cfg.perceptual != "random"
            else feature_network("random"),
            "task-resnet": classifier_features(self.task_network()),
        }

        def sample(n: int, label: int, seed: int) -> torch.Tensor:
            c = F.one_hot(torch.full((n,), label), self.num_classes).float()
            return bundle.sample(n, seed=seed, c=c, noise_mode=NOISE)

        result: dict[str, Any] = {}
        for name, net in networks.items():
            scores = class_fidelity(
                sample, test_x, test_y, net, k=self.cfg.fidelity_k, seed=10_000, draws=self.cfg.fidelity_draws
            )
            scores.pop("seconds_per_1000")
            result[name] = scores
        result["reference"] = "test split"
        _write_json(path, result)
        return result

    # 5. synthetic sets --------------------------------------------------------------------------------
    def sampler(self, bundle: GanBundle, seed: int) -> Callable[[int, int], torch.Tensor]:
        def source(n: int, label: int) -> torch.Tensor:
            out = []
            for start in range(0, n, 256):
                b = min(256, n - start)
                c = F.one_hot(torch.full((b,), label), self.num_classes).float()
                out.append(
                    bundle.sample(b, seed=seed * 7919 + label * 104_729 + start, c=c, noise_mode=NOISE).clamp(
                        -1, 1
                    )
                )
            return torch.cat(out)

        return source

    def synthetic(self, row: str, seed: int, bundle: GanBundle) -> tuple[torch.Tensor, torch.Tensor]:
        """The synthetic training images of a row (``gan_r*``, ``entropy_r*``, ``centroid_r*``,
        ``selective_r*``) for run ``seed``."""
        path = self.gan_work(bundle) / "synthetic" / f"{row}-seed{seed}.safetensors"
        if path.is_file():
            data = load_file(str(path))
            return data["images"], data["labels"]
        kind, ratio = row.rsplit("_r", 1)
        r = float(ratio)
        pool_seed = 1000 + seed
        source = self.sampler(bundle, pool_seed)
        if kind == "gan":
            images, labels = [], []
            for label, n_real in enumerate(self.counts):
                n = round(r * n_real)
                images.append(source(n, label))
                labels.append(torch.full((n,), label))
            x, y = torch.cat(images), torch.cat(labels)
        else:
            result = self.selection(r, seed, source)
            if kind == "selective":
                x, y = result.images, result.labels
            else:
                scores = result.uncertainty if kind == "entropy" else result.distance
                keep = []
                pool_labels = result.pool_labels
                for label, n_real in enumerate(self.counts):
                    members = (pool_labels == label).nonzero().flatten()
                    order = torch.argsort(scores[members], stable=True)
                    keep.append(members[order[: round(r * n_real)]])
                idx = torch.cat(keep)
                x, y = result.pool[idx], pool_labels[idx]
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"images": x.contiguous(), "labels": y.contiguous()}, str(path))
        return x, y

    def selection(self, ratio: float, seed: int, source: Callable[[int, int], torch.Tensor]) -> Any:
        """Algorithm 1 of Xue et al. 2021 on a pool of ``4·r·N_i`` samples per class (kept in memory)."""
        key = (ratio, seed)
        cache = getattr(self, "_selections", {})
        if key in cache:
            return cache[key]
        net = self.task_network()
        filt = SelectiveFilter(net.with_features(), ratio=ratio, mc_samples=self.cfg.mc_samples, seed=seed)
        filt.fit(*self.train_xy)
        sizes = filt.pool_size()
        pool, labels = [], []
        for label, n in sizes.items():
            pool.append(source(n, label))
            labels.append(torch.full((n,), label))
        result = filt.select(torch.cat(pool), torch.cat(labels))
        result.pool = torch.cat(pool)  # type: ignore[attr-defined]
        result.pool_labels = torch.cat(labels)  # type: ignore[attr-defined]
        cache[key] = result
        self._selections = cache
        return result

    # 6. classifier runs --------------------------------------------------------------------------------
    def latent_augment(self, bundle: GanBundle) -> LatentAugment:
        if getattr(self, "_latent_augment", None) is not None:
            return self._latent_augment
        from latent_transforms.features import perceptual_network

        folder = self.gan_work(bundle) / "latents"
        stats = folder / "stats.safetensors"
        if not stats.is_file():
            projector = Projector(
                bundle,
                steps=self.cfg.inversion_steps,
                perceptual=None if self.cfg.perceptual == "random" else self.cfg.perceptual,
                progress=self.cfg.progress,
            )
            invert_to_cache(
                bundle,
                self.splits["train"],
                folder,
                projector,
                key="content",
                perceptual=perceptual_network(self.cfg.perceptual),
                progress=self.cfg.progress,
            )
        self._latent_augment = LatentAugment(
            bundle, folder, p=1.0, value_range="generator", on_missing="raise", seed=0
        )
        return self._latent_augment

    def augment_for(self, row: str, p: float, bundle: GanBundle | None) -> policies.BatchAugment:
        if row == "standard_da":
            return policies.standard_da(p)
        assert bundle is not None
        if row == "sg2sample":
            return policies.sg2sample(bundle, p)
        return policies.latent_augment(self.latent_augment(bundle), bundle, p)

    def pick_p(self, row: str, bundle: GanBundle | None) -> float:
        """The ``p`` of an online policy with the best validation AUC (run seed 0)."""
        sweep = self.work_for(row, bundle) / "sweep"
        path = sweep / f"{row}.json"
        done = _read_json(path) or {}
        for p in self.cfg.p_grid:
            if str(p) in done:
                continue
            self.check_time()
            result = train_classifier(
                self.train_xy,
                val=self.val_xy,
                options=self.cfg.classifier.replace(seed=0),
                augment=self.augment_for(row, p, bundle),
                device=self.cfg.device,
                progress=self.cfg.progress,
                description=f"{row} p={p}",
            )
            done[str(p)] = max(h["val_auc"] for h in result.history)
            # the run of seed 0 at the chosen p is this very training: keep it, so it is not repeated
            model_path = sweep / f"{row}-p{p}.safetensors"
            save_classifier(result.model, model_path)
            _write_json(
                model_path.with_name(model_path.stem + "-run.json"), {"best_epoch": result.best_epoch}
            )
            _write_json(path, done)
        return float(max(self.cfg.p_grid, key=lambda p: (done[str(p)], -p)))

    def run_row(self, row: str, seed: int, bundle: GanBundle | None = None) -> dict[str, Any]:
        path = self.work_for(row, bundle) / "rows" / row / f"seed{seed}.json"
        done = _read_json(path)
        if done is not None:
            return done
        self.check_time()
        started = time.perf_counter()
        extra, augment, p = None, None, None
        if row in ONLINE:
            p = self.pick_p(row, bundle)
            reused = self._sweep_run(row, p, bundle) if seed == 0 else None
            if reused is not None:
                return self._record(path, row, seed, reused[0], reused[1], None, p, started)
            augment = self.augment_for(row, p, bundle)
        elif row != "baseline":
            assert bundle is not None
            extra = self.synthetic(row, seed, bundle)
        result = train_classifier(
            self.train_xy,
            val=self.val_xy,
            extra=extra,
            options=self.cfg.classifier.replace(seed=seed),
            augment=augment,
            device=self.cfg.device,
            progress=self.cfg.progress,
            description=f"{row} seed {seed}",
        )
        if row == "baseline":
            save_classifier(result.model, path.with_suffix(".safetensors"))
        return self._record(path, row, seed, result.model, result.best_epoch, extra, p, started)

    def _sweep_run(self, row: str, p: float, bundle: GanBundle | None) -> tuple[ResNetClassifier, int] | None:
        """The classifier the ``p`` sweep trained for ``row`` at ``p`` (seed 0), if it was kept."""
        model_path = self.work_for(row, bundle) / "sweep" / f"{row}-p{p}.safetensors"
        meta = _read_json(model_path.with_name(model_path.stem + "-run.json"))
        model = _load_classifier(model_path)
        return None if model is None or meta is None else (model, int(meta["best_epoch"]))

    def _record(
        self,
        path: Path,
        row: str,
        seed: int,
        model: ResNetClassifier,
        best_epoch: int,
        extra: tuple[torch.Tensor, torch.Tensor] | None,
        p: float | None,
        started: float,
    ) -> dict[str, Any]:
        """Score ``model`` on the test split and store the row's record."""
        scores = evaluate_classifier(model, self.splits["test"])
        record = {
            "row": row,
            "seed": seed,
            "test": scores,
            "best_epoch": best_epoch,
            "synthetic": 0 if extra is None else len(extra[1]),
            "p": p,
            "seconds": round(time.perf_counter() - started, 1),
        }
        _write_json(path, record)
        self.log(f"{row} seed {seed}: accuracy {scores['accuracy']:.3f}, AUC {scores['auc']:.3f}")
        return record

    def run(self) -> dict[str, Any]:
        """Every stage; returns the collected results (also written by the report)."""
        self.task_network()
        needs_gan = any(row not in ("baseline", "standard_da") for row in self.cfg.rows)
        bundle = self.gan() if needs_gan else None
        fidelity = self.fidelity(bundle) if bundle is not None else None
        rows: dict[str, list[dict[str, Any]]] = {}
        for seed in range(self.cfg.runs):
            for row in self.cfg.rows:
                rows.setdefault(row, []).append(self.run_row(row, seed, bundle))
        return {"fidelity": fidelity, "rows": rows, "bundle": bundle}
