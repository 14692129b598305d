"""Xing et al. 2023's study of generators on a labelled image set (PneumoniaMNIST), end to end, resumable.

Rows: real (no augmentation), StandardDA, SG2Sample (the class-conditional StyleGAN2, ψ = 1), LatentAugment
(the same GAN: walks of the inverted real training images, each keeping its class) and DDPM (a
class-conditional diffusion bundle, DDIM sampling). Columns: fidelity (FID, precision, recall) on
EfficientNet-Lite0 features and on the task network's features against the held-out test split, variety
(the mean image's file size), augmentation and feature-extraction utility (``runs`` seeds each, Wilcoxon
against real) and efficiency (seconds per 1,000 images, peak memory).

Stages, each stored under ``<out>/work`` and reused by a rerun. Every stored result carries the key of what
made it (data, generator fingerprint, settings, library version) and is made again when the key differs, so
another generator, other data or other settings never reuse a result; what depends on a generator lives in
that generator's own folder (``gan-<fingerprint[:12]>/``, ``diffusion-<fingerprint[:12]>/``):

1. the inputs are checked before any work (the data, the GAN bundle, the diffusion bundle);
2. the task network: the ResNet classifier trained on the real training split, seed 0
   (``task-network/``), the feature network of the second fidelity column;
3. LatentAugment's latents: every real training image inverted into the GAN (``gan-<fp>/latents/``);
4. fidelity, variety and efficiency: one ``evaluate_policies`` run per group of rows (``real/``,
   ``gan-<fp>/``, ``diffusion-<fp>/``) and feature network (``fidelity-<network>/``); its ``latentaugment``
   policy walks the inverted training images, each with its own class;
5. utility: each (row, protocol, seed) run of the task classifier (``classifier_utility``), one JSON file
   each (``<group>/utility/<protocol>/<row>-seed<k>.json``);
6. the sample grids of the report (``<group>/grid/<row>.safetensors``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import latent_transforms
from latent_transforms import (
    DiffusionBundle,
    DiffusionConfig,
    EvaluationReport,
    GanBundle,
    GanConfig,
    IntensityWindow,
    Modality,
    evaluate_policies,
    open_splits,
)
from latent_transforms.checks import default_device
from latent_transforms.evaluation import open_real_data, parse_policy, prepare_latents
from latent_transforms.files import atomic_write
from latent_transforms.generative import load_generator
from latent_transforms.tasks import (
    ClassifierOptions,
    ResNetClassifier,
    as_image_labels,
    classifier_features,
    classifier_utility,
    network_from_config,
    train_classifier,
)

from .draws import RememberedDraws
from .latent_augment import InvertedTrainingImages

#: The rows, in the order of the report.
ROWS = ("real", "standard_da", "sg2sample", "latent_augment", "ddpm")
#: Which work folder a row's results live in: no generator, the GAN's, the diffusion model's.
GROUP = {
    "real": "real",
    "standard_da": "real",
    "sg2sample": "gan",
    "latent_augment": "gan",
    "ddpm": "diffusion",
}
#: The two utility protocols of Xing et al. 2023 (the names ``classifier_utility`` takes).
PROTOCOLS = ("augmentation", "feature-extraction")
#: The name of the task network's fidelity column.
TASK_FEATURES = "task-resnet"


class MissingInput(Exception):
    """A piece the study needs is missing or unusable; the message says which command makes it."""


class Stopped(Exception):
    """``--max-minutes`` ran out; everything done so far is on disk (rerun the same command)."""


@dataclass
class StudyConfig:
    """Everything that defines one study (the command line fills it)."""

    data: str = "medmnist:../shared/data/pneumoniamnist.npz"
    gan: str | None = "runs/pneumoniamnist/work/gan/bundle"
    diffusion: str | None = "runs/ddpm32/bundle"
    out: str = "runs/generator-study"
    runs: int = 5
    psi: float = 1.0
    steps: int = 50
    preset: str = "f1"
    n_samples: int = 1000
    k: int = 3
    features: str = "efficientnet-lite0"
    perceptual: str = "efficientnet-lite0"
    inversion_steps: int = 150
    latents: str | None = None
    classifier: ClassifierOptions = field(default_factory=lambda: ClassifierOptions(epochs=10))
    metric: str = "accuracy"
    augment_p: float = 0.5
    fraction: float = 0.5
    finetune_epochs: int = 20
    efficiency_images: int | None = None
    batch_size: int = 16
    seed: int = 0
    device: str | None = None
    max_minutes: float | None = None
    #: which groups of rows to measure (``real``, ``gan``, ``diffusion``); the report needs all three
    groups: tuple[str, ...] = ("real", "gan", "diffusion")
    progress: bool = True
    quick: bool = False
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["classifier"] = self.classifier.to_dict()
        return data


def quick_config() -> StudyConfig:
    """Smoke size for CI: generated toy data, tiny bundles built here, two runs, every row and column."""
    return StudyConfig(
        data="toy",
        gan=None,
        diffusion=None,
        runs=2,
        steps=3,
        n_samples=24,
        features="random",
        perceptual="random",
        inversion_steps=3,
        classifier=ClassifierOptions(epochs=3, batch_size=16, lr=1e-2, depth=10, width=4),
        efficiency_images=4,
        batch_size=8,
        progress=False,
        quick=True,
    )


# -- small persistence helpers -----------------------------------------------------------------------


def canonical(key: Any) -> Any:
    """``key`` as JSON gives it back (tuples as lists, paths as strings), so stored keys compare equal."""
    return json.loads(json.dumps(key, sort_keys=True, default=str))


def digest(key: Any) -> str:
    """A short hash of a key (file names)."""
    return hashlib.sha256(json.dumps(canonical(key), sort_keys=True).encode()).hexdigest()[:12]


def read_stored(path: Path, key: Any) -> dict[str, Any] | None:
    """The JSON record at ``path`` when it was made with exactly ``key``, else ``None``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == canonical(key) else None


