"""The base class every latent-transforms augmentation shares.

:class:`RandomTransform` is a :class:`torchvision.transforms.v2.Transform`: it works inside
``v2.Compose`` / ``v2.RandomApply``, on ``[C, H, W]`` and ``[B, C, H, W]`` tensors, plain or wrapped in
``tv_tensors.Image`` (and ``tv_tensors.Mask`` for transforms that move geometry), alone or in a dict or
tuple with other inputs. It owns everything the four transforms have in common:

- ``p``: the probability that a sample is augmented (torchvision's ``p``, MONAI's ``prob``; the paper's
  ``p_aug`` is ``1 - p``). A batch gets one Bernoulli draw per sample and only the chosen samples are
  computed; ``p = 0`` returns the input object itself.
- Randomness only from a ``torch.Generator`` the transform owns (``seed=`` or :meth:`set_random_state`),
  drawn on the CPU so a seed gives the same parameters on any device. Inside a DataLoader worker each
  call is keyed by (seed, the loader's epoch seed, the sample's content), so the augmented data do not
  depend on ``num_workers``.
- Value ranges: the caller's range in, the caller's range out. ``value_range="physical"``
  (default: HU for CT, scanner units for MRI, through the GAN bundle's intensity windows),
  ``"unit"`` (``[0, 1]`` windowed) or ``"generator"`` (``[-1, 1]``); ``uint8`` input is always 8-bit
  windowed (0-255). Shape, dtype and device are preserved.
- Input checks with the fix in the message: not a tensor, wrong rank, empty batch, NaN/Inf, wrong
  channel count or resolution, values outside the declared range.

Subclasses implement :meth:`draw_params` (per-sample parameters for a batch) and :meth:`apply_batch`
(the work on the chosen samples), and :meth:`repr_params`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConfigError

__all__ = [
    "VALUE_RANGES",
    "PackedGenerator",
    "RandomTransform",
    "cast_like",
    "check_cuda_in_worker",
    "from_working_range",
    "keep_memory_format",
    "pack_generators",
    "to_working_range",
    "unpack_generators",
]

#: What a float input's values mean; see :class:`RandomTransform`.
VALUE_RANGES = ("physical", "unit", "generator")
#: ``value_range="generator"`` / ``"unit"`` inputs may overshoot their range by this much.
RANGE_TOLERANCE = 1e-3
_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_SEED_BITS = 63
# Inputs that go with an image rather than being one (never the image a call draws its parameters for).
_TARGETS = (tv_tensors.Mask, tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)


def _seed_from_global() -> int:
    """A seed drawn from torch's global RNG (so ``torch.manual_seed`` before construction fixes it)."""
    return int(torch.randint(0, 2**62, (), dtype=torch.int64).item())


def _content_digest(x: torch.Tensor) -> bytes:
    data = x.detach().to("cpu").contiguous()
    if data.dtype == torch.bfloat16:
        data = data.to(torch.float32)
    return hashlib.blake2b(data.numpy().tobytes(), digest_size=16).digest() + str(tuple(x.shape)).encode()


def check_cuda_in_worker(device: torch.device) -> None:
    """Refuse CUDA inside a forked DataLoader worker, naming the three ways out.

    Example:
        >>> check_cuda_in_worker(torch.device("cpu"))  # CPU is always fine
    """
    if device.type != "cuda":
        return
    if torch.utils.data.get_worker_info() is not None and torch.cuda._is_in_bad_fork():
        raise ConfigError(
            "this transform was asked to run on CUDA inside a DataLoader worker that was forked from a "
            "process that had already initialised CUDA; CUDA cannot run there. Fix: keep the workers on "
            "the CPU and apply the transform to whole batches in the main process with "
            "latent_transforms.GPUAugment(loader, transform, device='cuda'), or use MONAI's "
            "ThreadDataLoader, or start the workers with the 'spawn' method "
            "(DataLoader(..., multiprocessing_context='spawn'))."
        )


