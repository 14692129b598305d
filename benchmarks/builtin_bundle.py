"""Quality of the shipped bundle: FID, precision and recall against held-out phantom patients.

Re-creates the phantom the bundle was trained on (its training command is in the bundle's card), takes
the validation patients of the same patient split, and scores the bundle's samples against them per
modality with the offline EfficientNet-Lite0 features. Also draws the README figure: generated samples
next to real held-out slices (rows: MRI, CT)::

    python -m benchmarks.builtin_bundle
    python -m benchmarks.builtin_bundle --bundle runs/phantom128/bundle --samples 5000 --figure none

Writes ``benchmarks/results/builtin_bundle-<device>.json`` and ``docs/images/<bundle>.png``.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from benchmarks.common import write_result
from latent_transforms import load_gan, split_dataset
from latent_transforms.cli import build_parser
from latent_transforms.data import open_paired_dataset
from latent_transforms.networks import sample_grid
from latent_transforms.training import FidScorer, GanImages, evaluate_generator

ROOT = Path(__file__).resolve().parent.parent


def held_out_images(bundle: Any) -> tuple[GanImages, dict[str, Any]]:
    """The validation patients of the split the bundle's training command used."""
    command = bundle.config.training.get("command", "")
    args = build_parser().parse_args(shlex.split(command)[1:])
    dataset = open_paired_dataset(args.data, resolution=bundle.resolution)
    fractions = tuple(float(f) for f in args.split.split(","))
    held_out = split_dataset(dataset, fractions, seed=args.split_seed)["val"]
    cfg = bundle.config
    images = GanImages(held_out, cfg.modality_names, [m.window for m in cfg.modalities])
    return images, {
        "data": args.data,
        "split": args.split,
        "split_seed": args.split_seed,
        "patients": len(held_out.patients),
        "slices": len(held_out),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads) if args.threads else None
    bundle = load_gan(args.bundle)
    images, held_out = held_out_images(bundle)
    scorer = FidScorer(
        images, args.network, bundle.modalities, n_samples=args.samples, seed=args.seed, progress=True
    )
    result = evaluate_generator(bundle.generator, scorer, k=3)
    if args.figure != "none":
        n = 8
        picks = torch.linspace(0, len(images) - 1, n).long().tolist()
        real = torch.stack([images[i][0] for i in picks])
        fake = bundle.sample(n, seed=args.seed)
        grid = torch.cat(
            [sample_grid(fake), torch.ones(1, 6, sample_grid(fake).shape[2]), sample_grid(real)], 1
        )
        path = (
            Path(args.figure)
            if args.figure
            else ROOT / "docs" / "images" / f"{Path(args.bundle).name.removeprefix('builtin:')}.png"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        print("wrote", path)
    card = {
        k: v for k, v in bundle.config.training.items() if k in ("command", "kimg", "selected_kimg", "data")
    }
    return {
        "benchmark": "builtin_bundle",
        "bundle": args.bundle,
        "fingerprint": bundle.fingerprint,
        "training": card,
        "held_out": held_out,
        "result": result,
    }


def markdown(payload: dict[str, Any]) -> str:
    r = payload["result"]
    lines = ["| modality | FID | precision | recall | F1 |", "|---|---|---|---|---|"]
    for name in [*[k for k in r if isinstance(r[k], dict) and k != "mean"], "mean"]:
        m = r[name]
        lines.append(
            f"| {name} | {m['fid']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", default="builtin:pelvis-phantom-64")
    parser.add_argument("--samples", type=int, default=2000, help="generated images")
    parser.add_argument("--network", default="efficientnet-lite0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--figure", default="", help="PNG path ('' = docs/images/<bundle>.png, 'none' = skip)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    payload = run(args)
    print(markdown(payload))
    if not args.no_write:
        print("wrote", write_result("builtin_bundle", payload, torch.device("cpu"), __spec__.name))


if __name__ == "__main__":
    main()
