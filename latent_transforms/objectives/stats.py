"""``DatasetStats``: the real training set's means that make LatentAugment's diversity terms exact and O(1).

LatentAugment (Tronchin et al. 2023) pushes a synthetic image away from the whole real training set with three
means over the ``N`` real images ``x_j`` and their inverted latents ``w*_j``::

    L_pix(a)  = mean_j MSE(a, x_j)
    L_perc(a) = mean_j sum_l mean((phi_l(P(a)) - phi_l(P(x_j)))^2)     (P: a 64 x 64 patch)
    L_lat(w)  = mean_j MSE(w, w*_j)

A mean of squared distances to a set is the squared distance to the set's mean plus a constant,
``mean_j |a - x_j|^2 = |a - mean_j x_j|^2 + mean_j |x_j - mean_j x_j|^2``, so each term needs only the
dataset's mean (of images, of latents, of the patch features at each patch position) and one number.
:class:`DatasetStats` holds exactly these, computed once in a streamed float64 pass over any number of
images; the loss values it gives equal the brute-force means up to float32 round-off, at the cost of one
subtraction per step instead of a pass over ``N`` images.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import safe_open

from latent_transforms.checks import check_image_batch
from latent_transforms.errors import ConfigError
from latent_transforms.features.perceptual import PerceptualNetwork
from latent_transforms.networks.weights import atomic_save
from latent_transforms.objectives.accumulator import DatasetStatsAccumulator
from latent_transforms.objectives.patches import centre_positions, patch_grid

#: Version of the file layout :meth:`DatasetStats.save` writes.
STATS_FORMAT = 1


def _check_images(images: Any, channels: int, resolution: int, what: str = "images") -> torch.Tensor:
    """The shape and dtype check of :func:`~latent_transforms.checks.check_image_batch` (no value read:
    it runs inside the walk's steps, which never synchronise with the host)."""
    return check_image_batch(
        images,
        what=what,
        channels=channels,
        resolution=resolution,
        finite=False,
        context="the channels and resolution of these statistics: resize or stack the modalities first",
    )


class PatchPool(NamedTuple):
    """The statistics of one pool of real patches (:meth:`DatasetStats.patch_pool`): every real image's
    patch at each of ``indices``, taken together.

    Attributes:
        means: per perceptual layer, the pool's mean feature map ``[1, C', c_l, h_l, w_l]`` (float32).
        constants: ``[1, C']``: the mean over the pool of ``sum_l mean((phi_l(q) - means_l)^2)``.
        indices: ``[k]`` long, the pooled positions (indices into ``patch_positions``).
    """

    means: list[torch.Tensor]
    constants: torch.Tensor
    indices: torch.Tensor


def _distance_to_means(
    feats: Sequence[torch.Tensor], means: Sequence[torch.Tensor], constants: torch.Tensor | None
) -> torch.Tensor:
    """``sum_l mean((f_l - m_l)^2)`` per sample and channel, plus ``constants``, averaged over ``C'``
    (``[B]``)."""
    total = None
    for f, m in zip(feats, means, strict=True):
        d = (f - m).square().mean(dim=(2, 3, 4))
        total = d if total is None else total + d
    assert total is not None
    if constants is not None:
        total = total + constants.to(device=total.device, dtype=total.dtype)
    return total.mean(dim=1)


class DatasetStats:
    """Means over a real training set that give LatentAugment's diversity terms exactly.

    Build one with :meth:`compute` (an iterable of batches) or :meth:`accumulator` (streamed
    ``update`` calls then ``finalize``); store it with :meth:`save` next to the latent cache.

    Every loss helper returns one value per sample ``[B]``, is differentiable with respect to its input,
    and with ``add_constants=True`` (default) equals the mean over all dataset images (or latents, or
    patches at the same position) of the per-pair loss. The constant does not change gradients; leave it
    out (``add_constants=False``) to get the squared distance to the mean alone.

    Attributes:
        resolution: image side ``R``; images are ``[C, R, R]`` in ``[-1, 1]``.
        channels: image channels ``C`` (modalities).
        n_images: images the image and patch statistics were computed from (0: none).
        n_latents: latents the latent statistics were computed from (0: none).
        image_mean: ``[C, R, R]`` float32 mean image, or ``None``.
        image_var: mean over pixels and channels of ``E[x^2] - mean(x)^2`` (float).
        w_mean: mean latent, the shape of one latent (``[w_dim]`` or ``[num_ws, w_dim]``), or ``None``.
        w_var: mean over elements of ``E[w^2] - mean(w)^2`` (float).
        patch_size: side ``P`` of the perceptual patches (``R`` when ``R <= 64``, or the size asked).
        patch_stride: grid step of the patch positions.
        patch_positions: ``[n_pos, 2]`` long, top-left (row, column) of each patch position.
        patch_means: one ``[n_pos, C', c_l, h_l, w_l]`` float32 tensor per perceptual layer (the mean
            feature map at each position), or ``None`` without a perceptual network.
        patch_constants: ``[n_pos, C']`` float32: ``mean_j sum_l mean((phi_l(P(x_j)) - mean_l)^2)``.
        perceptual_name: :attr:`PerceptualNetwork.name` of the network used, or ``None``.
        perceptual_fingerprint: its :attr:`PerceptualNetwork.fingerprint`, or ``None``.
        info: free-form JSON-serialisable metadata saved with the file (e.g. the generator fingerprint).

    Example:
        >>> from latent_transforms.features.perceptual import perceptual_network
        >>> g = torch.Generator().manual_seed(0)
        >>> images = torch.rand(6, 2, 16, 16, generator=g) * 2 - 1
        >>> w = torch.randn(6, 8, generator=g)
        >>> net = perceptual_network("random")
        >>> stats = DatasetStats.compute([(images, w)], perceptual=net, patch_size=8, progress=False)
        >>> stats  # doctest: +NORMALIZE_WHITESPACE
        DatasetStats(n_images=6, n_latents=6, resolution=16, channels=2, perceptual='random',
        patch_size=8, patch_stride=4, positions=9)
        >>> x = torch.zeros(3, 2, 16, 16)
        >>> brute = torch.stack([((x - xj) ** 2).mean(dim=(1, 2, 3)) for xj in images]).mean(0)
        >>> torch.allclose(stats.pixel_loss(x), brute, atol=1e-6)
        True
        >>> pos = stats.random_positions(3, torch.Generator().manual_seed(1))
        >>> stats.perceptual_loss(net(stats.patch(x, pos)), pos).shape
        torch.Size([3])
    """

    def __init__(
        self,
        *,
        resolution: int,
        channels: int,
        n_images: int = 0,
        n_latents: int = 0,
        image_mean: torch.Tensor | None = None,
        image_var: float = 0.0,
        w_mean: torch.Tensor | None = None,
        w_var: float = 0.0,
        patch_size: int = 64,
        patch_stride: int = 32,
        patch_means: Sequence[torch.Tensor] | None = None,
        patch_constants: torch.Tensor | None = None,
        perceptual_name: str | None = None,
        perceptual_fingerprint: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.n_images = int(n_images)
        self.n_latents = int(n_latents)
        self.image_mean = image_mean
        self.image_var = float(image_var)
        self.w_mean = w_mean
        self.w_var = float(w_var)
        self.patch_size = min(int(patch_size), self.resolution)
        self.patch_stride = int(patch_stride)
        self.patch_positions = patch_grid(self.resolution, self.patch_size, self.patch_stride)
        self.patch_means = list(patch_means) if patch_means is not None else None
        self.patch_constants = patch_constants
        self.perceptual_name = perceptual_name
        self.perceptual_fingerprint = perceptual_fingerprint
        self.info: dict[str, Any] = dict(info or {})
        if self.patch_means is not None:
            n_pos = len(self.patch_positions)
            bad = [tuple(m.shape) for m in self.patch_means if m.ndim != 5 or m.shape[0] != n_pos]
            if bad or self.patch_constants is None or tuple(self.patch_constants.shape[:1]) != (n_pos,):
                raise ConfigError(
                    f"expected patch means [{n_pos}, C', c, h, w] and constants [{n_pos}, C'] for "
                    f"{n_pos} patch positions, got {bad or 'no constants'}. Fix: build DatasetStats with "
                    "DatasetStats.compute or an accumulator."
                )

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def accumulator(
        *,
        resolution: int,
        channels: int,
        perceptual: PerceptualNetwork | None = None,
        patch_size: int = 64,
        patch_stride: int | None = None,
        device: str | torch.device | None = None,
    ) -> DatasetStatsAccumulator:
        """A :class:`DatasetStatsAccumulator`: call ``update`` per batch, then ``finalize``.

        Args:
            resolution: image side ``R``.
            channels: image channels ``C``.
            perceptual: the network for the perceptual term (``None``: no patch statistics).
            patch_size: patch side ``P`` (``R`` when ``R <= P``).
            patch_stride: grid step of patch positions (default ``P // 2``).
            device: where sums are kept and features computed (default: the perceptual network's
                device, else CPU).

        Example:
            >>> acc = DatasetStats.accumulator(resolution=8, channels=1)
            >>> acc.update(torch.zeros(2, 1, 8, 8), w=torch.ones(2, 4))
            >>> acc.update(torch.ones(2, 1, 8, 8))
            >>> stats = acc.finalize()
            >>> stats.n_images, stats.n_latents, stats.image_var, float(stats.image_mean.mean())
            (4, 2, 0.25, 0.5)
        """
        return DatasetStatsAccumulator(
            build=DatasetStats,
            resolution=resolution,
            channels=channels,
            perceptual=perceptual,
            patch_size=patch_size,
            patch_stride=patch_stride,
            device=device,
        )

    @classmethod
    def compute(
        cls,
        batches: Iterable[torch.Tensor | tuple[torch.Tensor | None, torch.Tensor | None]],
        *,
        resolution: int | None = None,
        channels: int | None = None,
        perceptual: PerceptualNetwork | None = None,
        patch_size: int = 64,
        patch_stride: int | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
    ) -> DatasetStats:
        """Statistics of every batch ``batches`` yields: image tensors ``[B, C, R, R]`` in ``[-1, 1]``,
        or ``(images, w)`` pairs (either may be ``None``; ``w`` is ``[B, w_dim]`` or
        ``[B, num_ws, w_dim]``).

        ``resolution`` and ``channels`` default to those of the first image batch; the other arguments
        are those of :meth:`accumulator`. ``progress`` shows a tqdm bar.

        Example:
            >>> stats = DatasetStats.compute([torch.zeros(3, 2, 8, 8)], progress=False)
            >>> stats.n_images, stats.patch_size, tuple(stats.patch_positions.shape)
            (3, 8, (1, 2))
        """
        from tqdm.auto import tqdm

        acc: DatasetStatsAccumulator | None = None
        pending_w: list[torch.Tensor] = []
        total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
        for item in tqdm(batches, total=total, desc="dataset statistics", unit="batch", disable=not progress):
            if isinstance(item, torch.Tensor):
                images, w = item, None
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                images, w = item
            else:
                raise ConfigError(
                    f"expected batches of images [B, C, R, R] or (images, w) pairs, got "
                    f"{type(item).__name__}{f' of length {len(item)}' if hasattr(item, '__len__') else ''}. "
                    "Fix: yield image tensors or (images, w) tuples."
                )
            if acc is None:
                if images is None and (resolution is None or channels is None):
                    if w is not None:
                        pending_w.append(w)
                    continue
                if images is not None and (not isinstance(images, torch.Tensor) or images.ndim != 4):
                    _check_images(images, channels or 1, resolution or 1)  # raises, saying what is expected
                acc = cls.accumulator(
                    resolution=resolution if resolution is not None else images.shape[-1],  # type: ignore[union-attr]
                    channels=channels if channels is not None else images.shape[1],  # type: ignore[union-attr]
                    perceptual=perceptual,
                    patch_size=patch_size,
                    patch_stride=patch_stride,
                    device=device,
                )
                for pw in pending_w:
                    acc.update(None, pw)
            acc.update(images, w)
        if acc is None:
            raise ConfigError(
                "expected at least one batch of images (to know the resolution and channels), got none. "
                "Fix: pass a non-empty iterable, or resolution= and channels= for latents only."
            )
        return acc.finalize()

    # -- properties ------------------------------------------------------------------------------
    @property
    def num_positions(self) -> int:
        """Number of patch positions (rows of :attr:`patch_positions`)."""
        return len(self.patch_positions)

    @property
    def device(self) -> torch.device:
        """Device of the stored tensors (CPU when there are none)."""
        for t in (self.image_mean, self.w_mean, self.patch_constants):
            if t is not None:
                return t.device
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> DatasetStats:
        """Move every tensor to ``device`` (in place; returns ``self``)."""
        if self.image_mean is not None:
            self.image_mean = self.image_mean.to(device)
        if self.w_mean is not None:
            self.w_mean = self.w_mean.to(device)
        if self.patch_means is not None:
            self.patch_means = [m.to(device) for m in self.patch_means]
        if self.patch_constants is not None:
            self.patch_constants = self.patch_constants.to(device)
        return self

    def check_perceptual(self, net: PerceptualNetwork) -> None:
        """Raise :class:`ConfigError` unless these patch statistics were computed with ``net``.

        Example:
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> stats = DatasetStats.compute(
            ...     [torch.zeros(2, 1, 8, 8)], perceptual=perceptual_network("random"), progress=False
            ... )
            >>> stats.check_perceptual(perceptual_network("random"))
        """
        if self.patch_means is None:
            raise ConfigError(
                "expected patch statistics for the perceptual term, but these DatasetStats were computed "
                "without a perceptual network. Fix: recompute with DatasetStats.compute(..., "
                f"perceptual={net.name!r} network)."
            )
        if net.fingerprint != self.perceptual_fingerprint:
            raise ConfigError(
                f"expected the perceptual network these statistics were computed with "
                f"({self.perceptual_name!r}, fingerprint {str(self.perceptual_fingerprint)[:12]}), got "
                f"{net.name!r} (fingerprint {net.fingerprint[:12]}): its features are not comparable. Fix: "
                "use the same network (name, weights, preprocessing, normalize), or recompute the "
                "statistics with this one."
            )

    # -- loss helpers ----------------------------------------------------------------------------
    def pixel_loss(self, x: torch.Tensor, *, add_constants: bool = True) -> torch.Tensor:
        """``mean_j MSE(x_b, x_j)`` over the dataset images, per sample ``[B]``.

        Args:
            x: ``[B, C, R, R]`` images (any range; the dataset's is ``[-1, 1]``).
            add_constants: add ``image_var`` (exact mean); ``False`` gives ``MSE(x_b, image_mean)``.

        Example:
            >>> batches = [torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)]
            >>> stats = DatasetStats.compute(batches, progress=False)
            >>> stats.pixel_loss(torch.zeros(1, 1, 4, 4)).tolist() == [0.5]
            True
        """
        if self.image_mean is None:
            raise ConfigError(
                "expected image statistics for the pixel term, but these DatasetStats hold none "
                "(n_images = 0). Fix: recompute with the training images."
            )
        _check_images(x, self.channels, self.resolution, "x")
        mean = self.image_mean.to(device=x.device, dtype=x.dtype)
        loss = (x - mean).square().mean(dim=(1, 2, 3))
        return loss + self.image_var if add_constants else loss

    def latent_loss(self, w: torch.Tensor, *, add_constants: bool = True) -> torch.Tensor:
        """``mean_j MSE(w_b, w*_j)`` over the dataset latents, per sample ``[B]``.

        ``w`` is ``[B, w_dim]`` or ``[B, num_ws, w_dim]``; a W latent against W+ statistics (or the other
        way round) is broadcast over the layers, and the value stays exact.

        Example:
            >>> acc = DatasetStats.accumulator(resolution=4, channels=1)
            >>> acc.update(w=torch.tensor([[0.0, 0.0], [2.0, 2.0]]))
            >>> acc.finalize().latent_loss(torch.zeros(1, 2)).tolist() == [2.0]
            True
        """
        if self.w_mean is None:
            raise ConfigError(
                "expected latent statistics for the latent term, but these DatasetStats hold none "
                "(n_latents = 0). Fix: recompute with the inverted latents, update(images, w=...)."
            )
        if (
            not isinstance(w, torch.Tensor)
            or w.ndim not in (2, 3)
            or not w.is_floating_point()
            or w.shape[-1] != self.w_mean.shape[-1]
            or (w.ndim == 3 and self.w_mean.ndim == 2 and w.shape[1] != self.w_mean.shape[0])
        ):
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ConfigError(
                f"expected float latents [B, {self.w_mean.shape[-1]}] or [B, num_ws, "
                f"{self.w_mean.shape[-1]}] (statistics: {tuple(self.w_mean.shape)}), got {got}. Fix: pass "
                "latents of the generator the statistics were computed for."
            )
        mean = self.w_mean.to(device=w.device, dtype=w.dtype)
        diff = (w[:, None] if w.ndim == 2 and mean.ndim == 2 else w) - mean
        loss = diff.square().flatten(1).mean(dim=1)
        return loss + self.w_var if add_constants else loss

    def _positions(
        self, positions: torch.Tensor, batch: int, device: torch.device, check_range: bool = True
    ) -> torch.Tensor:
        if (
            not isinstance(positions, torch.Tensor)
            or positions.dtype not in (torch.int64, torch.int32)
            or tuple(positions.shape) != (batch,)
        ):
            got = (
                f"a {positions.dtype} tensor of shape {tuple(positions.shape)}"
                if isinstance(positions, torch.Tensor)
                else type(positions).__name__
            )
            raise ConfigError(
                f"expected patch positions as a LongTensor [{batch}] of indices into patch_positions, got "
                f"{got}. Fix: draw them with stats.random_positions(batch, generator)."
            )
        # The range check reads the indices on the host (a device synchronisation for CUDA tensors);
        # callers that checked their indices once (LatentAugment's walk) skip it inside their loop.
        if check_range and batch and (int(positions.min()) < 0 or int(positions.max()) >= self.num_positions):
            raise ConfigError(
                f"expected patch position indices in [0, {self.num_positions}), got values from "
                f"{int(positions.min())} to {int(positions.max())}. Fix: draw them with "
                "stats.random_positions."
            )
        return positions.to(device=device, dtype=torch.long)

    def random_positions(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch`` patch position indices ``[B]`` (long, on the generator's device), uniform.

        Example:
            >>> stats = DatasetStats.compute([torch.zeros(1, 1, 16, 16)], patch_size=8, progress=False)
            >>> p = stats.random_positions(5, torch.Generator().manual_seed(0))
            >>> tuple(p.shape), bool((p >= 0).all() and (p < 9).all())
            ((5,), True)
        """
        device = generator.device if generator is not None else torch.device("cpu")
        return torch.randint(self.num_positions, (batch,), generator=generator, device=device)

    def patch(
        self, images: torch.Tensor, positions: torch.Tensor, *, check_range: bool = True
    ) -> torch.Tensor:
        """Cut each image's patch at its grid position: ``[B, C, R, R] -> [B, C, P, P]``, differentiable.

        ``check_range=False`` skips the check that every index lies in ``[0, num_positions)`` (it reads
        them on the host, a device synchronisation); only for indices checked before.

        Example:
            >>> stats = DatasetStats.compute([torch.zeros(1, 1, 16, 16)], patch_size=8, progress=False)
            >>> x = torch.arange(256.0).reshape(1, 1, 16, 16)
            >>> stats.patch(x, torch.tensor([4]))[0, 0, 0, 0].item()  # position 4 = corner (4, 4)
            68.0
        """
        _check_images(images, self.channels, self.resolution)
        b = images.shape[0]
        pos = self.patch_positions.to(images.device)[
            self._positions(positions, b, images.device, check_range)
        ]
        steps = torch.arange(self.patch_size, device=images.device)
        rows = (pos[:, 0:1] + steps)[:, :, None]  # [B, P, 1]
        cols = (pos[:, 1:2] + steps)[:, None, :]  # [B, 1, P]
        batch = torch.arange(b, device=images.device)[:, None, None]
        return images[batch, :, rows, cols].permute(0, 3, 1, 2)  # advanced dims first: [B, P, P, C]

    def perceptual_loss(
        self,
        feats: Sequence[torch.Tensor],
        positions: torch.Tensor,
        *,
        add_constants: bool = True,
        check_range: bool = True,
    ) -> torch.Tensor:
        """``mean_j sum_l mean((phi_l - phi_l(P(x_j)))^2)`` at each sample's position, averaged over
        ``C'``, per sample ``[B]``.

        Args:
            feats: the perceptual network's maps of the synthetic patches, one ``[B, C', c_l, h_l, w_l]``
                per layer (``net(stats.patch(images, positions))``, same network as the statistics).
            positions: ``[B]`` long, each sample's index into :attr:`patch_positions` (the real patches
                are taken at the same position).
            add_constants: add the per-position constant (exact mean over the dataset patches).
            check_range: check that every index lies in ``[0, num_positions)`` (a host read, so a device
                synchronisation); ``False`` only for indices checked before.

        Example:
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> net = perceptual_network("random")
            >>> stats = DatasetStats.compute([torch.zeros(2, 1, 8, 8)], perceptual=net, progress=False)
            >>> pos = torch.zeros(2, dtype=torch.long)
            >>> stats.perceptual_loss(net(torch.zeros(2, 1, 8, 8)), pos).abs().max().item() < 1e-6
            True
        """
        self._check_feature_count(feats)
        b = feats[0].shape[0] if isinstance(feats[0], torch.Tensor) else -1
        idx = self._positions(positions, max(b, 0), feats[0].device if b >= 0 else self.device, check_range)
        assert self.patch_means is not None and self.patch_constants is not None
        self._check_feature_shapes(feats, b, self.patch_means)
        means = [
            m.to(device=f.device, dtype=f.dtype).index_select(0, idx)
            for f, m in zip(feats, self.patch_means, strict=True)
        ]
        constants = self.patch_constants.index_select(0, idx.to(self.patch_constants.device))
        return _distance_to_means(feats, means, constants if add_constants else None)

    def centre_positions(self) -> torch.Tensor:
        """Indices (into :attr:`patch_positions`) of the patches inside the centre square of side ``R/√2``,
        where the authors' code (Tronchin et al. 2023) cut its perceptual patches; the centred one(s)
        when no patch fits. See :func:`~latent_transforms.objectives.patches.centre_positions`.

        Example:
            >>> stats = DatasetStats.compute([torch.zeros(1, 1, 32, 32)], patch_size=8, progress=False)
            >>> stats.patch_positions[stats.centre_positions()].unique().tolist()
            [8, 12, 16]
        """
        return centre_positions(self.patch_positions, self.resolution, self.patch_size)

    def patch_pool(self, indices: torch.Tensor | None = None) -> PatchPool:
        """The patch statistics of one pool of real patches: every real image's patch at every position in
        ``indices`` (default :meth:`centre_positions`), as if they were one position.

        The mean feature map of the pool is the mean of the positions' means, and its constant is
        ``mean_p (constant_p + sum_l mean((mean_{p,l} - pool mean_l)^2))``, so that
        :meth:`pool_perceptual_loss` is the exact mean over the ``N · len(indices)`` real patches (computed
        in float64). This is the real side of the authors' patch protocol (``patch_protocol="authors"``).

        Example:
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> net = perceptual_network("random")
            >>> stats = DatasetStats.compute([torch.zeros(2, 1, 32, 32)], perceptual=net, patch_size=8,
            ...                              progress=False)
            >>> pool = stats.patch_pool()
            >>> pool.indices.numel(), tuple(pool.constants.shape)
            (9, (1, 1))
        """
        if self.patch_means is None or self.patch_constants is None:
            raise ConfigError(
                "expected patch statistics for a pool of real patches, but these DatasetStats were computed "
                "without a perceptual network. Fix: DatasetStats.compute(..., perceptual=net)."
            )
        idx = self.centre_positions() if indices is None else indices
        idx = self._positions(idx, int(idx.numel()), self.patch_constants.device)
        if idx.numel() == 0:
            raise ConfigError("expected at least one patch position for the pool, got none.")
        means = [m.index_select(0, idx).double() for m in self.patch_means]  # per layer [n, C', c, h, w]
        pooled = [m.mean(dim=0, keepdim=True) for m in means]
        constants = self.patch_constants.index_select(0, idx).double().mean(dim=0)  # [C']
        for m, pm in zip(means, pooled, strict=True):
            constants = constants + (m - pm).square().mean(dim=(2, 3, 4)).mean(dim=0)
        return PatchPool([pm.float() for pm in pooled], constants[None].float(), idx)

    def pool_perceptual_loss(
        self, feats: Sequence[torch.Tensor], pool: PatchPool, *, add_constants: bool = True
    ) -> torch.Tensor:
        """``mean over the pool's real patches q of sum_l mean((phi_l - phi_l(q))^2)``, averaged over ``C'``,
        per sample ``[B]``: :meth:`perceptual_loss` against one pool of patches (:meth:`patch_pool`) instead
        of the real patches at each sample's own position.

        Example:
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> net = perceptual_network("random")
            >>> stats = DatasetStats.compute([torch.zeros(2, 1, 32, 32)], perceptual=net, patch_size=8,
            ...                              progress=False)
            >>> x = torch.zeros(3, 1, 32, 32)
            >>> feats = net(stats.patch(x, torch.tensor([24, 24, 24])))  # any synthetic patches
            >>> stats.pool_perceptual_loss(feats, stats.patch_pool()).abs().max().item() < 1e-6
            True
        """
        self._check_feature_count(feats)
        b = feats[0].shape[0] if isinstance(feats[0], torch.Tensor) else -1
        self._check_feature_shapes(feats, b, pool.means)
        means = [m.to(device=f.device, dtype=f.dtype) for f, m in zip(feats, pool.means, strict=True)]
        return _distance_to_means(feats, means, pool.constants if add_constants else None)

    def _check_feature_count(self, feats: Sequence[torch.Tensor]) -> None:
        if self.patch_means is None or self.patch_constants is None:
            raise ConfigError(
                "expected patch statistics for the perceptual term, but these DatasetStats were computed "
                "without a perceptual network. Fix: DatasetStats.compute(..., perceptual=net)."
            )
        if not isinstance(feats, (list, tuple)) or len(feats) != len(self.patch_means):
            got = len(feats) if isinstance(feats, (list, tuple)) else type(feats).__name__
            raise ConfigError(
                f"expected {len(self.patch_means)} feature maps (the layers of {self.perceptual_name!r}), "
                f"got {got}. Fix: pass net(stats.patch(images, positions)) with the statistics' network."
            )

    def _check_feature_shapes(
        self, feats: Sequence[torch.Tensor], b: int, means: Sequence[torch.Tensor]
    ) -> None:
        for layer, (f, mean) in enumerate(zip(feats, means, strict=True)):
            if (
                not isinstance(f, torch.Tensor)
                or f.ndim != 5
                or f.shape[0] != b
                or f.shape[1:] != mean.shape[1:]
            ):
                got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
                raise ConfigError(
                    f"expected feature maps [B, {', '.join(map(str, mean.shape[1:]))}] at layer {layer} "
                    f"(network {self.perceptual_name!r}, {self.patch_size} px patches), got {got}. Fix: use "
                    "the statistics' network on patches cut with stats.patch."
                )

    def image_perceptual_loss(
        self,
        net: PerceptualNetwork,
        images: torch.Tensor,
        positions: torch.Tensor,
        *,
        add_constants: bool = True,
    ) -> torch.Tensor:
        """:meth:`perceptual_loss` of whole images: cut the patches, run ``net``, compare, ``[B]``.

        ``net`` is checked against the stored fingerprint (:meth:`check_perceptual`).

        Example:
            >>> from latent_transforms.features.perceptual import perceptual_network
            >>> net = perceptual_network("random")
            >>> stats = DatasetStats.compute(
            ...     [torch.zeros(2, 1, 16, 16)], perceptual=net, patch_size=8, progress=False
            ... )
            >>> stats.image_perceptual_loss(net, torch.zeros(3, 1, 16, 16), torch.tensor([0, 4, 8])).shape
            torch.Size([3])
        """
        self.check_perceptual(net)
        return self.perceptual_loss(
            net(self.patch(images, positions)), positions, add_constants=add_constants
        )

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write one safetensors file atomically (tensors; the rest as JSON in the file's metadata).

        Example:
            >>> import tempfile, pathlib
            >>> stats = DatasetStats.compute([torch.zeros(2, 1, 8, 8)], progress=False)
            >>> with tempfile.TemporaryDirectory() as d:
            ...     stats.save(pathlib.Path(d) / "stats.safetensors")
            ...     DatasetStats.load(pathlib.Path(d) / "stats.safetensors").n_images
            2
        """
        tensors: dict[str, torch.Tensor] = {}
        if self.image_mean is not None:
            tensors["image_mean"] = self.image_mean.detach().float().cpu()
        if self.w_mean is not None:
            tensors["w_mean"] = self.w_mean.detach().float().cpu()
        if self.patch_means is not None and self.patch_constants is not None:
            for i, m in enumerate(self.patch_means):
                tensors[f"patch_mean.{i}"] = m.detach().float().cpu()
            tensors["patch_constants"] = self.patch_constants.detach().float().cpu()
        header = {
            "format": STATS_FORMAT,
            "resolution": self.resolution,
            "channels": self.channels,
            "n_images": self.n_images,
            "n_latents": self.n_latents,
            "image_var": self.image_var,
            "w_var": self.w_var,
            "patch_size": self.patch_size,
            "patch_stride": self.patch_stride,
            "num_patch_layers": len(self.patch_means) if self.patch_means is not None else 0,
            "perceptual_name": self.perceptual_name,
            "perceptual_fingerprint": self.perceptual_fingerprint,
        }
        metadata = {"dataset_stats": json.dumps(header), "info": json.dumps(self.info)}
        path = Path(path)
        if not path.parent.is_dir():
            raise ConfigError(f"expected an existing folder for {path}, got none. Fix: create {path.parent}.")
        atomic_save(tensors, path, metadata)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | torch.device | None = None,
        perceptual: PerceptualNetwork | None = None,
    ) -> DatasetStats:
        """Read a file written by :meth:`save`; with ``perceptual``, check it is the network used.

        Raises:
            ConfigError: the file is missing, is not a DatasetStats file, or (with ``perceptual``) the
                network's fingerprint differs.

        Example:
            >>> DatasetStats.load("missing.safetensors")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            latent_transforms.errors.ConfigError: expected a DatasetStats file at missing.safetensors, ...
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"expected a DatasetStats file at {path}, but there is no such file. Fix: compute the "
                "statistics with DatasetStats.compute(...) and save them there."
            )
        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                metadata = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no __iter__)
            header = json.loads(metadata["dataset_stats"])
            info = json.loads(metadata.get("info", "{}"))
        except Exception as exc:  # safetensors and json raise their own types
            raise ConfigError(
                f"expected a DatasetStats safetensors file at {path}, but it cannot be read ({exc}). Fix: "
                "recompute and save the statistics."
            ) from exc
        if header.get("format") != STATS_FORMAT:
            raise ConfigError(
                f"expected DatasetStats file format {STATS_FORMAT} in {path}, got {header.get('format')}. "
                "Fix: recompute the statistics with this version of latent-transforms."
            )
        n_layers = int(header["num_patch_layers"])
        stats = cls(
            resolution=header["resolution"],
            channels=header["channels"],
            n_images=header["n_images"],
            n_latents=header["n_latents"],
            image_mean=tensors.get("image_mean"),
            image_var=header["image_var"],
            w_mean=tensors.get("w_mean"),
            w_var=header["w_var"],
            patch_size=header["patch_size"],
            patch_stride=header["patch_stride"],
            patch_means=[tensors[f"patch_mean.{i}"] for i in range(n_layers)] if n_layers else None,
            patch_constants=tensors.get("patch_constants") if n_layers else None,
            perceptual_name=header["perceptual_name"],
            perceptual_fingerprint=header["perceptual_fingerprint"],
            info=info,
        )
        if perceptual is not None:
            stats.check_perceptual(perceptual)
        return stats.to(device) if device is not None else stats

    def __repr__(self) -> str:
        return (
            f"DatasetStats(n_images={self.n_images}, n_latents={self.n_latents}, "
            f"resolution={self.resolution}, channels={self.channels}, "
            f"perceptual={self.perceptual_name!r}, patch_size={self.patch_size}, "
            f"patch_stride={self.patch_stride}, positions={self.num_positions})"
        )