def to_working_range(
    x: torch.Tensor, value_range: str, windows: Sequence[IntensityWindow] | None
) -> torch.Tensor:
    """Input in the caller's range -> float32 ``[-1, 1]`` (the generator's range), per channel.

    ``x`` is ``[B, C, H, W]``. ``uint8`` is 8-bit windowed (0 -> -1, 255 -> 1); other integer dtypes and
    ``value_range="physical"`` floats go through ``windows`` (one per channel; values outside a window are
    clipped); ``"unit"`` maps ``[0, 1]`` linearly; ``"generator"`` is taken as is.

    Example:
        >>> ct = [IntensityWindow(-1000.0, 2000.0, "HU")]
        >>> to_working_range(torch.tensor([[[[500.0]]]]), "physical", ct).item()
        0.0
        >>> to_working_range(torch.tensor([[[[255]]]], dtype=torch.uint8), "physical", None).item()
        1.0
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 127.5 - 1.0
    xf = x.to(torch.float32)
    if value_range == "generator":
        return xf
    if value_range == "unit":
        return xf * 2.0 - 1.0
    if windows is None:
        raise ConfigError(
            "value_range='physical' needs intensity windows (a GAN bundle's, or windows=[...]), but this "
            "transform has none. Fix: pass value_range='generator' for images in [-1, 1], 'unit' for [0, 1], "
            "or windows=[IntensityWindow(...), ...] one per channel."
        )
    return torch.cat([w.normalize(xf[:, i : i + 1]) for i, w in enumerate(windows)], dim=1)


def from_working_range(
    y: torch.Tensor, like: torch.Tensor, value_range: str, windows: Sequence[IntensityWindow] | None
) -> torch.Tensor:
    """Inverse of :func:`to_working_range`: ``[-1, 1]`` floats back to ``like``'s range and dtype.

    Example:
        >>> like = torch.zeros(1, dtype=torch.uint8)
        >>> out = from_working_range(torch.zeros(1, 1, 1, 1), like, "physical", None)
        >>> out.dtype, out.item()
        (torch.uint8, 128)
    """
    if like.dtype == torch.uint8:
        return ((y.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    if value_range == "generator":
        out = y
    elif value_range == "unit":
        out = (y + 1.0) / 2.0
    else:
        assert windows is not None
        out = torch.cat([w.denormalize(y[:, i : i + 1]) for i, w in enumerate(windows)], dim=1)
    return cast_like(out, like)


def keep_memory_format(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in ``like``'s memory layout: channels-last when ``like`` is a channels-last ``[B, C, H, W]``
    batch (and not also contiguous), else ``y`` itself.

    Example:
        >>> like = torch.zeros(2, 3, 4, 4).to(memory_format=torch.channels_last)
        >>> keep_memory_format(torch.ones(2, 3, 4, 4), like).is_contiguous(memory_format=torch.channels_last)
        True
    """
    if (
        y.ndim == 4
        and like.ndim == 4
        and like.is_contiguous(memory_format=torch.channels_last)
        and not like.is_contiguous()
    ):
        return y.contiguous(memory_format=torch.channels_last)
    return y


