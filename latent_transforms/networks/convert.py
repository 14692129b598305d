"""Convert NVIDIA StyleGAN2 training snapshots (``network-snapshot-*.pkl``) into GAN bundles, safely.

Those pickles come from NVIDIA's stylegan2-ada-pytorch, or from the stylegan3 code base trained with
``--cfg=stylegan2``. Each network in them is a "persistent class" object: the pickle stores the
*Python source* of the module defining it and normal unpickling ``exec``-s that source. This module
reads the persisted state with a restricted unpickler instead: only an allow-list of globals
(containers, torch/numpy array rebuilders and the persistence hook, replaced by a stand-in that keeps
the state and discards the source) can be referenced; anything else raises
:class:`~latent_transforms.errors.UnsafePickleError` before it can run.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from latent_transforms.data.windows import IntensityWindow
from latent_transforms.errors import ConversionError, UnsafePickleError
from latent_transforms.networks.bundle import GanBundle
from latent_transforms.networks.config import GanConfig, Modality
from latent_transforms.networks.discriminator import Discriminator
from latent_transforms.networks.generator import Generator
from latent_transforms.networks.resample import filter_2d
from latent_transforms.networks.weights import check_state_matches

# ----------------------------------------------------------------------------------------------
# The restricted unpickler


@dataclass
class PersistedObject:
    """Stand-in for an object of a persistent class: its class name and pickled ``__dict__``.

    ``module_sha256`` identifies the (never executed) module source the pickle carried.
    """

    class_name: str
    state: dict[str, Any]
    module_sha256: str
    source_size: int = 0

    def attr(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)

    def modules(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def tensor(self, name: str) -> torch.Tensor:
        """A parameter or buffer (frozen layers, e.g. Freeze-D, keep their weights as buffers)."""
        for group in ("_parameters", "_buffers"):
            value = (self.state.get(group) or {}).get(name)
            if isinstance(value, torch.Tensor):
                return value
        raise ConversionError(f"a persisted {self.class_name} has no tensor {name!r}; unsupported network.")


class _EasyDict(dict):
    """Plain stand-in for ``dnnlib.EasyDict`` (a dict with attribute access)."""


def _reconstruct_persistent(meta: Any) -> PersistedObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError(
            "a persistent-object record in this pickle is not of type 'class'; only StyleGAN2 network "
            "snapshots are supported."
        )
    name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src", "")
    if not isinstance(name, str) or not isinstance(state, dict) or not isinstance(src, str):
        raise UnsafePickleError("malformed persistent-object record (class_name/state/module_src).")
    digest = hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest()
    return PersistedObject(name, dict(state), digest, len(src))


_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _storage_refusal(exc: Exception) -> str:
    """Our own message for a storage torch's safe loader refused.

    torch's text is not passed on: it suggests retrying with the unsafe loader, which for a file
    from an unknown source is exactly what must not be done.
    """
    found = _REFUSED_GLOBAL.search(str(exc))
    if found:
        reason = f"it references '{found.group(1)}', which is not tensor data"
    else:
        reason = f"torch's safe (weights-only) loader could not read it ({type(exc).__name__})"
    return (
        "refusing to load this pickle: one of its embedded tensor storages is not a plain saved tensor: "
        f"{reason}. Nothing from the file was executed. A genuine network-snapshot-*.pkl only stores "
        "tensor data there. If the snapshot is your own, re-save it from your training code with a "
        "standard PyTorch and convert that copy; a file of unknown origin should not be opened at all."
    )


def _load_storage_bytes(data: bytes) -> Any:
    # torch pickles a storage as the bytes of a small torch.save file; weights_only reads it safely.
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise UnsafePickleError(_storage_refusal(exc)) from None


def _rebuild_parameter(
    data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *state: Any
) -> torch.Tensor:
    return data.detach()


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None) -> Any:
    if dtype.hasobject:
        raise UnsafePickleError("numpy object scalars are not allowed in a network snapshot.")
    return np.frombuffer(data or b"", dtype=dtype)[0] if data else dtype.type()


def _numpy_dtype(name: str, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise UnsafePickleError("numpy object dtypes are not allowed in a network snapshot.")
    return dtype


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(text, 'latin1'); nothing else is accepted.
    if encoding.lower().replace("-", "") not in ("latin1", "iso88591") or not isinstance(text, str):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r} (only latin-1 bytes).")
    return text.encode("latin-1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("torch", "Size"): torch.Size,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load this pickle: it references '{module}.{name}', which is not part of a "
                "StyleGAN2 network snapshot. Nothing from the file was executed. Only "
                "network-snapshot-*.pkl files of stylegan2-ada-pytorch / stylegan3 (--cfg=stylegan2) "
                "can be converted."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            "refusing to load this pickle: it uses persistent ids (a torch.save file?). Only "
            "network-snapshot-*.pkl training snapshots can be converted."
        )


def read_snapshot(file: str | Path | BinaryIO) -> dict[str, Any]:
    """Read a StyleGAN2 training snapshot without executing anything from it.

    Returns the top-level dict (``G``, ``D``, ``G_ema``, ...) with every network replaced by a
    :class:`PersistedObject`. Raises :class:`UnsafePickleError` for any other pickle content.
    """
    if isinstance(file, str | Path):
        with open(file, "rb") as fh:
            return read_snapshot(fh)
    try:
        data = _RestrictedUnpickler(file).load()
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise UnsafePickleError(f"cannot read the snapshot safely: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict) or not any(
        isinstance(data.get(k), PersistedObject) for k in ("G_ema", "G")
    ):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConversionError(
            f"not a StyleGAN2 training snapshot: expected a dict with 'G_ema', found {keys}."
        )
    return data


# ----------------------------------------------------------------------------------------------
# From persisted objects to our networks


def persisted_state_dict(obj: PersistedObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a persisted ``nn.Module`` tree to ``{dotted name: tensor}`` (parameters and buffers)."""
    out: dict[str, torch.Tensor] = {}
    non_persistent = set(obj.state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (obj.state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(value, torch.Tensor):
                raise ConversionError(f"{prefix}{name} is a {type(value).__name__}, expected a tensor.")
            out[prefix + name] = value.detach().float().contiguous()
    for name, child in obj.modules().items():
        if child is None:
            continue
        if not isinstance(child, PersistedObject):
            raise ConversionError(f"sub-module {prefix}{name} is not a persisted network object.")
        out.update(persisted_state_dict(child, f"{prefix}{name}."))
    return out


def _strip_resample_filters(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    expected = filter_2d()
    kept = {}
    for name, tensor in tensors.items():
        if name.endswith("resample_filter"):
            if tuple(tensor.shape) != (4, 4) or not torch.allclose(tensor, expected, atol=1e-6):
                raise ConversionError(
                    f"{name} is not StyleGAN2's [1,3,3,1] filter (shape {tuple(tensor.shape)}); "
                    "networks trained with another resample filter are not supported."
                )
            continue
        kept[name] = tensor
    return kept


def _child(obj: PersistedObject, *path: str) -> PersistedObject:
    node = obj
    for name in path:
        nxt = node.modules().get(name)
        if not isinstance(nxt, PersistedObject):
            raise ConversionError(
                f"{obj.class_name} has no sub-module {'.'.join(path)}; unsupported network."
            )
        node = nxt
    return node


def _lr_multiplier(fc: PersistedObject) -> float:
    gain = fc.attr("bias_gain", fc.attr("lr_multiplier"))
    if gain is None:
        raise ConversionError("cannot find the mapping network's learning-rate multiplier.")
    return float(gain)


def _channel_layout(channels: dict[int, int], what: str) -> tuple[int, int]:
    """``(channel_base, channel_max)`` reproducing ``channels[r] == min(base // r, max)`` for every r."""
    cmax = max(channels.values())
    below = [r for r, ch in channels.items() if ch < cmax]
    base = channels[below[0]] * below[0] if below else cmax * max(channels)
    if any(min(base // r, cmax) != ch for r, ch in channels.items()):
        raise ConversionError(
            f"the {what} has a non-standard channel layout {dict(sorted(channels.items()))}; only "
            "min(channel_base // resolution, channel_max) layouts are supported."
        )
    return base, cmax


def _clamp(layer: PersistedObject) -> float | None:
    value = layer.attr("conv_clamp")
    return None if value is None else float(value)


def config_from_snapshot(
    g: PersistedObject,
    d: PersistedObject | None,
    modalities: tuple[Modality, ...] | None = None,
) -> GanConfig:
    """Derive a :class:`GanConfig` from the persisted generator (and discriminator).

    Sizes come from the networks' attributes and weight shapes, not from constructor keyword
    arguments, which differ between the code bases.
    """
    if g.class_name != "Generator":
        raise ConversionError(f"G_ema is a {g.class_name!r}, expected 'Generator'.")
    synth = _child(g, "synthesis")
    mapping = _child(g, "mapping")
    res = int(g.attr("img_resolution"))
    img_channels = int(g.attr("img_channels"))
    resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
    g_channels = {}
    for r in resolutions:
        block = _child(synth, f"b{r}")
        if block.attr("architecture", "skip") != "skip":
            raise ConversionError(
                f"synthesis architecture {block.attr('architecture')!r} is not supported "
                "(only StyleGAN2's 'skip')."
            )
        conv1 = _child(block, "conv1")
        if not conv1.attr("use_noise", True) or conv1.attr("activation", "lrelu") != "lrelu":
            raise ConversionError("only synthesis layers with noise inputs and leaky ReLU are supported.")
        g_channels[r] = int(conv1.tensor("weight").shape[0])
    channel_base, channel_max = _channel_layout(g_channels, "generator")

    if modalities is None:
        modalities = tuple(Modality(f"ch{i}") for i in range(img_channels))
    if len(modalities) != img_channels:
        raise ConversionError(
            f"the snapshot has {img_channels} image channels but {len(modalities)} modality names were "
            "given; pass one name per channel, e.g. --modalities mri,ct."
        )
    conv_clamp = _clamp(_child(synth, "b4", "conv1"))
    d_kwargs: dict[str, Any] = {}
    if d is not None:
        if d.class_name != "Discriminator":
            raise ConversionError(f"D is a {d.class_name!r}, expected 'Discriminator'.")
        d_channels = {}
        for r in resolutions[1:]:
            block = _child(d, f"b{r}")
            if block.attr("architecture", "resnet") != "resnet":
                raise ConversionError(
                    f"discriminator architecture {block.attr('architecture')!r} is not supported."
                )
            d_channels[r] = int(_child(block, "conv0").tensor("weight").shape[0])
        epi = _child(d, "b4")
        d_channels[4] = int(_child(epi, "fc").tensor("weight").shape[0])
        d_base, d_max = _channel_layout(d_channels, "discriminator")
        mbstd = epi.modules().get("mbstd")
        d_kwargs = {
            "d_channel_base": d_base,
            "d_channel_max": d_max,
            "mbstd_group_size": int(mbstd.attr("group_size", 4)) if isinstance(mbstd, PersistedObject) else 4,
            "mbstd_channels": int(mbstd.attr("num_channels", 1)) if isinstance(mbstd, PersistedObject) else 0,
        }
        if isinstance(d.modules().get("mapping"), PersistedObject):
            d_kwargs["d_mapping_layers"] = int(_child(d, "mapping").attr("num_layers", 8))
        d_clamp = _clamp(_child(d, f"b{res}", "conv0"))
        if d_clamp != conv_clamp:
            raise ConversionError(
                f"G and D use different conv_clamp ({conv_clamp} vs {d_clamp}); not supported."
            )
    return GanConfig(
        resolution=res,
        modalities=modalities,
        z_dim=int(g.attr("z_dim")),
        w_dim=int(g.attr("w_dim")),
        c_dim=int(g.attr("c_dim", 0)),
        mapping_layers=int(mapping.attr("num_layers")),
        mapping_lr_multiplier=_lr_multiplier(_child(mapping, "fc0")),
        w_avg_beta=float(mapping.attr("w_avg_beta", 0.995)),
        channel_base=channel_base,
        channel_max=channel_max,
        conv_clamp=conv_clamp,
        **d_kwargs,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def convert_stylegan2_pickle(
    snapshot: str | Path,
    out_dir: str | Path | None = None,
    *,
    modalities: list[str] | tuple[Modality, ...] | None = None,
    windows: dict[str, IntensityWindow] | None = None,
    include_discriminator: bool = True,
    w_stats_samples: int = 10_000,
) -> GanBundle:
    """Turn a ``network-snapshot-*.pkl`` into a :class:`GanBundle` (and save it to ``out_dir`` if given).

    Reads the snapshot with :func:`read_snapshot` (nothing in the file is executed), takes ``G_ema``
    as the generator and ``D`` as the discriminator, copies every weight by name after checking
    shapes, and computes the W statistics from ``w_stats_samples`` random z.

    Args:
        snapshot: path of the pickle.
        out_dir: folder to write the bundle to (``None``: only return it).
        modalities: one name per image channel (default ``ch0, ch1, ...``), or :class:`Modality` objects.
        windows: ``{name: IntensityWindow}`` for the named modalities (default ``[-1, 1]``).
        include_discriminator: keep ``D`` (LatentAugment's fidelity term needs it).
        w_stats_samples: number of z samples for the mean/covariance of W.

    Example:
        >>> bundle = convert_stylegan2_pickle("network-snapshot-001000.pkl", "pelvis-gan",
        ...                                   modalities=["mri", "ct"])  # doctest: +SKIP
    """
    snapshot = Path(snapshot)
    data = read_snapshot(snapshot)
    g = data.get("G_ema") if isinstance(data.get("G_ema"), PersistedObject) else data.get("G")
    d = data.get("D") if include_discriminator and isinstance(data.get("D"), PersistedObject) else None
    assert isinstance(g, PersistedObject)
    mods: tuple[Modality, ...] | None = None
    if modalities is not None:
        windows = windows or {}
        mods = tuple(
            m if isinstance(m, Modality) else Modality(m, windows.get(m, IntensityWindow(-1.0, 1.0)))
            for m in modalities
        )
    config = config_from_snapshot(g, d, mods)
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    training = {
        "converted_from": snapshot.name,
        "snapshot_sha256": digest,
        "source": "NVIDIA StyleGAN2 training snapshot (stylegan2-ada-pytorch / stylegan3 --cfg=stylegan2)",
    }
    if isinstance(data.get("training_set_kwargs"), dict):
        training["training_set_kwargs"] = _jsonable(data["training_set_kwargs"])
    config = config.replace(training=training)

    generator = Generator(config)
    g_state = _strip_resample_filters(persisted_state_dict(g))
    check_state_matches(generator, g_state, f"G_ema of {snapshot.name}")
    generator.load_state_dict(g_state, strict=True)
    disc = None
    if d is not None:
        disc = Discriminator(config)
        d_state = _strip_resample_filters(persisted_state_dict(d))
        check_state_matches(disc, d_state, f"D of {snapshot.name}")
        disc.load_state_dict(d_state, strict=True)
    bundle = GanBundle(config, generator, disc)
    bundle.source = str(snapshot)
    bundle.compute_w_stats(w_stats_samples)
    if out_dir is not None:
        bundle.save_pretrained(out_dir)
    return bundle
