"""Train one Pix2Pix model (MRI -> CT) with one augmentation policy, the way a user would.

The training batches come from a plain ``DataLoader`` over the paired slices and go through
:class:`latent_transforms.GPUAugment` (``keys=["mri", "ct"]``: the two modalities are stacked as the
GAN's channels, augmented together on the device, and split back; the dataset keys find each slice's
cached ``w*``). The time of each augmentation call is measured (with CUDA synchronisation) and kept:
its mean over training is the throughput column of Table II, as the paper measured it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

import latent_transforms as lt

from .data import SliceSet
from .model import Pix2Pix, Pix2PixOptions


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class TrainingLog:
    """What one training run measured.

    Attributes:
        epochs: per epoch ``{"d_loss", "g_gan", "g_l1", "lr", "seconds"}`` (losses averaged over the epoch).
        augment_seconds: seconds of each augmentation call (one per batch; 0-length for the Baseline).
        augmented: samples replaced by the policy in each batch.
        batch_size: samples per batch.
        seconds: wall time of the whole run.

    Example:
        >>> log = TrainingLog(augment_seconds=[2.0, 0.2, 0.4], augmented=[3, 5, 4], batch_size=16)
        >>> log.summary()["augment_seconds_per_batch"], log.summary()["augmented_fraction"]
        (0.3, 0.25)
    """

    epochs: list[dict[str, float]] = field(default_factory=list)
    augment_seconds: list[float] = field(default_factory=list)
    augmented: list[int] = field(default_factory=list)
    batch_size: int = 16
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Means for the report: augmentation seconds per batch (Table II) and the augmented fraction.

        The first call is left out of the mean when there are others: it loads the GAN, the cache and the
        perceptual network onto the device (``augment_first_call_seconds`` keeps it).
        """
        calls = len(self.augment_seconds)
        timed = self.augment_seconds[1:] if calls > 1 else self.augment_seconds
        return {
            "augment_seconds_per_batch": round(sum(timed) / len(timed), 6) if calls else None,
            "augment_first_call_seconds": round(self.augment_seconds[0], 6) if calls else None,
            "augment_calls": calls,
            "augmented_fraction": round(sum(self.augmented) / (calls * self.batch_size), 4) if calls else 0.0,
            "train_seconds": round(self.seconds, 2),
            "final": self.epochs[-1] if self.epochs else {},
        }


def normalise(
    batch: dict[str, Any], windows: dict[str, lt.IntensityWindow]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mri, ct)`` of a batch in ``[-1, 1]`` through the modalities' windows (clipped), ``[B, 1, R, R]``.

    Example:
        >>> w = {"mri": lt.IntensityWindow(0, 1900), "ct": lt.IntensityWindow(-1000, 2000)}
        >>> batch = {"mri": torch.full((1, 1, 2, 2), 950.0), "ct": torch.full((1, 1, 2, 2), 5e3)}
        >>> mri, ct = normalise(batch, w)
        >>> abs(mri.mean().item()) < 1e-6, ct.max().item()
        (True, 1.0)
    """
    return windows["mri"].normalize(batch["mri"].float()), windows["ct"].normalize(batch["ct"].float())


def changed_samples(before: torch.Tensor, after: torch.Tensor) -> int:
    """How many samples of a batch an augmentation changed (``[B, ...]`` tensors)."""
    return int((before != after).flatten(1).any(dim=1).sum())


def train_pix2pix(
    train_set: SliceSet,
    transform: Callable[..., Any] | None,
    *,
    windows: dict[str, lt.IntensityWindow],
    options: Pix2PixOptions,
    device: torch.device | str,
    seed: int = 0,
    num_workers: int = 0,
    progress: bool = False,
    description: str = "pix2pix",
) -> tuple[Pix2Pix, TrainingLog]:
    """Train Pix2Pix (MRI in, CT out) on ``train_set`` with ``transform`` applied to each batch.

    Args:
        train_set: the training slices (physical units).
        transform: the policy's batch transform (``None``: no augmentation), applied by
            :class:`latent_transforms.GPUAugment` to ``{"mri", "ct"}`` stacked in that channel order.
        windows: ``{"mri": window, "ct": window}``: how physical values map to the network's ``[-1, 1]``.
        options: Pix2Pix's hyper-parameters (epochs, batch size, learning rate...).
        device: where the network trains and the augmentation runs.
        seed: seeds the weights, the batch order and (through the policy) the augmentation.
        num_workers: DataLoader workers (0 for preloaded slices).
        progress: a tqdm bar per run.
        description: the bar's label.

    Returns:
        The trained model (eval mode) and its :class:`TrainingLog`.
    """
    device = torch.device(device)
    # Dropout draws from torch's global generator: seed it inside a forked RNG state, so the run is
    # reproducible from `seed` and the caller's random state is left as it was.
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return _train(
            train_set, transform, windows, options, device, seed, num_workers, progress, description
        )


def _train(
    train_set: SliceSet,
    transform: Callable[..., Any] | None,
    windows: dict[str, lt.IntensityWindow],
    options: Pix2PixOptions,
    device: torch.device,
    seed: int,
    num_workers: int,
    progress: bool,
    description: str,
) -> tuple[Pix2Pix, TrainingLog]:
    model = Pix2Pix(train_set.resolution, options, seed=seed).to(device)
    order = torch.Generator().manual_seed(seed)
    drop_last = len(train_set) >= options.batch_size  # BatchNorm at the U-Net's 1x1 bottleneck needs B > 1
    loader = DataLoader(
        train_set,
        batch_size=options.batch_size,
        shuffle=True,
        generator=order,
        drop_last=drop_last,
        num_workers=num_workers,
    )
    batches = lt.GPUAugment(loader, transform or _identity, device, keys=["mri", "ct"], key_field="key")
    log = TrainingLog(batch_size=options.batch_size)
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=options.epochs * len(loader), desc=description, leave=False)
    for _ in range(options.epochs):
        epoch_start = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        lr = model.current_lr
        for batch in loader:
            if transform is not None:
                before = batch["ct"]
                _sync(device)
                t0 = time.perf_counter()
                batch = batches.augment(batch)
                _sync(device)
                log.augment_seconds.append(time.perf_counter() - t0)
                log.augmented.append(changed_samples(before.to(device), batch["ct"]))
            else:
                batch = batches.augment(batch)
            mri, ct = normalise(batch, windows)
            losses = model.train_step(mri, ct)
            for k, v in losses.items():
                value = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
                sums[k] = sums.get(k, 0.0) + value
            steps += 1
            if bar is not None:
                bar.update()
        model.end_epoch()
        _sync(device)
        epoch = {k: round(float(v) / max(steps, 1), 5) for k, v in sums.items()}
        epoch.update({"lr": lr, "seconds": round(time.perf_counter() - epoch_start, 3)})
        log.epochs.append(epoch)
    if bar is not None:
        bar.close()
    log.seconds = time.perf_counter() - started
    model.eval()
    return model, log
