"""Inception-v3 and VGG16 feature networks from ImageNet weights already in the local torch hub cache.

Nothing is downloaded (the library runs offline): the file must already
be in ``torch.hub.get_dir()/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``), where torchvision itself caches it. If it is not, the error says
which file to place there and how to get it on a machine with internet access.

Note: this Inception-v3 is torchvision's, not the TensorFlow graph of the original FID code, so its
FID values are not comparable with published ones (only with other values from the same network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from latent_transforms.errors import FeatureNetworkUnavailableError, WeightMismatchError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _build_inception() -> nn.Module:
    import torchvision

    # aux_logits=True: the file's AuxLogits.* tensors load strictly; init_weights=False: all get overwritten.
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)


def _adapt_inception(model: nn.Module) -> nn.Module:
    """2048-d pool features (FID's "pool3"): the classifier becomes the identity, the aux head goes."""
    model.fc = nn.Identity()
    model.AuxLogits = None
    model.aux_logits = False
    model.transform_input = False  # inputs come normalised to [-1, 1] (mean = std = 0.5) directly
    return model


def _build_vgg16() -> nn.Module:
    import torchvision

    return torchvision.models.vgg16(weights=None)


def _adapt_vgg16(model: nn.Module) -> nn.Module:
    """4096-d fc2 features before their ReLU (the features of the improved precision/recall paper)."""
    model.classifier = model.classifier[:4]
    return model


@dataclass(frozen=True)
class TorchvisionNetwork:
    """How to build one torchvision feature network from a cached ImageNet weights file.

    Attributes:
        name: registry name (``"inception-v3"``).
        filename: the weights file torchvision caches in ``<hub dir>/checkpoints/``.
        constructor: the torchvision function, for the fetch command in error messages.
        build: returns the randomly initialised classifier the file's state dict fits.
        adapt: turns the loaded classifier into a ``[N, 3, S, S] -> [N, D]`` feature network.
        input_size: the side images are resized to.
        mean: per-channel input mean in ``[0, 1]`` pixel units.
        std: per-channel input standard deviation in ``[0, 1]`` pixel units.
        dim: the feature size ``D``.

    Example:
        >>> TORCHVISION_NETWORKS["vgg16"].filename
        'vgg16-397923af.pth'
    """

    name: str
    filename: str
    constructor: str
    build: Callable[[], nn.Module]
    adapt: Callable[[nn.Module], nn.Module]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dim: int

    def url(self) -> str:
        """Where torchvision downloads the file from."""
        return f"https://download.pytorch.org/models/{self.filename}"


TORCHVISION_NETWORKS: dict[str, TorchvisionNetwork] = {
    "inception-v3": TorchvisionNetwork(
        name="inception-v3",
        filename="inception_v3_google-0cc3c7bd.pth",
        constructor="inception_v3",
        build=_build_inception,
        adapt=_adapt_inception,
        input_size=299,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        dim=2048,
    ),
    "vgg16": TorchvisionNetwork(
        name="vgg16",
        filename="vgg16-397923af.pth",
        constructor="vgg16",
        build=_build_vgg16,
        adapt=_adapt_vgg16,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        dim=4096,
    ),
}


def hub_checkpoint_path(filename: str) -> Path:
    """``torch.hub.get_dir()/checkpoints/<filename>``: where torchvision caches downloaded weights.

    Example:
        >>> hub_checkpoint_path("vgg16-397923af.pth").parent.name
        'checkpoints'
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_torchvision_network(name: str) -> tuple[nn.Module, TorchvisionNetwork]:
    """The feature network ``name`` (a key of :data:`TORCHVISION_NETWORKS`) with its cached weights.

    Returns:
        ``(network, spec)``: the network in eval mode, mapping ``[N, 3, S, S]`` normalised with
        ``spec.mean``/``spec.std`` to ``[N, spec.dim]``, and its :class:`TorchvisionNetwork`.

    Raises:
        FeatureNetworkUnavailableError: the weights file is not in the hub cache; the message says which
            file to place where and how to get it.
        WeightMismatchError: the file is there but does not fit the architecture.

    Example:
        >>> net, spec = load_torchvision_network("inception-v3")  # doctest: +SKIP
        >>> spec.dim  # doctest: +SKIP
        2048
    """
    spec = TORCHVISION_NETWORKS[name]
    path = hub_checkpoint_path(spec.filename)
    if not path.is_file():
        raise FeatureNetworkUnavailableError(
            f"the {name!r} feature network needs torchvision's ImageNet weights file {spec.filename!r} in "
            f"the torch hub cache, expected at {path}, which does not exist (nothing is downloaded). Fix: on "
            "a machine with internet access run\n"
            '    python -c "import torchvision; '
            f"torchvision.models.{spec.constructor}(weights='DEFAULT')\"\n"
            f"(or download {spec.url()}), then copy ~/.cache/torch/hub/checkpoints/{spec.filename} to "
            f"{path.parent}/ here (set TORCH_HOME to use another cache folder). The offline feature "
            "networks 'efficientnet-lite0' and 'discriminator' need no download."
        )
    model = spec.build()
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        raise WeightMismatchError(
            f"expected torchvision's {spec.constructor} ImageNet state dict in {path}, but it does not load: "
            f"{str(exc).splitlines()[0][:300]}. Fix: replace the file with the one torchvision downloads "
            f"({spec.url()})."
        ) from exc
    return spec.adapt(model).eval(), spec
