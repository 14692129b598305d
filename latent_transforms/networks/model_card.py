"""The model card (``README.md``) written next to every saved bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huggingface_hub import ModelCard, ModelCardData

if TYPE_CHECKING:
    from latent_transforms.networks.bundle import GanBundle


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_model_card(bundle: GanBundle, repo_id: str | None = None) -> str:
    """Markdown model card with Hub metadata, the architecture, the modalities and the training summary."""
    cfg = bundle.config
    data = ModelCardData(
        library_name="latent-transforms",
        tags=["stylegan2", "gan", "medical-imaging", "data-augmentation", "latent-transforms"],
        pipeline_tag="unconditional-image-generation" if cfg.c_dim == 0 else None,
    )
    name = repo_id or cfg.training.get("name", "StyleGAN2 bundle")
    g_params = sum(p.numel() for p in bundle.generator.parameters())
    d_params = sum(p.numel() for p in bundle.discriminator.parameters()) if bundle.discriminator else 0
    rows = [
        ("resolution", f"{cfg.resolution} x {cfg.resolution}"),
        ("channels", ", ".join(cfg.modality_names)),
        ("z_dim / w_dim", f"{cfg.z_dim} / {cfg.w_dim}"),
        ("classes (c_dim)", cfg.c_dim or "unconditional"),
        ("mapping layers", cfg.mapping_layers),
        ("channel_base / channel_max", f"{cfg.channel_base} / {cfg.channel_max}"),
        ("num_ws", cfg.num_ws),
        ("generator parameters", f"{g_params:,}"),
        ("discriminator", f"{d_params:,} parameters" if bundle.discriminator else "not included"),
        ("generator fingerprint (sha256)", f"`{bundle.fingerprint[:16]}…`"),
    ]
    arch = "\n".join(f"| {k} | {v} |" for k, v in rows)
    windows = "\n".join(
        f"| {i} | {m.name} | [{m.window.low:g}, {m.window.high:g}] {m.window.unit} |"
        for i, m in enumerate(cfg.modalities)
    )
    training = (
        "\n".join(f"- **{k}**: {_format_value(v)}" for k, v in cfg.training.items())
        if cfg.training
        else "No training summary was recorded for this bundle."
    )
    source = repo_id or "path/to/this/folder"
    content = f"""---
{data.to_yaml()}
---

# {name}

A StyleGAN2 generator{" and discriminator" if bundle.discriminator else ""} packaged as a
[latent-transforms](https://pypi.org/project/latent-transforms/) GAN bundle: `config.json`,
`generator.safetensors` (EMA generator){", `discriminator.safetensors`" if bundle.discriminator else ""} and
`w_stats.safetensors` (w_avg, mean and covariance of W). Safetensors only: no pickle is ever loaded.

## Architecture

| | |
|---|---|
{arch}

## Channels and intensity windows

Images are `[B, {cfg.img_channels}, {cfg.resolution}, {cfg.resolution}]` in `[-1, 1]`; each channel maps
linearly to its physical window.

| channel | modality | window |
|---|---|---|
{windows}

## Training

{training}

## Use

```python
from latent_transforms import load_gan

bundle = load_gan("{source}")
images = bundle.sample(8, seed=0)   # [8, {cfg.img_channels}, {cfg.resolution}, {cfg.resolution}] in [-1, 1]
physical = bundle.denormalize(images)  # per-channel physical units
```

## Citation

The augmentation method this bundle is made for: Tronchin et al., "LatentAugment: Data Augmentation via
Guided Manipulation of GAN's Latent Space", arXiv:2307.11375.
"""
    return str(ModelCard(content))