def store(path: Path, key: Any, **values: Any) -> None:
    """Write ``{"key": key, **values}`` to ``path`` atomically."""
    atomic_write(path, json.dumps({"key": canonical(key), **values}, indent=2, default=str) + "\n")


# -- inputs ------------------------------------------------------------------------------------------


def make_toy_medmnist(path: Path, *, per_class: tuple[int, int, int] = (48, 16, 16), seed: int = 0) -> Path:
    """A tiny MedMNIST-style file: class 0 a bright disc, class 1 a bright ring, on noise (28 px, uint8)."""
    if path.is_file():  # made by an earlier run (the same seed gives the same file)
        return path
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
            images[i] = np.clip(40 + 150 * shape + rng.normal(0, 15, (28, 28)), 0, 255).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def quick_bundles(folder: Path) -> tuple[Path, Path]:
    """A tiny class-conditional GAN and DDPM (random weights, 16 px, one ``xray`` channel), built once."""
    modalities = (Modality("xray", IntensityWindow(0.0, 255.0)),)
    gan, ddpm = folder / "gan", folder / "diffusion"
    if not (gan / "config.json").is_file():
        config = GanConfig(
            resolution=16,
            modalities=modalities,
            z_dim=16,
            w_dim=16,
            c_dim=2,
            channel_base=256,
            channel_max=32,
        )
        GanBundle.random(config, seed=0).save_pretrained(gan)
    if not (ddpm / "config.json").is_file():
        config = DiffusionConfig(
            resolution=16,
            modalities=modalities,
            c_dim=2,
            channels=(8, 8),
            attention_levels=(False, False),
            num_head_channels=8,
            norm_num_groups=8,
            timesteps=10,
        )
        DiffusionBundle.random(config, seed=0).save_pretrained(ddpm)
    return gan, ddpm


def _looks_missing(source: str) -> bool:
    """A local folder that is not there (a Hub id ``org/name`` and ``builtin:`` names are left to the
    loader)."""
    if source.startswith("builtin:") or Path(source).expanduser().exists():
        return False
    return not (source.count("/") == 1 and not source.startswith((".", "/", "~")))


