"""Training a CycleGAN translator (Zhu et al. 2017), or DUIIT (Yang & Xie): resumable, seeded.

One step on a batch of source images ``y`` (with labels ``r_s``) and target images ``x`` (labels
``r_t``):

1. the generators and, for DUIIT, the predictor descend together on
   ``L_trans + λ · L_pred`` (Yang & Xie eq. 3) with the discriminators frozen:
   ``L_trans = lsgan(D_t(G(y)), 1) + lsgan(D_s(F(x)), 1) + λ_cyc (|F(G(y)) − y| + |G(F(x)) − x|)``
   and ``L_pred = l(P(G(y)), r_s) + l(P(x), r_t)``, so the prediction loss reaches ``G`` through the
   translated images (one predictor pass over both halves, so its batch statistics see the mix);
2. the discriminators descend on ``½ (lsgan(D(real), 1) + lsgan(D(pool(fake)), 0))``, the generated images
   drawn through the image pools.

The learning rates are set per epoch (constant, then a linear decay to zero). The training state
(networks, optimisers, pools, position, history) is written atomically to ``<out>/training-state.pt``
every ``checkpoint_every`` steps and at the end of every epoch, and read back with
``weights_only=True``; a run killed at any moment and started again with the same arguments ends with the
same weights as an uninterrupted one. The finished translator is written to ``<out>/bundle``.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from latent_transforms.checks import default_device
from latent_transforms.errors import ConfigError
from latent_transforms.files import atomic_write, replace_folder
from latent_transforms.translation.bundle import TranslatorBundle, build_generators
from latent_transforms.translation.config import TranslatorConfig
from latent_transforms.translation.data import UnpairedImages
from latent_transforms.translation.losses import (
    cycle_loss,
    discriminator_loss,
    generator_loss,
    joint_objective,
    prediction_loss,
)
from latent_transforms.translation.networks import PatchDiscriminator, build_predictor
from latent_transforms.translation.options import TranslatorOptions
from latent_transforms.translation.pool import ImagePool

__all__ = ["STATE_NAME", "TranslatorTrainer", "train_translator"]

STATE_NAME = "training-state.pt"
BUNDLE_FOLDER = "bundle"


def _as_set(data: UnpairedImages | torch.Tensor | tuple[Any, ...], what: str) -> tuple[torch.Tensor, Any]:
    if isinstance(data, UnpairedImages):
        return data.images, data.labels
    if isinstance(data, torch.Tensor):
        return data.float(), None
    if isinstance(data, tuple) and len(data) == 2:
        return torch.as_tensor(data[0]).float(), None if data[1] is None else torch.as_tensor(data[1])
    raise ConfigError(
        f"{what} must be UnpairedImages, an image tensor [N, C, R, R] in [-1, 1] or (images, labels); got "
        f"{type(data).__name__}."
    )


def _check_modalities(data: Any, config: TranslatorConfig, side: str) -> None:
    """Images that name their modalities (:class:`UnpairedImages`) must be the config's, windows included:
    the bundle maps its outputs back to physical units with the config's windows."""
    if not isinstance(data, UnpairedImages):
        return
    given = tuple((m.name, m.window.low, m.window.high) for m in data.modalities)
    wanted = tuple((m.name, m.window.low, m.window.high) for m in getattr(config, side))
    if given != wanted:
        raise ConfigError(
            f"the {side} images are {given} (name, window low, high) but the config's {side} modalities are "
            f"{wanted}. Fix: TranslatorConfig({side}=images.modalities, ...)."
        )


