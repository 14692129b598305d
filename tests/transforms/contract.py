"""``check_transform``: the contract every transform of the library keeps, as one test helper.

Every array transform (LatentAugment, SG2Sample, StandardDA), every MONAI dictionary variant
(LatentAugmentd, SG2Sampled, StandardDAd) and, where the contract applies to a batch filter,
SelectiveFilter pass it:

- shape, dtype and device kept, values in the declared range (the GAN's windows or ``value_range`` for
  GAN transforms; each channel's own ``[min, max]`` for a geometric transform with ``fill="min"``); a
  filter keeps dtype, device and the sample shape and returns at most the batch;
- memory layout kept: contiguous in, contiguous out (``out.view(-1)`` works), ``torch.channels_last``
  in, ``channels_last`` out, and a ``[C, H, W]`` view of an ``[H, W, C]`` buffer keeps its strides
  (whatever layout the GAN or the resampling works in);
- ``p = 0`` is the identity (the input object itself; a dict's values are the input objects);
- seeding: the same seed gives the same output, and ``set_random_state`` restarts the stream;
- pickling: a pickled copy continues the same draws, with the same ``repr``;
- ``v2.Compose`` and ``v2.RandomApply``, ``tv_tensors`` inputs (the wrapper kept), MONAI ``Compose``;
- DataLoader workers (``check_workers``, slow): the same data for 1 and 2 forked workers (each draw
  keyed by the seed, the loader's epoch seed and the sample), and a ``spawn`` worker gives what a
  forked one gives. The main process (``num_workers=0``) draws from the transform's own generator
  instead, so its data are reproducible with the seed but differ from the workers' (documented).

A case is a factory ``make(p, seed) -> transform`` and an example input (a batch ``[B, C, H, W]``, a
labelled call ``(images [B, C, H, W], labels [B])`` for the transforms over a conditional generator, or a
dict of ``[1, H, W]`` / ``[B, 1, H, W]`` entries for the dictionary variants). A labelled call must give
its labels back unchanged (the very object), whatever the transform does to the images.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

Make = Callable[[float, int], Any]


# -- comparing outputs ---------------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and type(x) is not torch.Tensor:
        return x.as_subclass(torch.Tensor)
    return x


def assert_same(a: Any, b: Any) -> None:
    """``a`` and ``b`` hold bit-identical tensors (dicts and tuples compared entry by entry)."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping) and set(a) == set(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(_plain(a), _plain(b))
    else:
        assert a == b


def _labelled(data: Any) -> bool:
    """Whether ``data`` is a labelled call ``(images, labels)``."""
    return isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor)


def _images(data: Any, keys: list[str] | None) -> torch.Tensor:
    """The image(s) of an input or output as one plain ``[..., C, H, W]`` tensor (a dict's keys stacked)."""
    if _labelled(data):
        return _plain(data[0])
    if isinstance(data, Mapping):
        assert keys is not None
        return torch.cat([_plain(torch.as_tensor(data[k])) for k in keys], dim=-3)
    return _plain(data)


def _keys(t: Any) -> list[str] | None:
    return [str(k) for k in t.keys] if hasattr(t, "keys") and hasattr(t, "transform") else None


def _array(t: Any) -> Any:
    """The array transform (a dictionary variant's ``transform``)."""
    return t.transform if _keys(t) is not None else t


