"""Kept-snapshot bundles from saved copies of a GAN run's ``training-state.pt``: for runs that were trained
before ``keep_snapshots`` existed (or without it), so that a checkpoint choice after training (the selective
example's ``--gan-select class-recall``) can use them.

    python -m benchmarks.state_snapshots --run runs/pneumoniamnist-bal/work/gan \
        --data medmnist:../shared/data/pneumoniamnist.npz --states runs/gan-checkpoints/state-*.pt

Each state is restored into a :class:`~latent_transforms.Trainer` built from the state's own config and
options, and its EMA generator (with the discriminator) is written by the trainer's own bundle writer to
``RUN/snapshots/kimg-...``: the bundle ``keep_snapshots`` would have written at that snapshot. ``--data`` is
the training data of the run (its train split); it only describes the data in the bundle's training summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from latent_transforms import GanConfig, LabelledImages
from latent_transforms.tasks import as_image_labels
from latent_transforms.training import TensorImages, Trainer, TrainingOptions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="the run folder the snapshots go into (RUN/snapshots)")
    p.add_argument("--data", required=True, help="medmnist:PATH.npz the GAN trained on (its train split)")
    p.add_argument("--states", nargs="+", required=True, help="copies of the run's training-state.pt")
    return p


def write_snapshot(run: Path, state_path: Path, images: TensorImages, description: str) -> Path:
    """Restore ``state_path`` and write its snapshot bundle into ``run``; returns the bundle folder."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    config = GanConfig.from_dict(json.loads(state["config"]))
    options = TrainingOptions.from_dict(json.loads(state["options"]))
    trainer = Trainer(config, images, run, options, device="cpu", progress=False, description=description)
    trainer.load_state_dict(state)
    return trainer.save_snapshot_bundle()


def main() -> None:
    args = build_parser().parse_args()
    first = torch.load(args.states[0], map_location="cpu", weights_only=True)
    resolution = GanConfig.from_dict(json.loads(first["config"])).resolution
    train = LabelledImages.from_medmnist(args.data.removeprefix("medmnist:"), "train", resolution=resolution)
    images = TensorImages(*as_image_labels(train))
    for path in args.states:
        folder = write_snapshot(Path(args.run), Path(path), images, f"{args.data} (train split)")
        print(f"{path} -> {folder}", flush=True)


if __name__ == "__main__":
    main()