def cast_like(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in ``like``'s dtype: integer dtypes rounded and clamped to their range.

    Example:
        >>> cast_like(torch.tensor([-3.6, 300.2]), torch.zeros(1, dtype=torch.uint8)).tolist()
        [0, 255]
    """
    if like.dtype in _INT_DTYPES:
        info = torch.iinfo(like.dtype)
        return y.round().clamp(info.min, info.max).to(like.dtype)
    return y.to(like.dtype)


class PackedGenerator:
    """A CPU ``torch.Generator``'s state as plain bytes, for pickling.

    A ``torch.Generator`` pickles its state as a tensor, which ``torch.multiprocessing`` sends to a
    ``spawn``-ed DataLoader worker through shared memory; that fails on some systems ("unable to resize
    file"). Bytes always travel.

    Example:
        >>> g = torch.Generator().manual_seed(3)
        >>> again = PackedGenerator(g).unpack()
        >>> torch.equal(torch.rand(2, generator=again), torch.rand(2, generator=g))
        True
    """

    def __init__(self, generator: torch.Generator) -> None:
        self.state = generator.get_state().numpy().tobytes()

    def unpack(self) -> torch.Generator:
        """A CPU ``torch.Generator`` in the packed state."""
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(self.state), dtype=torch.uint8))
        return generator


def pack_generators(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (an object's ``__dict__``) with every CPU ``torch.Generator`` value packed as bytes.

    Example:
        >>> packed = pack_generators({"_generator": torch.Generator(), "p": 0.5})
        >>> type(packed["_generator"]).__name__, packed["p"]
        ('PackedGenerator', 0.5)
    """
    return {
        k: PackedGenerator(v) if isinstance(v, torch.Generator) and v.device.type == "cpu" else v
        for k, v in state.items()
    }


def unpack_generators(state: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`pack_generators`.

    Example:
        >>> state = unpack_generators(pack_generators({"_generator": torch.Generator().manual_seed(1)}))
        >>> isinstance(state["_generator"], torch.Generator)
        True
    """
    return {k: v.unpack() if isinstance(v, PackedGenerator) else v for k, v in state.items()}


class RandomTransform(v2.Transform):
    """Base class of :class:`LatentAugment`, :class:`SG2Sample`, :class:`StandardDA` and
    :class:`SelectiveFilter`: per-sample ``p``, seeding, shapes, ranges and input checks.

    Args:
        p: probability that a sample is augmented, in ``[0, 1]``.
        seed: seed of the transform's ``torch.Generator``; ``None`` draws one from torch's global RNG
            (so ``torch.manual_seed`` before construction makes runs repeatable).
        value_range: what float inputs mean: ``"physical"`` (through intensity windows), ``"unit"``
            (``[0, 1]``) or ``"generator"`` (``[-1, 1]``). ``uint8`` inputs are always 0-255 windowed.
        device: where the work runs (``None``: the input's device). The output comes back to the
            input's device.

    Subclass contract:
        - :meth:`draw_params` ``(batch, generator) -> dict``: per-sample parameters, each a tensor (or
          list) with ``batch`` as its first dimension, drawn only from ``generator``.
        - :meth:`apply_batch` ``(x, params, kind) -> Tensor``: the work on the chosen samples ``x``
          ``[n, C, H, W]`` float32 (in ``[-1, 1]`` when :attr:`needs_generator_range`, else in the
          caller's range), with ``params`` sliced to them; ``kind`` is ``"image"`` or ``"mask"``.
        - :meth:`repr_params`: the constructor parameters shown by ``repr``.
        - optionally :meth:`expected_channels`, :meth:`expected_resolution`, :meth:`windows`.

    Example:
        >>> class Negate(RandomTransform):
        ...     needs_generator_range = False
        ...     def apply_batch(self, x, params, kind):
        ...         return -x
        ...     def repr_params(self):
        ...         return {"p": self.p}
        >>> t = Negate(p=1.0, seed=0)
        >>> t(torch.ones(2, 1, 4, 4)).sum().item()
        -32.0
        >>> t
        Negate(p=1.0)
    """

    #: The work needs images in ``[-1, 1]`` (GAN transforms) rather than the caller's own values.
    needs_generator_range: ClassVar[bool] = True
    #: ``tv_tensors.Mask`` inputs follow the transform (nearest neighbour); else they are refused.
    supports_masks: ClassVar[bool] = False

    def __init__(
        self,
        *,
        p: float = 1.0,
        seed: int | None = None,
        value_range: str = "physical",
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
            raise ConfigError(f"p must be a probability in [0, 1], got {p!r}.")
        if value_range not in VALUE_RANGES:
            raise ConfigError(f"value_range must be one of {VALUE_RANGES}, got {value_range!r}.")
        self.p = float(p)
        self.value_range = value_range
        self.device = torch.device(device) if device is not None else None
        self.seed = int(seed) if seed is not None else _seed_from_global()
        self._generator = torch.Generator().manual_seed(self.seed)
        self._last_params: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return pack_generators(super().__getstate__())  # spawn-safe: the generator state as bytes

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(unpack_generators(state))

    # -- subclass hooks ----------------------------------------------------------------------------
    def draw_params(self, batch: int, generator: torch.Generator) -> dict[str, Any]:
        """Per-sample parameters for a batch of ``batch`` (first dimension ``batch``); none by default."""
        return {}

    def apply_batch(self, x: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        """Transform the chosen samples ``x`` ``[n, C, H, W]`` (float32) with their ``params``."""
        raise NotImplementedError

    def repr_params(self) -> dict[str, Any]:
        """Constructor parameters shown by ``repr`` (every one that changes the output)."""
        return {"p": self.p, "seed": self.seed}

    def expected_channels(self) -> int | None:
        """Channel count inputs must have (``None``: any)."""
        return None

    def expected_resolution(self) -> int | None:
        """Square side inputs must have (``None``: any)."""
        return None

    def windows(self) -> Sequence[IntensityWindow] | None:
        """Intensity windows for ``value_range="physical"``, one per channel (``None``: none known)."""
        return None

    def accepts_dataset_keys(self, keys: Sequence[str]) -> bool:
        """Whether this transform gets the dataset keys of a dict item or batch (``params["keys"]``, and
        the key of its draws inside DataLoader workers) when :func:`~latent_transforms.GPUAugment`, the
        collate helper or a MONAI dictionary variant has them. Default: yes; LatentAugment only when its
        cache holds one of them (it looks its latents up by them)."""
        return True

    # -- randomness --------------------------------------------------------------------------------
    @property
    def generator(self) -> torch.Generator:
        """The CPU ``torch.Generator`` every random draw comes from (outside DataLoader workers)."""
        return self._generator

    @generator.setter
    def generator(self, generator: torch.Generator) -> None:
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise ConfigError("generator must be a CPU torch.Generator (draws are made on the CPU).")
        self._generator = generator

    def set_random_state(self, seed: int | None = None, state: Any | None = None) -> RandomTransform:
        """Reseed the transform (MONAI's signature): ``seed`` an int, or ``state`` a NumPy
        ``RandomState`` / ``Generator`` to draw the seed from. Returns ``self``.

        Example:
            >>> class Noise(RandomTransform):
            ...     needs_generator_range = False
            ...     def draw_params(self, batch, generator):
            ...         return {"n": torch.rand(batch, generator=generator)}
            ...     def apply_batch(self, x, params, kind):
            ...         return x + params["n"].view(-1, 1, 1, 1)
            >>> t = Noise(seed=1)
            >>> a = t(torch.zeros(1, 2, 2)); b = t.set_random_state(1)(torch.zeros(1, 2, 2))
            >>> torch.equal(a, b)
            True
        """
        if seed is None and state is not None:
            seed = int(state.integers(0, 2**31) if hasattr(state, "integers") else state.randint(0, 2**31))
        if seed is None:
            seed = _seed_from_global()
        self.seed = int(seed)
        self._generator = torch.Generator().manual_seed(self.seed)
        return self

    def generator_for(self, x: torch.Tensor, key: str | None = None) -> torch.Generator:
        """The generator for one call on ``x``: the transform's own, or inside a DataLoader worker one
        keyed by (seed, the loader's epoch seed, ``key`` or ``x``'s content)."""
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self._generator
        epoch_seed = int(info.seed) - int(info.id)  # the same in every worker of one epoch
        digest = hashlib.blake2b(f"{self.seed}|{epoch_seed}|".encode(), digest_size=8)
        digest.update(key.encode() if key is not None else _content_digest(x))
        seed = int.from_bytes(digest.digest(), "little") & ((1 << _SEED_BITS) - 1)
        return torch.Generator().manual_seed(seed)

    # -- checks ------------------------------------------------------------------------------------
    def check_image(self, x: Any, what: str = "input") -> None:
        """Raise :class:`ConfigError` unless ``x`` is a finite ``[C, H, W]`` / ``[B, C, H, W]`` image this
        transform can take."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise ConfigError(
                f"{name} expects a torch.Tensor [C, H, W] or [B, C, H, W], got {type(x).__name__}. Fix: "
                "convert with torch.as_tensor or torchvision.transforms.v2.ToImage()."
            )
        if x.ndim not in (3, 4):
            raise ConfigError(
                f"{name} expects [C, H, W] or [B, C, H, W], got a {x.ndim}-D tensor of shape "
                f"{tuple(x.shape)}. Fix: add a channel dimension (x[None]) or stack paired modalities as "
                "channels."
            )
        if x.numel() == 0:
            raise ConfigError(
                f"{name} got an empty {what} of shape {tuple(x.shape)}; pass at least one sample."
            )
        if not (x.is_floating_point() or x.dtype in _INT_DTYPES):
            raise ConfigError(f"{name} expects a float or integer image, got dtype {x.dtype}.")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = x.reshape(-1, *x.shape[-3:]) if x.ndim == 4 else x[None]
            rows = (~torch.isfinite(bad)).flatten(1).any(1).nonzero().flatten().tolist()
            raise ConfigError(
                f"{name} got NaN or Inf values (in sample(s) {rows[:8]}). Fix: clean the data upstream "
                "(e.g. torch.nan_to_num) before augmenting."
            )
        channels = self.expected_channels()
        if channels is not None and x.shape[-3] != channels:
            raise ConfigError(
                f"{name} expects {channels} channels (paired modalities "
                f"{self.modality_names() or '?'} in that order), got {x.shape[-3]} (shape {tuple(x.shape)}). "
                "Fix: stack the modalities as channels in the GAN bundle's order."
            )
        res = self.expected_resolution()
        if res is not None and tuple(x.shape[-2:]) != (res, res):
            raise ConfigError(
                f"{name} expects {res} x {res} images (the GAN's resolution), got {tuple(x.shape[-2:])}. "
                f"Fix: resize first (e.g. v2.Resize({res}) or open the dataset with resolution={res})."
            )
        if x.is_floating_point() and self.needs_generator_range and self.value_range in ("generator", "unit"):
            low, high = (-1.0, 1.0) if self.value_range == "generator" else (0.0, 1.0)
            lo, hi = float(x.min()), float(x.max())
            if lo < low - RANGE_TOLERANCE or hi > high + RANGE_TOLERANCE:
                raise ConfigError(
                    f"{name} was told value_range={self.value_range!r} ([{low:g}, {high:g}]) but the input "
                    f"spans [{lo:.4g}, {hi:.4g}]. Fix: value_range='physical' for HU / scanner units "
                    "(the GAN bundle's windows), or rescale the input."
                )

    def modality_names(self) -> list[str] | None:
        """The channel names, when known (for error messages)."""
        return None

    # -- torchvision v2 protocol ---------------------------------------------------------------------
    def check_inputs(self, flat_inputs: list[Any]) -> None:
        """Refuse a call with no tensor at all (torchvision would pass it through untouched)."""
        if not any(isinstance(inpt, torch.Tensor) for inpt in flat_inputs):
            got = sorted({type(inpt).__name__ for inpt in flat_inputs})
            raise ConfigError(
                f"{type(self).__name__} expects a torch.Tensor [C, H, W] or [B, C, H, W], got {got}. Fix: "
                "convert with torch.as_tensor or torchvision.transforms.v2.ToImage()."
            )

    def _first_image(self, flat_inputs: Sequence[Any]) -> torch.Tensor:
        for inpt in flat_inputs:
            if isinstance(inpt, torch.Tensor) and not isinstance(inpt, _TARGETS):
                return inpt
        raise ConfigError(
            f"{type(self).__name__} found no image among its inputs (got "
            f"{[type(i).__name__ for i in flat_inputs]}). Fix: pass a torch.Tensor [C, H, W] or [B, C, H, W]."
        )

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """One draw per call, shared by every input of the call (torchvision v2 protocol)."""
        image = self._first_image(flat_inputs)
        self.check_image(image)
        return self.params_for(image)

    def params_for(self, image: torch.Tensor, key: str | Sequence[str] | None = None) -> dict[str, Any]:
        """Draw the parameters of one call on ``image`` (``[C, H, W]`` or ``[B, C, H, W]``).

        Returns a dict with ``"apply"`` (bool ``[B]``: which samples are augmented), ``"batched"`` and
        the subclass's per-sample parameters; replay them with :meth:`transform`.
        """
        batch = image.shape[0] if image.ndim == 4 else 1
        joined = key if isinstance(key, str) or key is None else "|".join(map(str, key))
        generator = self.generator_for(image, joined)
        apply = torch.rand(batch, generator=generator) < self.p
        params = {"apply": apply, "batched": image.ndim == 4, "batch": batch}
        params.update(self.draw_params(batch, generator))
        self._last_params = params
        return params

    @property
    def last_params(self) -> dict[str, Any] | None:
        """The parameters of the last call (for replaying on another input with :meth:`transform`)."""
        return self._last_params

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Apply drawn ``params`` to one input (torchvision v2 protocol); masks follow when supported."""
        if isinstance(inpt, (tv_tensors.BoundingBoxes, tv_tensors.KeyPoints)):
            return self.transform_points(inpt, params)
        kind = "mask" if isinstance(inpt, tv_tensors.Mask) else "image"
        if kind == "mask" and not self.supports_masks:
            raise ConfigError(
                f"{type(self).__name__} makes new images from a GAN, which a segmentation mask cannot "
                "follow. Fix: apply it to images only (or regenerate the labels)."
            )
        if kind == "image":
            self.check_image(inpt)
        x = inpt.as_subclass(torch.Tensor) if isinstance(inpt, tv_tensors.TVTensor) else inpt
        # A label map of a batch may come without its channel: [B, H, W] -> [B, 1, H, W].
        channelless = kind == "mask" and params["batched"] and x.ndim == 3
        xb = x[:, None] if channelless else (x if x.ndim == 4 else x[None])
        if xb.shape[0] != params["batch"]:
            raise ConfigError(
                f"{type(self).__name__}: inputs of one call must share the batch size; the first has "
                f"{params['batch']}, this one {xb.shape[0]}."
            )
        chosen = params["apply"].nonzero().flatten()
        if chosen.numel() == 0:
            return inpt
        sub = xb.index_select(0, chosen.to(xb.device))
        sliced = self.slice_params(params, chosen)
        out_sub = self._run(sub, sliced, kind)
        if chosen.numel() == xb.shape[0]:
            out = out_sub
        else:
            out = xb.clone() if not out_sub.requires_grad else xb.detach().clone().to(out_sub.dtype)
            out = out.index_copy(0, chosen.to(xb.device), out_sub)
        out = out[:, 0] if channelless else (out if x.ndim == 4 else out[0])
        out = keep_memory_format(out, x)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def transform_points(self, inpt: Any, params: dict[str, Any]) -> Any:
        """``tv_tensors.BoundingBoxes`` / ``KeyPoints`` of a call: a transform that makes new images has no
        geometry they could follow, so they are refused (geometric transforms override this)."""
        raise ConfigError(
            f"{type(self).__name__} makes new images, which {type(inpt).__name__} cannot follow. Fix: apply "
            "it to images only (and regenerate the annotations), or use a geometric transform (StandardDA)."
        )

    # Older torchvision (< 0.21) names of the two protocol methods.
    def _get_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return self.make_params(flat_inputs)

    def _transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self.transform(inpt, params)

    @staticmethod
    def slice_params(params: Mapping[str, Any], chosen: torch.Tensor) -> dict[str, Any]:
        """The per-sample entries of ``params`` restricted to the samples ``chosen`` (``[n]`` long)."""
        batch = params["batch"]
        out: dict[str, Any] = {}
        for name, value in params.items():
            if name in ("apply", "batched", "batch", "size"):
                continue
            if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == batch:
                out[name] = value.index_select(0, chosen.to(value.device))
            elif isinstance(value, (list, tuple)) and len(value) == batch:
                out[name] = [value[i] for i in chosen.tolist()]
            else:
                out[name] = value
        return out

    def _run(self, sub: torch.Tensor, params: dict[str, Any], kind: str) -> torch.Tensor:
        device = self.device if self.device is not None else sub.device
        check_cuda_in_worker(device)
        if kind == "mask" or not self.needs_generator_range:
            work = sub.to(device=device, dtype=torch.float64 if sub.dtype == torch.float64 else torch.float32)
            y = self.apply_batch(work, params, kind)
            return cast_like(y, sub).to(sub.device)
        windows = self.windows()
        work = to_working_range(sub.to(device), self.value_range, windows)
        y = self.apply_batch(work, params, kind)
        out = from_working_range(y, sub, self.value_range, windows)
        return out.to(sub.device)

    # -- display -----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.repr_params().items())
        return f"{type(self).__name__}({args})"
