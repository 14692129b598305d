"""``SelectiveFilter``: keep the synthetic samples a frozen classifier is sure of and that look like their
class (Xue et al. 2021, section 3.3 and Algorithm 1).

Given a pool of synthetic samples (with the class labels they were generated for, if any) and a feature
network with dropout:

1. **Uncertainty** (stage 1). The network runs ``mc_samples`` times with its dropout layers active
   (MC dropout). With labels, the score of a sample is the mean over the passes of the entropy of the
   softmax prediction, ``e = mean_k(-sum_c p_k,c log p_k,c)``. Without labels (or with a network that
   has no classifier) it is the variance across the passes instead: of the softmax probabilities
   (the mean over classes of the variance over passes), or, with no classifier, of the globally pooled
   last feature map. The lower half of each class is kept.
2. **Feature distance** (stage 2, eq. 3). Every feature map is unit-normalised along the channel
   dimension at each position; the distance of a sample to its class centroid is the squared L2 over
   the channels, averaged over the positions, summed over the layers and averaged over the MC passes:
   ``D_f(x, c) = 1/K sum_k sum_l 1/(H_l W_l) ||phi_hat_l^k(x) - phi_hat_l(c)||^2`` (in ``[0, 4 L]``, an
   estimated cosine distance). The centroid ``c`` of a class is the mean raw feature map of the real
   training images of that class (eq. 4), computed once by :meth:`SelectiveFilter.fit` with dropout
   off, and unit-normalised the same way. Of the samples that passed stage 1, the lower half of each
   class is kept.

With augmentation ratio ``r`` and ``N_i`` real training images of class ``i``, Algorithm 1 generates
``4 r N_i`` samples of class ``i`` (:meth:`SelectiveFilter.pool_size`) to keep ``r N_i``
(:meth:`SelectiveFilter.generate_and_select`).

**The lower half, exactly.** Algorithm 1 keeps the scores strictly below the median, which for ``n``
distinct scores is the ``floor(n / 2)`` lowest. This module keeps the ``floor(n / 2)`` lowest scores of
each class at each stage (a class of one sample keeps none), ties broken by the position in the pool
(the earlier sample first): a stable sort, deterministic on every device. A pool of ``n_i`` samples of
class ``i`` therefore keeps ``floor(floor(n_i / 2) / 2)`` of them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from latent_transforms.checks import check_choice, check_int
from latent_transforms.errors import ConfigError
from latent_transforms.transforms.base import check_cuda_in_worker
from latent_transforms.transforms.batch_filter import BatchFilter
from latent_transforms.transforms.feature_net import (
    FeatureOutput,
    TinyDropoutNet,
    dropout_layers,
    mc_dropout,
    network_dtype,
    parse_feature_output,
    pool_features,
)
from latent_transforms.transforms.selection import SelectionResult, half_round_up, lower_half

__all__ = [
    "UNCERTAINTY_SCORES",
    "SelectionResult",
    "SelectiveFilter",
    "TinyDropoutNet",
    "mc_dropout",
]

#: What ``SelectiveFilter(uncertainty=...)`` accepts; ``"auto"``: entropy with labels and a classifier,
#: variance otherwise.
UNCERTAINTY_SCORES = ("auto", "entropy", "variance")


class _Name(str):
    """A string shown without quotes by ``repr`` (class and function names in ``repr_params``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class SelectiveFilter(BatchFilter):
    """Selective synthetic augmentation (Xue et al. 2021, Algorithm 1): keep the quarter of a synthetic pool
    that a frozen classifier is most sure of (MC-dropout entropy, lower half per class) and that lies
    nearest its real class centroid in feature space (eq. 3, lower half per class). See the module
    docstring for the scores and the exact tie rule (``floor(n / 2)`` per class and stage, ties by pool
    position).

    **The feature_net protocol.** ``feature_net`` is an ``nn.Module`` with at least one dropout layer
    (the paper: ``nn.Dropout(0.5)`` before the last residual block of a ResNet34 trained on the real
    data). ``feature_net(x)`` on ``[b, C, H, W]`` returns either

    - ``(logits, features)``: ``logits`` ``[b, n_classes]`` (before the softmax) and ``features`` a list
      of feature maps ``[b, C_l, H_l, W_l]`` or vectors ``[b, C_l]`` (e.g. the output of each residual
      block), or
    - ``features`` alone (a list of maps, or one tensor): no classifier, so the stage-1 score is the
      variance across passes of the globally pooled last feature map (labels still pick the centroids
      and the per-class halves).

    :class:`TinyDropoutNet` is a minimal example. ``feature_net`` sees the images as given (the caller's
    range, integer dtypes as float32 values), after the optional ``preprocess``: the range the network
    was trained on is the caller's business (e.g. ``preprocess=lambda x: x.clamp(-1, 1)``, or a bundle's
    ``normalize``). The same ``preprocess`` is used for the real images in :meth:`fit`.

    **Randomness.** The dropout masks of a call come from a seed drawn from this transform's own
    ``torch.Generator`` (``seed=``, :meth:`set_random_state`); the passes run under
    ``torch.random.fork_rng`` so the global RNG is left as it was. The same seed, pool and
    ``batch_size`` give a bit-identical selection on the CPU.

    **As a transform.** Calling it on a pool ``[B, C, H, W]`` returns the kept samples (a new, smaller
    batch; ``tv_tensors.Image`` in, ``tv_tensors.Image`` out); on ``(images, labels)`` (a tuple, a list
    or two arguments) it returns ``(kept_images, kept_labels)``. So it works at the end of a
    ``v2.Compose`` after a transform that makes synthetic samples (``SG2Sample``, ``LatentAugment``).
    The scores of the last call are in :attr:`last_result`. It is not a per-sample-``p`` augmentation:
    ``p`` is always 1. A single image ``[C, H, W]`` is refused (there is nothing to select from).

    Args:
        feature_net: the frozen feature network (protocol above); moved to the work device on first use.
        ratio: the augmentation ratio ``r`` > 0 (synthetic samples kept per real training sample):
            :meth:`pool_size` and :meth:`generate_and_select` generate ``4 * round(r * N_i)`` per class.
            A pool given to :meth:`select` always keeps about a quarter, whatever ``r``.
        mc_samples: the number ``K`` of MC-dropout passes (the paper: 5). ``1`` is one pass (stochastic
            if the network has dropout) and also allows a network without any dropout layer; the
            variance score is then 0 everywhere (ties: pool order decides).
        uncertainty: the stage-1 score: ``"auto"`` (entropy with labels and a classifier, variance
            otherwise), ``"entropy"`` (needs a classifier; labels not needed) or ``"variance"``.
        batch_size: images per forward pass (bounds memory; the selection depends on it only through
            which dropout masks each sample gets).
        preprocess: optional callable ``[b, C, H, W] -> [b, C', H', W']`` applied before ``feature_net``
            (in :meth:`fit` and :meth:`select`).
        seed: seed of the transform's generator; ``None`` draws one from torch's global RNG.
        device: where the network runs (``None``: the input's device); results come back to the input's
            device.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> sf = SelectiveFilter(TinyDropoutNet(), ratio=0.5, mc_samples=3, seed=0)
        >>> real, real_labels = torch.rand(6, 1, 8, 8), torch.tensor([0, 0, 0, 1, 1, 1])
        >>> sf = sf.fit(real, real_labels)
        >>> sf.pool_size()  # 4 * round(0.5 * 3) per class
        {0: 8, 1: 8}
        >>> pool, labels = torch.rand(16, 1, 8, 8), torch.tensor([0] * 8 + [1] * 8)
        >>> res = sf.select(pool, labels)
        >>> tuple(res.images.shape), res.labels.tolist(), int(res.stage1.sum()), res.uncertainty_kind
        ((4, 1, 8, 8), [0, 0, 1, 1], 8, 'entropy')
        >>> torch.equal(res.images, pool[res.indices])
        True
        >>> kept, kept_labels = sf(pool, labels)  # as a transform
        >>> tuple(kept.shape)
        (4, 1, 8, 8)
        >>> sf  # doctest: +NORMALIZE_WHITESPACE
        SelectiveFilter(feature_net=TinyDropoutNet, ratio=0.5, mc_samples=3, uncertainty='auto',
        batch_size=32, preprocess=None, seed=0, device=None)
    """

    needs_generator_range: ClassVar[bool] = False

    def __init__(
        self,
        feature_net: nn.Module,
        ratio: float = 0.5,
        mc_samples: int = 5,
        *,
        uncertainty: str = "auto",
        batch_size: int = 32,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(seed=seed, device=device)
        if not isinstance(feature_net, nn.Module):
            raise ConfigError(
                f"SelectiveFilter expects feature_net to be a torch.nn.Module, got "
                f"{type(feature_net).__name__}. Fix: pass the classifier/feature network itself "
                "(see TinyDropoutNet for the protocol)."
            )
        if (
            not isinstance(ratio, (int, float))
            or isinstance(ratio, bool)
            or not math.isfinite(ratio)
            or ratio <= 0
        ):
            raise ConfigError(
                f"ratio (the augmentation ratio r) must be a finite number > 0, got {ratio!r}. "
                "Fix: e.g. ratio=0.5 keeps half as many synthetic samples as there are real ones."
            )
        mc_samples = check_int("mc_samples", mc_samples, low=1)  # the paper uses 5
        check_choice("uncertainty", uncertainty, UNCERTAINTY_SCORES)
        batch_size = check_int("batch_size", batch_size, low=1)
        if preprocess is not None and not callable(preprocess):
            raise ConfigError(f"preprocess must be a callable or None, got {type(preprocess).__name__}.")
        if mc_samples > 1 and not dropout_layers(feature_net):
            raise ConfigError(
                f"MC dropout needs a dropout layer, but {type(feature_net).__name__} has none "
                f"(mc_samples={mc_samples}). Fix: add one, e.g. nn.Dropout(0.5) before the last block "
                "(the paper's ResNet34: before the last residual block, above the classifier), and "
                "train with it; or pass mc_samples=1 for one deterministic pass."
            )
        self._feature_net = feature_net
        self.ratio = float(ratio)
        self.mc_samples = int(mc_samples)
        self.uncertainty = uncertainty
        self.batch_size = int(batch_size)
        self.preprocess = preprocess
        self._centroids: dict[int | None, list[torch.Tensor]] | None = None
        self._centroids_hat: dict[int | None, list[torch.Tensor]] = {}
        self._counts: dict[int | None, int] = {}
        self._labelled = False
        self._has_logits = False
        self._last_result: SelectionResult | None = None

    # -- properties ---------------------------------------------------------------------------------
    @property
    def feature_net(self) -> nn.Module:
        """The feature network (see the class docstring for its protocol)."""
        return self._feature_net

    @property
    def centroids(self) -> dict[int | None, list[torch.Tensor]] | None:
        """The class centroids of eq. 4 from :meth:`fit`: class -> one mean raw feature map per layer
        (``[C_l, H_l, W_l]`` or ``[C_l]``, float32); key ``None`` is the centroid of all real images.
        ``None`` before :meth:`fit`."""
        return self._centroids

    @property
    def class_counts(self) -> dict[int | None, int]:
        """Real training images per class seen by :meth:`fit` (``{None: N}`` when fitted without
        labels); empty before."""
        return dict(self._counts)

    @property
    def last_result(self) -> SelectionResult | None:
        """The :class:`SelectionResult` of the last :meth:`select` or call (``None`` before any)."""
        return self._last_result

    def repr_params(self) -> dict[str, Any]:
        """Every constructor parameter (``feature_net`` and ``preprocess`` by name)."""
        pre = self.preprocess
        return {
            "feature_net": _Name(type(self._feature_net).__name__),
            "ratio": self.ratio,
            "mc_samples": self.mc_samples,
            "uncertainty": self.uncertainty,
            "batch_size": self.batch_size,
            "preprocess": None if pre is None else _Name(getattr(pre, "__name__", type(pre).__name__)),
            "seed": self.seed,
            "device": None if self.device is None else str(self.device),
        }

    # -- the network -----------------------------------------------------------------------------------
    def _net_on(self, device: torch.device) -> nn.Module:
        check_cuda_in_worker(device)
        net = self._feature_net
        for tensor in (*net.parameters(), *net.buffers()):
            if tensor.device != device:
                net.to(device)
            break
        return net

    def _inputs(self, chunk: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        x = chunk.to(device=device, dtype=dtype)
        return self.preprocess(x) if self.preprocess is not None else x

    def _parse(self, output: Any) -> FeatureOutput:
        return parse_feature_output(output, type(self._feature_net).__name__)

    # -- fit --------------------------------------------------------------------------------------------
    def fit(
        self,
        real_images: torch.Tensor,
        labels: torch.Tensor | Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> SelectiveFilter:
        """Compute the class centroids (eq. 4) and ``N_i`` from the real training images. Returns ``self``.

        One deterministic pass (dropout off, every module in eval mode; modes restored afterwards). The
        centroid of class ``i`` is the mean raw feature map of its real images, per layer; without
        labels there is one centroid (key ``None``, which is also stored with labels: the centroid of
        all real images, used when :meth:`select` gets an unlabelled pool).

        Args:
            real_images: ``[N, C, H, W]`` real training images, in the range ``feature_net`` (after
                ``preprocess``) expects; the same size as the synthetic pool.
            labels: ``[N]`` integer class labels, or ``None``.
            batch_size: images per forward pass (default: the constructor's).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> sf = SelectiveFilter(TinyDropoutNet(), seed=0).fit(torch.rand(5, 1, 8, 8), [0, 1, 1, 0, 1])
            >>> sf.class_counts, [tuple(c.shape) for c in sf.centroids[1]]
            ({None: 5, 0: 2, 1: 3}, [(8, 8, 8), (8, 4, 4)])
        """
        self.check_image(real_images, "set of real images")
        if real_images.ndim != 4:
            raise ConfigError(
                f"SelectiveFilter.fit expects the real training images as a batch [N, C, H, W], got shape "
                f"{tuple(real_images.shape)}. Fix: stack them (torch.stack) or add a batch dimension."
            )
        labels_t = self._check_labels(labels, real_images.shape[0], "real images")
        step = self._batch_size(batch_size)
        device = self.device if self.device is not None else real_images.device
        net = self._net_on(device)
        dtype = network_dtype(net)
        sums: dict[int | None, list[torch.Tensor]] = {}
        counts: dict[int | None, int] = {}
        has_logits = False
        with torch.no_grad(), mc_dropout(net, active=False):
            for start in range(0, real_images.shape[0], step):
                chunk = real_images[start : start + step]
                logits, feats = self._parse(net(self._inputs(chunk, device, dtype)))
                has_logits = logits is not None
                self._accumulate(sums, counts, None, feats, None)
                if labels_t is not None:
                    chunk_labels = labels_t[start : start + step].to(device)
                    for value in torch.unique(chunk_labels).tolist():
                        self._accumulate(sums, counts, int(value), feats, chunk_labels == value)
        centroids = {key: [s / counts[key] for s in layer_sums] for key, layer_sums in sums.items()}
        for key, maps in centroids.items():
            if not all(bool(torch.isfinite(m).all()) for m in maps):
                raise ConfigError(
                    f"{type(self._feature_net).__name__} gave non-finite features for the real images "
                    f"(centroid {key!r}). Fix: check the network and the input range (preprocess)."
                )
        self._centroids = centroids
        self._centroids_hat = {
            key: [F.normalize(m[None], dim=1)[0] for m in maps] for key, maps in centroids.items()
        }
        self._counts = dict(sorted(counts.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)))
        self._labelled = labels_t is not None
        self._has_logits = has_logits
        return self

    @staticmethod
    def _accumulate(
        sums: dict[int | None, list[torch.Tensor]],
        counts: dict[int | None, int],
        key: int | None,
        feats: list[torch.Tensor],
        mask: torch.Tensor | None,
    ) -> None:
        picked = feats if mask is None else [f[mask] for f in feats]
        layer_sums = [f.sum(dim=0) for f in picked]
        n = picked[0].shape[0]
        if key not in sums:
            sums[key], counts[key] = layer_sums, n
            return
        if [tuple(s.shape) for s in sums[key]] != [tuple(s.shape) for s in layer_sums]:
            raise ConfigError("feature_net returned feature maps of different shapes for images of one set.")
        sums[key] = [a + b for a, b in zip(sums[key], layer_sums, strict=True)]
        counts[key] += n

    # -- checks -----------------------------------------------------------------------------------------
    def _batch_size(self, batch_size: int | None) -> int:
        if batch_size is None:
            return self.batch_size
        return check_int("batch_size", batch_size, low=1)

    @staticmethod
    def _check_labels(labels: Any, n: int, what: str) -> torch.Tensor | None:
        if labels is None:
            return None
        t = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
        if t.ndim != 1 or (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
            raise ConfigError(
                f"SelectiveFilter expects labels as a 1-D integer tensor [{n}] (one class index per "
                f"sample), got dtype {t.dtype} and shape {tuple(t.shape)}. Fix: for one-hot labels pass "
                "labels.argmax(1); for float class indices pass labels.long()."
            )
        if t.shape[0] != n:
            raise ConfigError(
                f"SelectiveFilter got {t.shape[0]} labels for {n} {what}; expected one label per sample."
            )
        return t

    # -- selection --------------------------------------------------------------------------------------
    def select(
        self, images: torch.Tensor, labels: torch.Tensor | Sequence[int] | None = None
    ) -> SelectionResult:
        """Run Algorithm 1 on a pool of synthetic samples and return the kept ones with the scores.

        Stage 1 keeps the ``floor(n_i / 2)`` samples of each class ``i`` with the lowest uncertainty;
        stage 2 keeps the ``floor(m_i / 2)`` of those ``m_i`` survivors with the lowest distance to their
        class centroid (ties by pool position). Without labels the pool is one class and the centroid
        is that of all real images. Needs :meth:`fit` first.

        Args:
            images: the pool ``[B, C, H, W]`` (the same size and range as the real images of :meth:`fit`).
            labels: ``[B]`` integer labels the samples were generated for, or ``None``. Every class must
                have had real images in :meth:`fit`.

        Returns:
            a :class:`SelectionResult` (on ``images``' device).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> sf = SelectiveFilter(TinyDropoutNet(), mc_samples=4, seed=0).fit(torch.rand(4, 1, 8, 8))
            >>> res = sf.select(torch.rand(9, 1, 8, 8))  # no labels: one class, variance of the softmax
            >>> int(res.stage1.sum()), len(res), res.uncertainty_kind
            (4, 2, 'variance')
        """
        self.check_image(images, "pool of synthetic samples")
        if images.ndim != 4:
            raise ConfigError(
                f"SelectiveFilter selects from a pool [B, C, H, W], got a single image of shape "
                f"{tuple(images.shape)}. Fix: pass the whole batch of synthetic samples."
            )
        labels_t = self._check_labels(labels, images.shape[0], "pool samples")
        if self._centroids is None:
            raise ConfigError(
                "SelectiveFilter has no class centroids yet. Fix: call fit(real_images, labels) with the "
                "real training images (and their labels) before select or calling the transform."
            )
        if labels_t is not None and not self._labelled:
            raise ConfigError(
                "SelectiveFilter got pool labels, but fit was called without labels (one centroid). "
                "Fix: call fit(real_images, labels) with the real labels, or select without labels."
            )
        if labels_t is not None:
            missing = sorted(set(torch.unique(labels_t).tolist()) - set(self._centroids))
            if missing:
                known = sorted(k for k in self._centroids if k is not None)
                raise ConfigError(
                    f"SelectiveFilter: class(es) {missing} are in the pool but had no real images in fit "
                    f"(classes with a centroid: {known}). Fix: fit on real images of every class you "
                    "generate, or drop those samples."
                )
        kind = self._uncertainty_kind(labels_t is not None)
        device = self.device if self.device is not None else images.device
        generator = self.generator_for(images)
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64, generator=generator).item())
        uncertainty, distance = self._scores(images, labels_t, device, seed, kind)
        uncertainty, distance = uncertainty.to(images.device), distance.to(images.device)
        groups = None if labels_t is None else labels_t.to(images.device)
        everything = torch.ones(images.shape[0], dtype=torch.bool, device=images.device)
        stage1 = lower_half(uncertainty, everything, groups)
        kept = lower_half(distance, stage1, groups)
        indices = kept.nonzero().flatten()
        result = SelectionResult(
            images=images.index_select(0, indices),
            indices=indices,
            labels=None if labels_t is None else labels_t.index_select(0, indices.to(labels_t.device)),
            uncertainty=uncertainty,
            distance=distance,
            stage1=stage1,
            kept=kept,
            uncertainty_kind=kind,
        )
        self._last_result = result
        return result

    def _uncertainty_kind(self, labelled: bool) -> str:
        if self.uncertainty == "entropy" and not self._has_logits:
            raise ConfigError(
                f"uncertainty='entropy' needs class logits, but {type(self._feature_net).__name__} returns "
                "only feature maps. Fix: return (logits, features), or use uncertainty='variance'/'auto'."
            )
        if self.uncertainty != "auto":
            return self.uncertainty
        return "entropy" if labelled and self._has_logits else "variance"

    @contextlib.contextmanager
    def _seeded(self, device: torch.device, seed: int) -> Iterator[None]:
        """The MC-dropout passes draw from the device's default RNG, seeded from our generator and
        restored afterwards."""
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            with torch.random.fork_rng(devices=[index], device_type="cuda"):
                torch.default_generator.manual_seed(seed)
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
                yield
        else:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                yield

    def _scores(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        device: torch.device,
        seed: int,
        kind: str,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._centroids is not None
        net = self._net_on(device)
        dtype = network_dtype(net)
        keys = [None] if labels is None else sorted(int(k) for k in torch.unique(labels).tolist())
        centroids = [
            torch.stack([self._centroids_hat[k][layer].to(device) for k in keys])
            for layer in range(len(self._centroids_hat[keys[0]]))
        ]
        key_tensor = torch.tensor([0 if k is None else k for k in keys], device=device)
        name = type(self._feature_net).__name__
        k_passes = self.mc_samples
        uncertainty, distance = [], []
        with torch.no_grad(), mc_dropout(net, active=True), self._seeded(device, seed):
            for start in range(0, images.shape[0], self.batch_size):
                chunk = images[start : start + self.batch_size]
                x = self._inputs(chunk, device, dtype)
                if labels is None:
                    which = torch.zeros(chunk.shape[0], dtype=torch.long, device=device)
                else:
                    which = torch.searchsorted(
                        key_tensor,
                        labels[start : start + self.batch_size].to(device=device, dtype=torch.long),
                    )
                entropy = torch.zeros(chunk.shape[0], device=device)
                dist = torch.zeros(chunk.shape[0], device=device)
                outputs = []
                for _ in range(k_passes):
                    logits, feats = self._parse(net(x))
                    if len(feats) != len(centroids) or any(
                        tuple(f.shape[1:]) != tuple(c.shape[1:])
                        for f, c in zip(feats, centroids, strict=False)
                    ):
                        raise ConfigError(
                            f"{name} gave feature maps of shapes {[tuple(f.shape[1:]) for f in feats]} for "
                            f"the pool but {[tuple(c.shape[1:]) for c in centroids]} for the real images in "
                            "fit. Fix: give fit and select images of the same size and channels."
                        )
                    if kind == "entropy":
                        if logits is None:
                            raise ConfigError(
                                f"uncertainty='entropy' needs class logits, but {name} returns only feature "
                                "maps. Fix: return (logits, features), or use uncertainty='variance'/'auto'."
                            )
                        logp = torch.log_softmax(logits.float(), dim=-1)
                        entropy += -(logp.exp() * logp).sum(dim=-1)
                    elif logits is not None:
                        outputs.append(torch.softmax(logits.float(), dim=-1))
                    else:
                        outputs.append(pool_features(feats[-1]))
                    for f, c in zip(feats, centroids, strict=True):
                        f_hat = F.normalize(f, dim=1)
                        sq = (f_hat - c[which]).pow(2).sum(dim=1)
                        dist += sq.flatten(1).mean(dim=1) if sq.ndim > 1 else sq
                if kind == "entropy":
                    uncertainty.append(entropy / k_passes)
                else:
                    uncertainty.append(torch.stack(outputs).var(dim=0, correction=0).mean(dim=-1))
                distance.append(dist / k_passes)
        u, d = torch.cat(uncertainty), torch.cat(distance)
        if not (bool(torch.isfinite(u).all()) and bool(torch.isfinite(d).all())):
            raise ConfigError(
                f"{name} gave non-finite scores for the pool (NaN/Inf logits or features). Fix: check the "
                "network and the range of the images it is given (preprocess)."
            )
        return u, d

    # -- pool sizes -------------------------------------------------------------------------------------
    def pool_size(
        self,
        n_real: int | Mapping[int, int] | None = None,
        labels: torch.Tensor | Sequence[int] | None = None,
    ) -> dict[int | None, int]:
        """How many synthetic samples to generate per class: ``4 * round(r * N_i)`` (Algorithm 1's
        ``4 r N_i``, rounded half up so the pool keeps exactly ``round(r * N_i)``; at least 4 for a class
        with real images).

        ``N_i`` comes from ``labels`` (the real labels, counted), else from ``n_real`` (an int: one
        unlabelled class ``None``; a mapping class -> count), else from :meth:`fit` (per class when it had
        labels, else ``{None: N}``).

        Example:
            >>> sf = SelectiveFilter(nn.Dropout(), ratio=0.5)
            >>> sf.pool_size(10), sf.pool_size({0: 3, 1: 7}), sf.pool_size(labels=[0, 0, 1])
            ({None: 20}, {0: 8, 1: 16}, {0: 4, 1: 4})
        """
        if labels is not None:
            labels_t = self._check_labels(labels, len(labels), "real labels")
            assert labels_t is not None
            values, n = torch.unique(labels_t, return_counts=True)
            counts: dict[int | None, int] = {int(v): int(c) for v, c in zip(values, n, strict=True)}
        elif n_real is None:
            if not self._counts:
                raise ConfigError(
                    "pool_size needs the real set's size. Fix: call fit(real_images, labels) first, or "
                    "pass n_real (an int or a mapping class -> count) or labels."
                )
            counts = {k: v for k, v in self._counts.items() if k is not None or not self._labelled}
        elif isinstance(n_real, Mapping):
            counts = {int(k): int(v) for k, v in n_real.items()}
        elif isinstance(n_real, int) and not isinstance(n_real, bool):
            counts = {None: n_real}
        else:
            raise ConfigError(f"n_real must be an int, a mapping class -> count or None, got {n_real!r}.")
        if any(v < 0 for v in counts.values()):
            raise ConfigError(f"real sample counts must be >= 0, got {counts}.")
        return {k: 4 * self._target(v) for k, v in counts.items()}

    def _target(self, n: int) -> int:
        return 0 if n == 0 else max(1, half_round_up(self.ratio * n))

    def generate_and_select(
        self,
        source: Callable[..., torch.Tensor],
        n_real: int | Mapping[int, int] | None = None,
    ) -> SelectionResult:
        """Generate the pool of :meth:`pool_size` with ``source`` and :meth:`select` from it:
        ``round(r * N_i)`` samples of each class are kept.

        Fitted with labels (or given a mapping ``n_real``), ``source(n, label)`` is called once per class
        and must return ``[n, C, H, W]`` samples of that class (a conditional sampler); otherwise
        ``source(n)`` is called once (e.g. ``SG2Sample(...).sample``).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> sf = SelectiveFilter(TinyDropoutNet(), ratio=1.0, mc_samples=2, seed=0)
            >>> sf = sf.fit(torch.rand(3, 1, 8, 8), [0, 1, 1])
            >>> res = sf.generate_and_select(lambda n, label: torch.rand(n, 1, 8, 8))
            >>> res.labels.tolist()  # round(1.0 * N_i) per class
            [0, 1, 1]
        """
        if not callable(source):
            raise ConfigError(f"source must be a callable sampler, got {type(source).__name__}.")
        sizes = self.pool_size(n_real)
        pools: list[torch.Tensor] = []
        pool_labels: list[torch.Tensor] = []
        for key, n in sizes.items():
            if n == 0:
                continue
            out = source(n) if key is None else source(n, key)
            if not isinstance(out, torch.Tensor) or out.ndim != 4 or out.shape[0] != n:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ConfigError(
                    f"source({n}{'' if key is None else f', {key}'}) returned {got}; expected a tensor "
                    f"[{n}, C, H, W] of synthetic samples."
                )
            pools.append(out)
            if key is not None:
                pool_labels.append(torch.full((n,), key, dtype=torch.long, device=out.device))
        if not pools:
            raise ConfigError("there is nothing to generate: the real set has no samples (pool_size is 0).")
        images = torch.cat(pools)
        labels = torch.cat(pool_labels) if pool_labels else None
        return self.select(images, labels)

    # -- as a transform ---------------------------------------------------------------------------------
    def filter_params(self, images: Any, labels: Any | None) -> dict[str, Any]:
        """One call's selection (:meth:`select`): the kept ``"indices"``, their ``"labels"`` and the whole
        :class:`SelectionResult` (also in :attr:`last_result`). Called as a transform, ``images [B, C, H, W]``
        gives the kept ``[M, C, H, W]`` and ``(images, labels)`` (a tuple, a list or two arguments) gives
        ``(kept_images, kept_labels)``; ``tv_tensors.Image`` stays wrapped (:class:`BatchFilter`).

        Example:
            >>> _ = torch.manual_seed(0)
            >>> sf = SelectiveFilter(TinyDropoutNet(), mc_samples=2, seed=0).fit(torch.rand(4, 1, 8, 8))
            >>> tuple(sf(torch.rand(8, 1, 8, 8)).shape)
            (2, 1, 8, 8)
        """
        result = self.select(images, labels)
        return {"indices": result.indices, "labels": result.labels, "result": result}