def gan_help(data: str) -> str:
    return (
        "Make the class-conditional StyleGAN2 with the selective-augmentation example, which trains it by "
        "its recipe into <out>/work/gan/bundle:\n"
        f"  python examples/selective_augmentation/run.py --data {data} --out runs/pneumoniamnist\n"
        "then pass --gan runs/pneumoniamnist/work/gan/bundle (or run this study with --quick on toy data)."
    )


def diffusion_help(data: str, source: str, resolution: int, modalities: list[str]) -> str:
    out = Path(source).parent if Path(source).name == "bundle" else Path(source)
    return (
        "Train a class-conditional DDPM on the same data, resolution and channels:\n"
        f"  latent-transforms train-diffusion --data {data} --out {out} --resolution {resolution} "
        f"--modalities {','.join(modalities)}\n"
        f"its bundle goes to {out / 'bundle'}; then pass --diffusion {out / 'bundle'}."
    )


def check_data(spec: str) -> None:
    """Fail before any work when the data are not there."""
    if spec.startswith("medmnist:"):
        path = Path(spec.split(":", 1)[1]).expanduser()
        if not path.is_file():
            raise MissingInput(
                f"no MedMNIST file at {str(path)!r} (--data {spec}). Fix: --data medmnist:PATH.npz, the "
                "MedMNIST file with train/val/test images and labels (e.g. pneumoniamnist.npz)."
            )
    elif not Path(spec).expanduser().is_dir():
        raise MissingInput(
            f"no data at {spec!r}. Fix: --data medmnist:PATH.npz or a folder with one sub-folder per class."
        )


def load_bundles(
    data: str, gan_source: str, diffusion_source: str, device: torch.device
) -> tuple[GanBundle, DiffusionBundle]:
    """The two generators, checked against each other before any work: a class-conditional StyleGAN2
    with its discriminator, a class-conditional diffusion bundle, the same channels and resolution."""
    if _looks_missing(gan_source):
        raise MissingInput(f"no GAN bundle at {gan_source!r} (--gan).\n" + gan_help(data))
    gan = load_generator(gan_source, device=device)
    if not isinstance(gan, GanBundle):
        raise MissingInput(
            f"--gan {gan_source!r} is a {type(gan).__name__}, not a StyleGAN2 bundle.\n" + gan_help(data)
        )
    if gan.config.c_dim < 2:
        raise MissingInput(
            f"--gan {gan_source!r} is unconditional; the study needs a class-conditional GAN (its samples "
            "keep their class).\n" + gan_help(data)
        )
    if gan.discriminator is None:
        raise MissingInput(
            f"--gan {gan_source!r} has no discriminator, which LatentAugment's fidelity term needs. Fix: the "
            "bundle as its trainer saved it (with discriminator.safetensors).\n" + gan_help(data)
        )
    resolution, modalities = gan.resolution, list(gan.modalities)
    helper = diffusion_help(data, diffusion_source, resolution, modalities)
    if _looks_missing(diffusion_source):
        raise MissingInput(f"no diffusion bundle at {diffusion_source!r} (--diffusion).\n" + helper)
    diffusion = load_generator(diffusion_source, device=device)
    if not isinstance(diffusion, DiffusionBundle):
        raise MissingInput(
            f"--diffusion {diffusion_source!r} is a {type(diffusion).__name__}, not a diffusion bundle.\n"
            + helper
        )
    if diffusion.config.c_dim != gan.config.c_dim:
        raise MissingInput(
            f"the diffusion bundle has {diffusion.config.c_dim} classes, the GAN {gan.config.c_dim}; both "
            "must be class-conditional on the data's classes.\n" + helper
        )
    if (diffusion.resolution, list(diffusion.modalities)) != (resolution, modalities):
        raise MissingInput(
            f"the diffusion bundle makes {list(diffusion.modalities)} at {diffusion.resolution} px, the GAN "
            f"{modalities} at {resolution} px; the rows must be measured on the same images.\n" + helper
        )
    return gan, diffusion


# -- the study -----------------------------------------------------------------------------------------