def _changed(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    xb, ob = (x, out) if x.ndim == 4 else (x[None], out[None])
    return (xb != ob).flatten(1).any(1)


def assert_in_range(t: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    """Values in the declared range: a GAN transform's windows / ``value_range`` (``uint8``: always
    0-255 by its dtype); a geometric one within each sample's per-channel input ``[min, max]``."""
    array = _array(t)
    if out.dtype == torch.uint8:
        return
    if array.needs_generator_range:
        if array.value_range == "unit":
            assert out.min() >= 0 and out.max() <= 1
        elif array.value_range == "generator":
            assert out.min() >= -1 and out.max() <= 1
        else:
            for c, window in enumerate(array.windows()):
                channel = out[..., c, :, :]
                assert channel.min() >= window.low and channel.max() <= window.high
        return
    xb, ob = (x, out) if x.ndim == 4 else (x[None], out[None])
    lo, hi = xb.amin(dim=(2, 3)).double(), xb.amax(dim=(2, 3)).double()
    tol = 1e-6 * (float(hi.abs().max()) + 1.0) if x.is_floating_point() else 0.0
    assert (ob.amin(dim=(2, 3)).double() >= lo - tol).all() and (
        ob.amax(dim=(2, 3)).double() <= hi + tol
    ).all()


# -- the checks ----------------------------------------------------------------------------------------
def check_shape_dtype_device_and_range(make: Make, sample: Any, *, filter: bool = False) -> None:
    """Shape, dtype and device kept and values in range (a filter: at most the batch, sample shape kept);
    ``p = 1`` changes every sample of a GAN or geometric transform."""
    t = make(1.0, 0)
    keys = _keys(t)
    out = t(sample)
    x, y = _images(sample, keys), _images(out, keys)
    assert y.dtype == x.dtype and y.device == x.device
    if filter:
        assert y.shape[1:] == x.shape[1:] and 0 < y.shape[0] <= x.shape[0]
        return
    assert y.shape == x.shape
    assert_in_range(t, x, y)
    assert bool(_changed(x, y).all())
    if _labelled(sample):  # the labels come back as they went in
        assert _labelled(out) and out[1] is sample[1]
    elif isinstance(sample, Mapping):  # the other entries of an item pass through
        for k, v in sample.items():
            if k not in keys:
                assert out[k] is v
        for k in keys:
            assert type(out[k]) is type(sample[k]) and out[k].shape == sample[k].shape
    elif x.ndim == 4:  # one sample [C, H, W] in, one sample out
        one = make(1.0, 0)(x[0])
        assert one.shape == x[0].shape and one.dtype == x.dtype


def _image_values(data: Any, keys: list[str] | None) -> list[torch.Tensor]:
    """The image tensors of an input or output (a dict's image keys, each on its own), plain."""
    if isinstance(data, Mapping):
        assert keys is not None
        return [_plain(data[k]) for k in keys]
    if _labelled(data):
        return [_plain(data[0])]
    return [_plain(data)]


def _relayout(data: Any, keys: list[str] | None, change: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``data`` with ``change`` applied to its image tensors (a dict's other entries kept)."""
    if isinstance(data, Mapping):
        return {k: change(v) if k in (keys or []) else v for k, v in data.items()}
    if _labelled(data):  # (images, labels): the labels are not an image
        return (change(data[0]), data[1])
    return change(data)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def _hwc_view(x: torch.Tensor) -> torch.Tensor:
    """The same values as ``[..., C, H, W]`` over an ``[..., H, W, C]`` buffer (an image from NumPy/PIL)."""
    return x.movedim(-3, -1).contiguous().movedim(-1, -3)


def _laid_out_like(y: torch.Tensor, x: torch.Tensor) -> bool:
    """Whether ``y`` is dense with its dimensions in ``x``'s memory order (size-1 dimensions, whose
    strides mean nothing, aside)."""
    order = sorted(range(x.ndim), key=lambda d: (-x.stride(d), d))
    return y.ndim == x.ndim and y.permute(order).is_contiguous()


def check_memory_layout(make: Make, sample: Any, *, filter: bool = False) -> None:
    """The caller's memory layout comes back: contiguous in, contiguous out (``view(-1)`` works);
    ``channels_last`` in, ``channels_last`` out; a ``[C, H, W]`` view of an ``[H, W, C]`` buffer, that
    order. Checked with every sample augmented and with some kept (``p = 0.5``)."""
    keys = _keys(make(1.0, 0))
    layouts: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
        ("contiguous", lambda x: x.contiguous()),
        ("channels_last", _channels_last),
        ("hwc view", _hwc_view),
    ]
    for p in (1.0, 0.5) if not filter else (1.0,):
        for name, change in layouts:
            given = _relayout(sample, keys, change)
            out = make(p, 0)(given)
            for x, y in zip(_image_values(given, keys), _image_values(out, keys), strict=True):
                assert _laid_out_like(y, x), f"p={p}, {name}: strides {x.stride()} in, {y.stride()} out"
                if name == "contiguous":
                    assert y.is_contiguous()
                    y.view(-1)
                elif name == "channels_last" and x.ndim == 4:
                    assert y.is_contiguous(memory_format=torch.channels_last)


def check_identity_at_p_zero(make: Make, sample: Any) -> None:
    """``p = 0`` returns the input itself (a dict's image values are the input objects)."""
    t = make(0.0, 0)
    out = t(sample)
    if isinstance(sample, Mapping):
        for k in _keys(t) or []:
            assert out[k] is sample[k]
    elif _labelled(sample):
        assert out[0] is sample[0] and out[1] is sample[1]
    else:
        assert out is sample


def check_seeding(make: Make, sample: Any, *, p: float = 0.5) -> None:
    """The same seed gives the same output; the stream moves on; ``set_random_state`` restarts it."""
    a = make(p, 7)
    first = a(sample)
    assert_same(make(p, 7)(sample), first)
    a(sample)  # the stream moves on
    a.set_random_state(7)
    assert_same(a(sample), first)


def check_pickling(make: Make, sample: Any) -> None:
    """A pickled copy has the same ``repr`` and continues the same draws; transforms that are modules
    keep their heavy objects out of ``state_dict``."""
    t = make(0.5, 3)
    t(sample)
    clone = pickle.loads(pickle.dumps(t))
    assert repr(clone) == repr(t) and "\n" not in repr(t)
    assert_same(clone(sample), t(sample))


def check_state_dict_is_empty(make: Make) -> None:
    """No network in ``state_dict`` (the GAN, cache and statistics stay out of the module registry)."""
    t = make(0.5, 0)
    assert t.state_dict() == {} and list(t.children()) == []


def check_torchvision(make: Make, sample: Any) -> None:
    """Inside ``v2.Compose`` / ``v2.RandomApply`` the result is the direct call's; ``tv_tensors.Image``
    inputs come back wrapped with the same values."""
    direct = make(1.0, 5)(sample)
    assert_same(v2.Compose([make(1.0, 5)])(sample), direct)
    assert_same(v2.RandomApply([make(1.0, 5)], p=1.0)(sample), direct)
    if isinstance(sample, Mapping):
        wrapped = {k: tv_tensors.Image(v) if k in _keys(make(1.0, 5)) else v for k, v in sample.items()}
        out = make(1.0, 5)(wrapped)
        for k in _keys(make(1.0, 5)) or []:
            assert isinstance(out[k], tv_tensors.Image)
    elif _labelled(sample):
        out = make(1.0, 5)((tv_tensors.Image(sample[0]), sample[1]))
        assert isinstance(out[0], tv_tensors.Image) and out[1] is sample[1]
    else:
        out = make(1.0, 5)(tv_tensors.Image(sample))
        assert isinstance(out, tv_tensors.Image)
    assert_same(out, direct)


def check_monai_compose(make: Make, sample: Any) -> None:
    """Inside MONAI's ``Compose``: an array transform gives the direct call's result; a dictionary
    variant (MONAI ``Randomizable``, reseeded by ``Compose``) is reproducible with
    ``Compose.set_random_state`` and keeps shapes and value types. A labelled call goes through
    ``Compose(map_items=False)`` (by default MONAI applies a transform to each item of a tuple)."""
    from monai.transforms import Compose, Randomizable

    t = make(1.0, 5)
    if not isinstance(t, Randomizable):
        assert_same(Compose([t], map_items=not _labelled(sample))(sample), make(1.0, 5)(sample))
        return
    pipeline = Compose([t])
    a = pipeline.set_random_state(seed=3)(sample)
    b = pipeline.set_random_state(seed=3)(sample)
    assert_same(a, b)
    for k in _keys(t) or []:
        assert type(a[k]) is type(sample[k]) and a[k].shape == sample[k].shape


def check_transform(make: Make, sample: Any, *, filter: bool = False, module: bool = True) -> None:
    """The whole contract but the DataLoader workers (:func:`check_workers`).

    Args:
        make: ``make(p, seed)`` builds a fresh transform (a filter ignores ``p``).
        sample: an example input: a batch ``[B, C, H, W]`` or a dict item / batch for a dictionary
            variant.
        filter: the transform keeps a subset of the batch (no ``p``, the batch shrinks).
        module: the transform is an ``nn.Module`` whose ``state_dict`` must stay empty.
    """
    check_shape_dtype_device_and_range(make, sample, filter=filter)
    check_memory_layout(make, sample, filter=filter)
    if not filter:
        check_identity_at_p_zero(make, sample)
    check_seeding(make, sample)
    check_pickling(make, sample)
    if module and not filter:
        check_state_dict_is_empty(make)
    check_torchvision(make, sample)
    check_monai_compose(make, sample)


# -- DataLoader workers --------------------------------------------------------------------------------
class _PerSample(Dataset):
    """Items ``transform(sample i)``: per-sample augmentation inside DataLoader workers."""

    def __init__(self, samples: list[Any], transform: Any) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        return self.transform(self.samples[i])


def _split(sample: Any) -> list[Any]:
    """A batch (or a dict batch) as a list of single samples, each with its own dataset key."""
    if isinstance(sample, Mapping):
        n = next(v for v in sample.values() if isinstance(v, torch.Tensor)).shape[0]
        return [
            {k: (v[i] if isinstance(v, torch.Tensor) else f"p{i:03d}/0000") for k, v in sample.items()}
            for i in range(n)
        ]
    return list(sample)


def _epoch(make: Make, samples: list[Any], workers: int, context: str | None = None) -> Any:
    loader = DataLoader(
        _PerSample(samples, make(0.5, 0)),
        batch_size=2,
        num_workers=workers,
        multiprocessing_context=context if workers else None,
        generator=torch.Generator().manual_seed(1),
    )
    batches = list(loader)
    if isinstance(batches[0], Mapping):
        return {
            k: torch.cat([b[k] for b in batches])
            for k in batches[0]
            if isinstance(batches[0][k], torch.Tensor)
        }
    return torch.cat(batches)


def check_workers(make: Make, sample: Any, *, spawn: bool = True) -> None:
    """Per-sample use in DataLoader workers: 1 and 2 forked workers give the same data, which a
    ``spawn``-ed worker gives too; the main process (``num_workers=0``) is reproducible with the seed."""
    samples = _split(sample)
    one, two = _epoch(make, samples, 1, "fork"), _epoch(make, samples, 2, "fork")
    assert_same(one, two)
    x = torch.stack([_images(s, _keys(make(0.5, 0))) for s in samples])
    changed = _changed(x, _images(one, _keys(make(0.5, 0))))
    assert bool(changed.any())
    assert_same(_epoch(make, samples, 0), _epoch(make, samples, 0))
    if spawn:
        torch.testing.assert_close(
            _images(_epoch(make, samples, 1, "spawn"), _keys(make(0.5, 0))), _images(one, _keys(make(0.5, 0)))
        )