class TranslatorTrainer:
    """Trains the translator of ``config`` on unpaired ``source`` and ``target`` sets into ``out``.

    Args:
        config: the architecture (``task`` set: DUIIT with its predictor; ``None``: plain CycleGAN).
            For regression, ``label_mean`` / ``label_std`` are set here from the training labels.
        source: source-modality images in ``[-1, 1]`` (:class:`UnpairedImages`, a tensor, or
            ``(images, labels)``); DUIIT needs their labels.
        target: target-modality images (DUIIT needs their labels too).
        out: the run's folder (``training-state.pt``, ``history.json``, ``bundle/``).
        options: :class:`TranslatorOptions`.
        device: where to train (default: CUDA when available).
        resume: continue from ``out``'s training state when there is one (it must have been made with
            the same config, options and data sizes); ``False`` refuses a folder that holds one.
        progress: a tqdm bar over the steps.

    Example:
        >>> import tempfile
        >>> cfg = TranslatorConfig(resolution=16, width=4, blocks=1, task="regression", predictor_depth=10,
        ...                        predictor_width=4)
        >>> y, x = torch.rand(6, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
        >>> with tempfile.TemporaryDirectory() as out:
        ...     trainer = TranslatorTrainer(cfg, (y, torch.rand(6)), (x, torch.rand(4)), out,
        ...                                 TranslatorOptions(epochs=1, batch_size=2), device="cpu",
        ...                                 progress=False)
        ...     bundle = trainer.run()
        ...     trainer.finished, trainer.step, sorted(trainer.history[-1])
        (True, 3, ['cycle', 'd_loss', 'epoch', 'g_adv', 'prediction'])
    """

    def __init__(
        self,
        config: TranslatorConfig,
        source: UnpairedImages | torch.Tensor | tuple[Any, ...],
        target: UnpairedImages | torch.Tensor | tuple[Any, ...],
        out: str | Path,
        options: TranslatorOptions | None = None,
        *,
        device: torch.device | str | None = None,
        resume: bool = True,
        progress: bool = True,
    ) -> None:
        self.options = options or TranslatorOptions()
        self.device = default_device(device)
        self.out = Path(out)
        self.progress = progress
        self.source_images, self.source_labels = _as_set(source, "source")
        self.target_images, self.target_labels = _as_set(target, "target")
        for data, side in ((source, "source"), (target, "target")):
            _check_modalities(data, config, side)
        self._check_data(config)
        self.config = self._with_label_scale(config)
        if self.config.task is not None:
            self.prediction_labels = (self._scaled(self.source_labels), self._scaled(self.target_labels))
        o = self.options
        self.epoch_size = o.epoch_size or max(len(self.source_images), len(self.target_images))
        self.steps_per_epoch = math.ceil(self.epoch_size / o.batch_size)
        self.total_steps = self.steps_per_epoch * o.epochs
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(o.seed)
            self.G, self.F = build_generators(self.config)
            self.D_target = PatchDiscriminator(
                self.config.target_channels, width=self.config.disc_width, layers=self.config.disc_layers or 1
            )
            self.D_source = PatchDiscriminator(
                self.config.source_channels, width=self.config.disc_width, layers=self.config.disc_layers or 1
            )
            self.P = build_predictor(self.config)
        for net in self._networks().values():
            net.to(self.device)
        betas = (o.beta1, o.beta2)
        self.opt_g = torch.optim.Adam(itertools.chain(self.G.parameters(), self.F.parameters()), o.lr, betas)
        self.opt_d = torch.optim.Adam(
            itertools.chain(self.D_target.parameters(), self.D_source.parameters()), o.lr, betas
        )
        self.opt_p = (
            torch.optim.Adam(self.P.parameters(), o.predictor_lr, betas) if self.P is not None else None
        )
        self.pool_target = ImagePool(o.pool_size, seed=o.seed + 1)
        self.pool_source = ImagePool(o.pool_size, seed=o.seed + 2)
        self.step = 0
        self.elapsed = 0.0
        self.history: list[dict[str, float]] = []
        self._sums: dict[str, float] = {}
        if resume:
            self._load()
        elif (self.out / STATE_NAME).is_file():
            raise ConfigError(f"{self.out} holds a training state; pass resume=True or another folder.")

    # -- setup ------------------------------------------------------------------------------------
    def _check_data(self, config: TranslatorConfig) -> None:
        for images, side, channels in (
            (self.source_images, "source", config.source_channels),
            (self.target_images, "target", config.target_channels),
        ):
            if images.ndim != 4 or images.shape[1] != channels or images.shape[-1] != config.resolution:
                raise ConfigError(
                    f"{side} images must be [N, {channels}, {config.resolution}, {config.resolution}] (the "
                    f"config's {side} channels and resolution); got {tuple(images.shape)}."
                )
            if len(images) == 0:
                raise ConfigError(f"the {side} set is empty.")
        if config.task is not None and (self.source_labels is None or self.target_labels is None):
            raise ConfigError(
                f"a {config.task} translator (DUIIT) needs labels for both sets: the predictor learns from "
                "translated source images with their labels and from real target images with theirs."
            )

    def _with_label_scale(self, config: TranslatorConfig) -> TranslatorConfig:
        if config.task != "regression":
            return config
        assert self.source_labels is not None and self.target_labels is not None
        labels = torch.cat([self.source_labels.float().reshape(-1), self.target_labels.float().reshape(-1)])
        std = float(labels.std()) if len(labels) > 1 else 1.0
        return config.replace(label_mean=float(labels.mean()), label_std=std if std > 0 else 1.0)

    def _scaled(self, labels: torch.Tensor) -> torch.Tensor:
        if self.config.task == "classification":
            return labels.long()
        return (labels.float() - self.config.label_mean) / self.config.label_std

    def _networks(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {
            "G": self.G,
            "F": self.F,
            "D_target": self.D_target,
            "D_source": self.D_source,
        }
        if self.P is not None:
            nets["P"] = self.P
        return nets

    # -- the training state -----------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "config": self.config.replace(training={}).to_dict(),
            "options": self.options.to_dict(),
            "sizes": [len(self.source_images), len(self.target_images)],
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors, numbers, strings, lists and dicts only)."""
        state: dict[str, Any] = {
            "identity": self._identity(),
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "sums": self._sums,
            "networks": {k: v.state_dict() for k, v in self._networks().items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "pool_target": self.pool_target.state_dict(),
            "pool_source": self.pool_source.state_dict(),
        }
        if self.opt_p is not None:
            state["opt_p"] = self.opt_p.state_dict()
        return state

    def save(self) -> Path:
        """Write the training state atomically; returns its path."""
        self.out.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        path = atomic_write(self.out / STATE_NAME, lambda tmp: torch.save(state, tmp))
        import json

        atomic_write(self.out / "history.json", json.dumps(self.history, indent=1) + "\n")
        return path

    def _load(self) -> None:
        path = self.out / STATE_NAME
        if not path.is_file():
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConfigError(f"{path} is not a readable translator training state ({exc}).") from exc
        if state.get("identity") != self._identity():
            raise ConfigError(
                f"{path} was written by a run with another config, options or data sizes; use another "
                "output folder or the same arguments."
            )
        for name, net in self._networks().items():
            net.load_state_dict(state["networks"][name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.opt_p is not None:
            self.opt_p.load_state_dict(state["opt_p"])
        self.pool_target.load_state_dict(state["pool_target"], self.device)
        self.pool_source.load_state_dict(state["pool_source"], self.device)
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.history = list(state["history"])
        self._sums = dict(state["sums"])

    # -- data order -------------------------------------------------------------------------------
    def _order(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The source and target indices of ``epoch``: seeded permutations, repeated to ``epoch_size``."""
        g = torch.Generator().manual_seed(self.options.seed * 1_000_003 + epoch)

        def cover(n: int) -> torch.Tensor:
            reps = math.ceil(self.epoch_size / n)
            return torch.cat([torch.randperm(n, generator=g) for _ in range(reps)])[: self.epoch_size]

        return cover(len(self.source_images)), cover(len(self.target_images))

    # -- one step ---------------------------------------------------------------------------------
    def train_step(
        self, y: torch.Tensor, x: torch.Tensor, r_s: Any = None, r_t: Any = None
    ) -> dict[str, float]:
        """One generator (and predictor) update and one discriminator update; returns the losses."""
        o = self.options
        for d in (self.D_target, self.D_source):
            d.requires_grad_(False)
        fake_x, fake_y = self.G(y), self.F(x)
        adv = generator_loss(self.D_target(fake_x)) + generator_loss(self.D_source(fake_y))
        cyc = cycle_loss(y, self.F(fake_x), x, self.G(fake_y), o.cycle_weight)
        trans = adv + cyc
        if o.identity_weight > 0 and self.config.source_channels == self.config.target_channels:
            idt = (self.G(x) - x).abs().mean() + (self.F(y) - y).abs().mean()
            trans = trans + o.identity_weight * o.cycle_weight * idt
        pred = None
        if self.P is not None:
            assert self.config.task is not None
            outputs = self.P(torch.cat([fake_x, x]))
            pred = prediction_loss(self.config.task, outputs[: len(y)], r_s, outputs[len(y) :], r_t)
        total = joint_objective(trans, pred, o.prediction_weight)
        self.opt_g.zero_grad(set_to_none=True)
        if self.opt_p is not None:
            self.opt_p.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.opt_p is not None:
            self.opt_p.step()
        for d in (self.D_target, self.D_source):
            d.requires_grad_(True)
        shown_x, shown_y = self.pool_target.query(fake_x), self.pool_source.query(fake_y)
        d_loss = discriminator_loss(self.D_target(x), self.D_target(shown_x)) + discriminator_loss(
            self.D_source(y), self.D_source(shown_y)
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        losses = {
            "g_adv": float(adv.detach()),
            "cycle": float(cyc.detach()),
            "d_loss": float(d_loss.detach()),
        }
        if pred is not None:
            losses["prediction"] = float(pred.detach())
        return losses

    def _set_lr(self, epoch: int) -> None:
        factor = self.options.lr_factor(epoch)
        for opt, base in ((self.opt_g, self.options.lr), (self.opt_d, self.options.lr)):
            for group in opt.param_groups:
                group["lr"] = base * factor
        if self.opt_p is not None:
            for group in self.opt_p.param_groups:
                group["lr"] = self.options.predictor_lr * factor

    # -- the loop ---------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Whether every step has run."""
        return self.step >= self.total_steps

    def run(
        self, *, max_minutes: float | None = None, stop_after_steps: int | None = None
    ) -> TranslatorBundle:
        """Train to the end (or until ``max_minutes`` of this call, or ``stop_after_steps`` steps of it,
        have passed; the state is saved then, and a new trainer on ``out`` resumes). Returns the
        translator as it stands; when finished it is also written to ``<out>/bundle``."""
        start, done_here = time.monotonic(), 0
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc="translator",
            disable=not self.progress,
            leave=False,
        )
        for net in self._networks().values():
            net.train()
        last_saved = self.step
        while not self.finished:
            epoch, index = divmod(self.step, self.steps_per_epoch)
            self._set_lr(epoch)
            order_s, order_t = self._order(epoch)
            batch = slice(index * self.options.batch_size, (index + 1) * self.options.batch_size)
            idx_s, idx_t = order_s[batch], order_t[batch]
            y = self.source_images[idx_s].to(self.device)
            x = self.target_images[idx_t].to(self.device)
            r_s = r_t = None
            if self.P is not None:
                r_s = self.prediction_labels[0][idx_s].to(self.device)
                r_t = self.prediction_labels[1][idx_t].to(self.device)
            t0 = time.perf_counter()
            losses = self.train_step(y, x, r_s, r_t)
            self.elapsed += time.perf_counter() - t0
            for k, v in losses.items():
                self._sums[k] = self._sums.get(k, 0.0) + v
            self._sums["n"] = self._sums.get("n", 0.0) + 1
            self.step += 1
            done_here += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            if self.step % self.steps_per_epoch == 0:
                n = self._sums.pop("n")
                self.history.append({"epoch": epoch + 1, **{k: v / n for k, v in self._sums.items()}})
                self._sums = {}
            at_epoch_end = self.step % self.steps_per_epoch == 0
            if at_epoch_end or self.step - last_saved >= self.options.checkpoint_every:
                self.save()
                last_saved = self.step
            out_of_time = max_minutes is not None and time.monotonic() - start > 60 * max_minutes
            if out_of_time or (stop_after_steps is not None and done_here >= stop_after_steps):
                break
        bar.close()
        if self.step != last_saved:
            self.save()
        bundle = self.bundle()
        if self.finished:
            self.write_bundle(bundle)
        return bundle

    def bundle(self) -> TranslatorBundle:
        """The translator as it stands (copies of the networks, frozen, on the CPU)."""
        import copy

        summary = {
            "name": self.config.training.get("name")
            or f"{'DUIIT' if self.config.task else 'CycleGAN'} {'+'.join(self.config.source_names)} to "
            f"{'+'.join(self.config.target_names)}",
            **{k: v for k, v in self.config.training.items() if k != "name"},
            "method": "DUIIT (Yang & Xie)" if self.config.task else "CycleGAN (Zhu et al. 2017)",
            "epochs": self.options.epochs,
            "steps": self.step,
            "batch_size": self.options.batch_size,
            "source_images": len(self.source_images),
            "target_images": len(self.target_images),
            "cycle_weight": self.options.cycle_weight,
            "seconds": round(self.elapsed, 1),
            "seed": self.options.seed,
        }
        if self.config.task:
            summary["prediction_weight"] = self.options.prediction_weight
        config = self.config.replace(training=summary)
        nets = [copy.deepcopy(n).cpu() for n in (self.G, self.F)]
        predictor = copy.deepcopy(self.P).cpu() if self.P is not None else None
        return TranslatorBundle(config, nets[0], nets[1], predictor)

    def write_bundle(self, bundle: TranslatorBundle) -> Path:
        """Write ``bundle`` to ``<out>/bundle`` (staged, then moved into place)."""
        staging = self.out / f".{BUNDLE_FOLDER}-staging"
        if staging.exists():
            import shutil

            shutil.rmtree(staging)
        bundle.save_pretrained(staging)
        return replace_folder(staging, self.out / BUNDLE_FOLDER)

    def __repr__(self) -> str:
        kind = f"DUIIT ({self.config.task})" if self.config.task else "CycleGAN"
        return (
            f"TranslatorTrainer({kind}, source={len(self.source_images)}, target={len(self.target_images)}, "
            f"epochs={self.options.epochs}, steps={self.step}/{self.total_steps}, device={self.device}, "
            f"out={str(self.out)!r})"
        )


def train_translator(
    config: TranslatorConfig,
    source: UnpairedImages | torch.Tensor | tuple[Any, ...],
    target: UnpairedImages | torch.Tensor | tuple[Any, ...],
    out: str | Path,
    options: TranslatorOptions | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> TranslatorBundle:
    """Train (or resume, or load the finished) translator in ``out``; returns it.

    Example:
        >>> import tempfile
        >>> y, x = torch.rand(4, 1, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
        >>> with tempfile.TemporaryDirectory() as out:
        ...     bundle = train_translator(TranslatorConfig(resolution=16, width=4, blocks=1), y, x, out,
        ...                               TranslatorOptions(epochs=1, batch_size=4), device="cpu",
        ...                               progress=False)
        ...     (Path(out) / "bundle" / "config.json").is_file()
        True
    """
    trainer = TranslatorTrainer(config, source, target, out, options, device=device, progress=progress)
    return trainer.run()