class Study:
    """Runs the stages of the module docstring for one :class:`StudyConfig`."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.work = self.out / "work"
        self.end = None if cfg.max_minutes is None else time.monotonic() + 60 * cfg.max_minutes
        self.device = default_device(cfg.device)
        self.made: Counter[str] = Counter()
        #: seconds each utility run took when it was made (stored with its score): row -> protocol -> seed
        self.utility_seconds: dict[str, dict[str, dict[int, float]]] = {}
        self.reused: Counter[str] = Counter()
        self.data = cfg.data
        if cfg.data == "toy":
            self.data = "medmnist:" + str(make_toy_medmnist(self.work / "toy.npz"))
        check_data(self.data)
        self.gan_source, self.diffusion_source = cfg.gan, cfg.diffusion
        if cfg.quick and (cfg.gan is None or cfg.diffusion is None):
            gan, ddpm = quick_bundles(self.work / "quick-bundles")
            self.gan_source = self.gan_source or str(gan)
            self.diffusion_source = self.diffusion_source or str(ddpm)
        if self.gan_source is None or self.diffusion_source is None:
            raise MissingInput("the study needs --gan and --diffusion (or --quick).")
        self.gan, self.diffusion = load_bundles(
            self.data, self.gan_source, self.diffusion_source, self.device
        )
        self.modalities = list(self.gan.modalities)
        self.splits = open_splits(self.data, resolution=self.gan.resolution, channel_names=self.modalities)
        self.train_xy = as_image_labels(self.splits["train"])
        self.val_xy = as_image_labels(self.splits["val"])
        self.test_xy = as_image_labels(self.splits["test"])
        self.num_classes = int(self.train_xy[1].max()) + 1
        if self.num_classes != self.gan.config.c_dim:
            raise MissingInput(
                f"the data have {self.num_classes} classes, the generators {self.gan.config.c_dim}: they "
                "were trained on other data.\n" + gan_help(self.data)
            )
        self.base = {
            "data": cfg.data,
            "images": {
                split: len(xy[1])
                for split, xy in zip(("train", "val", "test"), self.splits_xy(), strict=True)
            },
            "resolution": self.gan.resolution,
            "modalities": self.modalities,
            "windows": [m.window.to_dict() for m in self.gan.config.modalities],
            "version": latent_transforms.__version__,
        }
        self._transforms: dict[str, Any] = {}
        self._draws: dict[str, RememberedDraws] = {}
        self._run: tuple[str, int] | None = None
        self._utility: dict[str, Callable[[Any, int], float]] = {}
        self._task: ResNetClassifier | None = None
        self._latent: InvertedTrainingImages | None = None
        self.inversion: dict[str, Any] | None = None

    def splits_xy(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        return self.train_xy, self.val_xy, self.test_xy

    def log(self, message: str) -> None:
        if self.cfg.progress:
            print(message, flush=True)

    def check_time(self) -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise Stopped

    def folder(self, group: str) -> Path:
        """The work folder of a group of rows: ``real/`` (no generator), ``gan-<fp>/`` or ``diffusion-<fp>/``
        (the generator's fingerprint, so another generator never reuses its results)."""
        if group == "real":
            return self.work / "real"
        bundle = self.gan if group == "gan" else self.diffusion
        return self.work / f"{group}-{bundle.fingerprint[:12]}"

    # -- what makes each row ----------------------------------------------------------------------
    def latents_folder(self) -> Path:
        return Path(self.cfg.latents) if self.cfg.latents else self.folder("gan") / "latents"

    def spec(self, row: str) -> str:
        """The ``evaluate`` policy spec of a row."""
        if row == "real":
            return "real"
        if row == "standard_da":
            return "standardda"
        if row == "sg2sample":
            return f"sg2sample:psi={self.cfg.psi}"
        if row == "ddpm":
            return f"diffusion:bundle={self.diffusion_source},steps={self.cfg.steps}"
        return f"latentaugment:preset={self.cfg.preset}"

    def identity(self, row: str) -> dict[str, Any]:
        """What makes a row's images: its policy and the fingerprint of its generator (not its path)."""
        who: dict[str, Any] = {"row": row, "seed": self.cfg.seed}
        if row == "standard_da":
            who["spec"] = "standardda"
        elif row == "sg2sample":
            who.update(spec=f"sg2sample:psi={self.cfg.psi}", gan=self.gan.fingerprint)
        elif row == "ddpm":
            who.update(steps=self.cfg.steps, diffusion=self.diffusion.fingerprint)
        elif row == "latent_augment":
            who.update(
                gan=self.gan.fingerprint,
                preset=self.cfg.preset,
                latents=self.cfg.latents or "work",
                inversion_steps=self.cfg.inversion_steps,
                perceptual=self.cfg.perceptual,
            )
        return who

    def transform(self, row: str) -> Any:
        """The transform ``evaluate`` builds from a row's spec (StandardDA, SG2Sample, DiffusionSample,
        LatentAugment over ``latents_folder()``)."""
        if row not in self._transforms:
            bundle = self.diffusion if row == "ddpm" else self.gan
            cache = self.latents_folder() if row == "latent_augment" else None
            self._transforms[row] = parse_policy(self.spec(row)).build(
                bundle, cache=cache, seed=self.cfg.seed, device=self.device
            )
        return self._transforms[row]

    def policy(self, row: str) -> Any:
        """What the utility protocols get for a row: ``None`` (real), StandardDA's transform (it augments
        each training batch), or a generator whose synthetic set is drawn once per run for both protocols
        (SG2Sample, DiffusionSample, the LatentAugment walks)."""
        if row == "real":
            return None
        if row == "standard_da":
            return self.transform(row)
        if row not in self._draws:
            if row == "latent_augment":
                self._draws[row] = RememberedDraws(self.latent_source(), self.gan.config)
            else:
                bundle = self.diffusion if row == "ddpm" else self.gan
                self._draws[row] = RememberedDraws(self.transform(row), bundle.config)
        return self._draws[row]

    # 2. the task network ----------------------------------------------------------------------------
    def task_key(self) -> dict[str, Any]:
        return {**self.base, "options": self.cfg.classifier.replace(seed=self.cfg.seed).to_dict()}

    def task_network(self) -> ResNetClassifier:
        """The classifier trained on the real training split (the epoch chosen on validation), cached."""
        if self._task is not None:
            return self._task
        key = self.task_key()
        stem = self.work / "task-network" / f"resnet-{digest(key)}"
        weights, record = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        stored = read_stored(record, key)
        if stored is not None and weights.is_file():
            model = network_from_config(stored["network"])
            model.load_state_dict(load_file(str(weights)))
            self.reused["task network"] += 1
        else:
            self.check_time()
            started = time.perf_counter()
            options = self.cfg.classifier.replace(seed=self.cfg.seed)
            result = train_classifier(
                self.train_xy,
                val=self.val_xy,
                options=options,
                device=self.device,
                progress=self.cfg.progress,
                description="task network",
            )
            model = result.model
            weights.parent.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
            store(
                record,
                key,
                network=model.config(),
                best_epoch=result.best_epoch,
                seconds=round(time.perf_counter() - started, 1),
            )
            self.made["task network"] += 1
            self.log(f"task network trained (epoch {result.best_epoch} kept)")
        self._task = model.eval()
        return self._task

    # 3. LatentAugment ------------------------------------------------------------------------------
    def latent_source(self) -> InvertedTrainingImages:
        """LatentAugment's walks of every real training image, inverted once into ``latents_folder()``,
        with a generator's face for the utility protocols and the sample grid."""
        if self._latent is not None:
            return self._latent
        self.check_time()
        real = open_real_data(self.gan, self.data, reference_split=None, n_sources=None)
        self.inversion = prepare_latents(
            self.gan,
            real,
            self.latents_folder(),
            steps=self.cfg.inversion_steps,
            perceptual=self.cfg.perceptual,
            seed=self.cfg.seed,
            device=self.device,
            progress=self.cfg.progress,
        )
        if self.inversion["reused"]:
            self.reused["inversion"] += 1
        else:
            self.made["inversion"] += 1
            self.log(
                f"inverted {self.inversion['inverted']} training images in {self.inversion['seconds']:.0f} s"
            )
        if real.source_labels is None:
            raise MissingInput(f"the training images of {self.data!r} have no classes.")
        self._latent = InvertedTrainingImages(
            self.transform("latent_augment"),
            real.sources,
            real.source_labels,
            keys=real.source_keys if self.inversion["keys"] == "dataset" else None,
            batch_size=self.cfg.batch_size,
            device=self.device,
        )
        return self._latent

    # 4. fidelity, variety, efficiency -----------------------------------------------------------------
    def feature_networks(self) -> tuple[str, str]:
        return self.cfg.features, TASK_FEATURES

    def fidelity(self, group: str) -> dict[str, EvaluationReport]:
        """``evaluate_policies`` on the group's rows against the test split, once per feature network (the
        efficiency is timed in the first)."""
        rows = [r for r in ROWS if GROUP[r] == group]
        reports: dict[str, EvaluationReport] = {}
        for index, net in enumerate(self.feature_networks()):
            folder = self.folder(group) / f"fidelity-{net}"
            key = {
                **self.base,
                "rows": [self.identity(r) for r in rows],
                "features": net if net != TASK_FEATURES else {"task network": digest(self.task_key())},
                "n_samples": self.cfg.n_samples,
                "k": self.cfg.k,
                "batch_size": self.cfg.batch_size,
                "efficiency_images": self.cfg.efficiency_images if index == 0 else 0,
                "reference": "test",
                "device": self.device.type,
                # conditional generators' samples at the train split's class balance (not uniform classes)
                "class_balance": "train",
            }
            if (
                read_stored(folder / "study-key.json", key) is not None
                and (folder / "results.json").is_file()
            ):
                reports[net] = EvaluationReport.load(folder)
                self.reused["fidelity"] += 1
                continue
            if "latent_augment" in rows:
                self.latent_source()  # the training images inverted (evaluate reuses the cache)
            self.check_time()
            extractor: Any = net
            if net == TASK_FEATURES:
                extractor = classifier_features(self.task_network(), name=TASK_FEATURES)
            reports[net] = evaluate_policies(
                [self.spec(r) for r in rows],
                gan=self.diffusion if group == "diffusion" else self.gan,
                data=self.data,
                out=folder,
                n_samples=self.cfg.n_samples,
                n_sources=len(self.train_xy[1]),
                reference_split="test",
                cache=self.latents_folder() if "latent_augment" in rows else None,
                inversion_steps=self.cfg.inversion_steps,
                perceptual=self.cfg.perceptual,
                feature_network=extractor,
                k=self.cfg.k,
                batch_size=self.cfg.batch_size,
                seed=self.cfg.seed,
                device=self.device,
                efficiency_images=self.cfg.efficiency_images if index == 0 else 0,
                command=self.cfg.command,
                progress=self.cfg.progress,
            )
            store(folder / "study-key.json", key)
            self.made["fidelity"] += 1
            self.log(f"fidelity of {', '.join(rows)} on {net} features")
        return reports

    # 5. utility ---------------------------------------------------------------------------------------
    def utility_function(self, protocol: str) -> Callable[[Any, int], float]:
        if protocol not in self._utility:
            self._utility[protocol] = classifier_utility(
                self.train_xy,
                self.test_xy,
                protocol=protocol,
                val=self.val_xy,
                augment_p=self.cfg.augment_p,
                options=self.cfg.classifier,
                metric=self.cfg.metric,
                fraction=self.cfg.fraction,
                finetune_epochs=self.cfg.finetune_epochs,
                device=self.device,
                progress=self.cfg.progress,
            )
        return self._utility[protocol]

    def utility(self, row: str, protocol: str, seed: int) -> float | None:
        """The test score of one run of ``protocol`` for ``row`` (``None``: StandardDA has no
        feature-extraction utility; it makes no images of its own, as in Xing et al.'s Table II)."""
        if protocol == "feature-extraction" and row == "standard_da":
            return None
        path = self.folder(GROUP[row]) / "utility" / protocol / f"{row}-seed{seed}.json"
        key = {
            **self.base,
            "row": self.identity(row),
            "protocol": protocol,
            "seed": seed,
            "metric": self.cfg.metric,
            "classifier": {k: v for k, v in self.cfg.classifier.to_dict().items() if k != "seed"},
            "augment_p": self.cfg.augment_p,
            "fraction": self.cfg.fraction,
            "finetune_epochs": self.cfg.finetune_epochs,
            "device": self.device.type,
        }
        stored = read_stored(path, key)
        seconds = self.utility_seconds.setdefault(row, {}).setdefault(protocol, {})
        if stored is not None:
            self.reused["utility runs"] += 1
            if stored.get("seconds") is not None:
                seconds[seed] = float(stored["seconds"])
            return float(stored["score"])
        self.check_time()
        started = time.perf_counter()
        if self._run != (row, seed):  # the draws kept are another run's
            for draws in self._draws.values():
                draws.forget()
            self._run = (row, seed)
        policy = self.policy(row)
        # classifier_utility reads ``policy.transform``: a v2 transform itself has a ``transform`` method
        wrapped = None if policy is None else SimpleNamespace(transform=policy)
        score = float(self.utility_function(protocol)(wrapped, seed))
        seconds[seed] = round(time.perf_counter() - started, 1)
        store(path, key, score=score, seconds=seconds[seed])
        self.made["utility runs"] += 1
        self.log(f"{row} {protocol} seed {seed}: {self.cfg.metric} {score:.4f}")
        return score

    # 6. the sample grids -----------------------------------------------------------------------------
    def grid(self, row: str, per_class: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` images of each class for the report's figure (real: the first training images of
        the class; StandardDA: those, augmented), cached."""
        path = self.folder(GROUP[row]) / "grid" / f"{row}.safetensors"
        key = canonical({**self.base, "row": self.identity(row), "per_class": per_class})
        if path.is_file():
            with safe_open(str(path), framework="pt") as f:
                same = json.loads((f.metadata() or {}).get("key", "null")) == key
            if same:
                data = load_file(str(path))
                self.reused["grids"] += 1
                return data["images"], data["labels"]
        labels = torch.arange(self.num_classes).repeat_interleave(per_class)
        g = torch.Generator().manual_seed(self.cfg.seed)
        if row in ("real", "standard_da"):
            x, y = self.train_xy
            images = torch.cat([x[y == c][:per_class] for c in range(self.num_classes)])
            labels = torch.cat([y[y == c][:per_class] for c in range(self.num_classes)])
            if row == "standard_da":
                transform = self.transform(row)
                transform.set_random_state(self.cfg.seed)
                images = transform(images)
        elif row == "latent_augment":
            images = self.latent_source().sample(len(labels), labels, seed=self.cfg.seed)
        else:
            with torch.no_grad():
                images = self.transform(row).sample(len(labels), labels, generator=g, value_range="generator")
        images = images.detach().float().cpu().clamp(-1, 1).contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"images": images, "labels": labels.long().contiguous()},
            str(path),
            metadata={"key": json.dumps(key)},
        )
        self.made["grids"] += 1
        return images, labels

    # the whole study ------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether this run measures every group of rows (only then is there a report to write)."""
        return set(self.cfg.groups) >= set(GROUP.values())

    def run(self) -> dict[str, Any]:
        """Every stage of the groups in ``cfg.groups``; returns what the report needs (when complete)."""
        self.task_network()
        groups = [g for g in ("real", "gan", "diffusion") if g in self.cfg.groups]
        rows = [r for r in ROWS if GROUP[r] in groups]
        reports = {group: self.fidelity(group) for group in groups}
        utility: dict[str, dict[str, list[float] | None]] = {row: {} for row in rows}
        for seed in range(self.cfg.runs):
            for row in rows:
                for protocol in PROTOCOLS:
                    score = self.utility(row, protocol, seed)
                    if score is None:
                        utility[row][protocol] = None
                    else:
                        runs = utility[row].setdefault(protocol, [])
                        assert runs is not None
                        runs.append(score)
        grids = {row: self.grid(row) for row in rows}
        return {
            "reports": reports,
            "utility": utility,
            "utility_seconds": {
                row: {protocol: [times[seed] for seed in sorted(times)] for protocol, times in by.items()}
                for row, by in self.utility_seconds.items()
            },
            "grids": grids,
            "work": {"made": dict(self.made), "reused": dict(self.reused)},
        }
