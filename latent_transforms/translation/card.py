"""The model card (``README.md``) of a translator bundle: its Hub metadata and its Jinja template.

:class:`~latent_transforms.translation.bundle.TranslatorBundle` renders it through ``huggingface_hub``'s
``ModelHubMixin`` with :data:`TRANSLATOR_CARD_TEMPLATE` and the values :func:`translator_card_variables`
computes. The licence, repository and documentation links, the template's header, architecture and
training sections and the values they fill in are those every bundle's card shares
(:mod:`latent_transforms.networks.model_card`).
"""

from __future__ import annotations

from typing import Any

from latent_transforms.networks.model_card import (
    ARCHITECTURE_SECTION,
    CARD_HEADER,
    DOCS_URL,
    LICENSE,
    REPO_URL,
    TRAINING_SECTION,
    card_basics,
    window_text,
)
from latent_transforms.translation.config import TranslatorConfig

__all__ = [
    "CYCLEGAN_URL",
    "DOCS_URL",
    "LICENSE",
    "REPO_URL",
    "TRANSLATOR_CARD_TEMPLATE",
    "TRANSLATOR_TAGS",
    "translator_card_variables",
]

#: Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks".
CYCLEGAN_URL = "https://arxiv.org/abs/1703.10593"
TRANSLATOR_TAGS = ("cyclegan", "image-to-image", "medical-imaging", "data-augmentation", "latent-transforms")

TRANSLATOR_CARD_TEMPLATE = (
    CARD_HEADER
    + """
An unpaired image-to-image translator from {{ source_names }} to {{ target_names }}, packaged as a
[latent-transforms](https://pypi.org/project/latent-transforms/) translator bundle: `config.json`,
`source_to_target.safetensors` (the generator G)
{{- ", `target_to_source.safetensors` (the generator F)" if has_inverse else "" }}
{{- " and `predictor.safetensors` (the task predictor)" if has_predictor else "" }}.
Safetensors only: no pickle is ever loaded.

{{ method }}

"""
    + ARCHITECTURE_SECTION
    + """## Channels and intensity windows

Images are `[B, C, {{ resolution }}, {{ resolution }}]` in `[-1, 1]`; each channel maps linearly to its
physical window.

| side | channel | modality | window |
|---|---|---|---|
{% for row in windows %}| {{ row[0] }} | {{ row[1] }} | {{ row[2] }} | {{ row[3] }} |
{% endfor %}
"""
    + TRAINING_SECTION
    + """
## Use

```python
from latent_transforms.translation import load_translator

translator = load_translator("{{ source }}")
# [B, {{ source_channels }}, R, R] -> [B, {{ target_channels }}, R, R], both in [-1, 1]
ct = translator.translate(mri)
physical = translator.denormalize(ct, "target")
```

## Citation

CycleGAN: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
ICCV 2017 ({{ paper_url }}). Translation trained jointly with the task predictor: Yang & Xie,
"Discriminative Cross-Modal Data Augmentation for Medical Imaging Applications".
"""
)


def translator_card_variables(
    config: TranslatorConfig,
    *,
    parameters: dict[str, int | None],
    fingerprint: str,
    repo_id: str | None = None,
) -> dict[str, Any]:
    """The values :data:`TRANSLATOR_CARD_TEMPLATE` fills in.

    Args:
        config: the bundle's config.
        parameters: parameter counts: ``"source_to_target"``, ``"target_to_source"`` and ``"predictor"``
            (``None`` when the bundle lacks that network).
        fingerprint: SHA-256 of the source-to-target generator's weights.
        repo_id: the Hub repo the card is for (its title and usage snippet; default a folder path).

    Example:
        >>> values = translator_card_variables(TranslatorConfig(resolution=32), fingerprint="ab" * 32,
        ...     parameters={"source_to_target": 10, "target_to_source": 10, "predictor": None})
        >>> values["name"], values["has_predictor"], values["windows"][1]
        ('mri to ct translator', False, ('target', 0, 'ct', '[-1000, 2000] HU'))
    """
    predictor = parameters.get("predictor")
    architecture = [
        ("resolution", f"{config.resolution} x {config.resolution}"),
        (
            "generator",
            f"ResNet blocks: width {config.width}, {config.blocks} blocks, "
            f"{config.downsamplings} down-samplings",
        ),
        ("generator parameters", f"{parameters['source_to_target']:,}"),
        (
            "discriminator used in training",
            f"PatchGAN, width {config.disc_width}, {config.disc_layers} layers",
        ),
        ("generator fingerprint (sha256)", f"`{fingerprint[:16]}…`"),
    ]
    if predictor is not None:
        architecture.append(
            (
                "predictor",
                f"ResNet-{config.predictor_depth} (width {config.predictor_width}), {config.task}, "
                f"{config.outputs} output(s), {predictor:,} parameters",
            )
        )
    windows = [
        (side, i, m.name, window_text(m.window).rstrip())
        for side in ("source", "target")
        for i, m in enumerate(getattr(config, side))
    ]
    method = (
        "Trained as DUIIT (Yang & Xie): CycleGAN's losses plus λ times the task loss of the predictor on "
        "real target images and on translated source images with their source labels."
        if config.task is not None
        else "Trained as a CycleGAN (Zhu et al. 2017): least-squares adversarial losses and cycle "
        "consistency."
    )
    default_name = f"{'+'.join(config.source_names)} to {'+'.join(config.target_names)} translator"
    return {
        **card_basics(config.training, repo_id=repo_id, default_name=default_name),
        "source_names": ", ".join(config.source_names),
        "target_names": ", ".join(config.target_names),
        "has_inverse": parameters.get("target_to_source") is not None,
        "has_predictor": predictor is not None,
        "method": method,
        "architecture": architecture,
        "windows": windows,
        "resolution": config.resolution,
        "source_channels": config.source_channels,
        "target_channels": config.target_channels,
    }
