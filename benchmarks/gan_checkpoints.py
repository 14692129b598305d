"""Per-class fidelity of a class-conditional GAN's checkpoints on a held-out split: which checkpoint covers
each class, on EfficientNet-Lite0 features and (optionally) on a task classifier's features.

    python -m benchmarks.gan_checkpoints --data medmnist:../shared/data/pneumoniamnist.npz --split val \
        --checkpoints runs/gan/bundle snapshots/state-160.pt snapshots/state-180.pt \
        --task-network runs/pneumoniamnist/work/rows/baseline/seed0.safetensors \
        --out benchmarks/results/pneumoniamnist-gan-checkpoints

A checkpoint is a GAN bundle folder (or ``builtin:`` / Hub id) or a ``training-state.pt`` (its EMA
generator). Each is scored by :func:`latent_transforms.class_fidelity` with ``--draws`` independent sample
draws (as many samples per class as real images of the split), and the mean over draws is reported.
Writes ``results.json`` and ``report.md`` into ``--out``; a checkpoint already measured there with the same
settings is not measured again (list it again to keep it in the table). The split defaults to validation:
the test split is for the studies' reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import provenance
from latent_transforms import GanBundle, GanConfig, LabelledImages, class_fidelity, feature_network, load_gan
from latent_transforms.networks import Generator
from latent_transforms.tasks import as_image_labels, classifier_features, load_classifier

MODULE = "benchmarks.gan_checkpoints"
SCORES = ("fid", "precision", "recall")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="medmnist:PATH.npz the GAN trained on")
    p.add_argument("--split", default="val", choices=("val", "test", "train"), help="real images compared")
    p.add_argument("--checkpoints", nargs="+", required=True, help="bundle folders, training-state.pt files")
    p.add_argument("--task-network", default=None, help="a task classifier (.safetensors + -network.json)")
    p.add_argument("--out", required=True, help="folder for results.json and report.md")
    p.add_argument("--k", type=int, default=3, help="nearest neighbours of precision / recall (default 3)")
    p.add_argument("--draws", type=int, default=3, help="independent sample draws averaged (default 3)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the samples (default 1)")
    p.add_argument("--feature-network", default="efficientnet-lite0", help="features (default Lite0)")
    p.add_argument("--seed", type=int, default=500)
    return p


def load_checkpoint(source: str) -> tuple[GanBundle, float | None]:
    """A bundle, or the EMA generator of a ``training-state.pt``; with the kimg it was trained to."""
    path = Path(source)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        config = GanConfig.from_dict(json.loads(state["config"]))
        generator = Generator(config)
        generator.load_state_dict(state["G_ema"])
        return GanBundle(config, generator.eval()), int(state["cur_nimg"]) / 1000
    bundle = load_gan(source, device="cpu")
    return bundle, bundle.config.training.get("kimg")


def run(args: argparse.Namespace) -> dict[str, Any]:
    first, _ = load_checkpoint(args.checkpoints[0])
    real = LabelledImages.from_medmnist(
        args.data.removeprefix("medmnist:"), args.split, resolution=first.config.resolution
    )
    images, labels = as_image_labels(real)
    networks: dict[str, Any] = {args.feature_network: feature_network(args.feature_network)}
    if args.task_network:
        networks["task-resnet"] = classifier_features(load_classifier(args.task_network))
    settings = {
        "data": args.data,
        "split": args.split,
        "k": args.k,
        "draws": args.draws,
        "psi": args.psi,
        "seed": args.seed,
        "feature_network": args.feature_network,
        "task_network": args.task_network,
    }
    out = Path(args.out)
    earlier = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    measured = {r["checkpoint"]: r for r in earlier.get("checkpoints", [])}
    if earlier.get("settings") != settings:
        measured = {}
    rows = []
    for source in args.checkpoints:
        if source in measured:
            rows.append(measured[source])
            print(f"{source}: measured before, kept", flush=True)
            continue
        bundle, kimg = load_checkpoint(source)

        def sample(n: int, label: int, seed: int, bundle: GanBundle = bundle) -> torch.Tensor:
            return bundle.sample(n, labels=label, seed=seed, noise_mode="random", truncation_psi=args.psi)

        scores: dict[str, Any] = {}
        for name, net in networks.items():
            mean = class_fidelity(sample, images, labels, net, k=args.k, seed=args.seed, draws=args.draws)
            scores[name] = {
                "per_class": {
                    c: {s: v[s] for s in SCORES} | {"n": v["n"]} for c, v in mean["per_class"].items()
                },
                **{s: mean[s] for s in SCORES},
            }
        rows.append({"checkpoint": source, "kimg": kimg, "scores": scores})
        print(f"{source}: {json.dumps(scores)}", flush=True)
    result = {
        **provenance(torch.device("cpu"), MODULE),
        "settings": settings,
        "split": args.split,
        "k": args.k,
        "draws": args.draws,
        "psi": args.psi,
        "checkpoints": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# A class-conditional GAN's checkpoints, per class",
        "",
        f"Command: `{result['command']}`  ",
        f"Commit: `{result['commit']}`, {result['device']}",
        "",
        f"Against the {result['split']} split, k = {result['k']}, mean of {result['draws']} sample draws "
        f"(as many samples per class as real images), truncation psi = {result['psi']}.",
        "",
        "| checkpoint | kimg | features | class | n | FID | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["checkpoints"]:
        for net, s in row["scores"].items():
            for label, c in s["per_class"].items():
                lines.append(
                    f"| {row['checkpoint']} | {row['kimg']} | {net} | {label} | {c['n']} | {c['fid']:.3f} "
                    f"| {c['precision']:.3f} | {c['recall']:.3f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    run(build_parser().parse_args())


if __name__ == "__main__":
    main()
