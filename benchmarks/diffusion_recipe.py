"""What a diffusion training run made: its FID curve, samples per class, and per-class fidelity on a
held-out split, optionally beside a class-conditional GAN measured the same way.

    python -m benchmarks.diffusion_recipe --run runs/ddpm32 \
        --data medmnist:../shared/data/pneumoniamnist.npz --split val \
        --gan runs/pneumoniamnist/work/gan/bundle --out benchmarks/results/ddpm32-pneumoniamnist

Writes into ``--out``: ``fid-curve.png`` (the run's FID against kimg, from its ``log.jsonl``),
``samples.png`` (real and generated images, two rows per class), ``results.json`` (provenance, the
training record, and for each generator FID / precision / recall with k nearest neighbours per class and
overall, as many generated images per class as the split holds) and ``report.md``. The split defaults to
validation: the test split is for the studies' reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import provenance
from latent_transforms import (
    LabelledImages,
    class_fidelity,
    feature_network,
    load_diffusion,
    load_gan,
    plot_fid_curve,
)
from latent_transforms.plotting import agg_figure
from latent_transforms.training import read_log, scored_records

MODULE = "benchmarks.diffusion_recipe"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="the --out folder of `latent-transforms train-diffusion`")
    p.add_argument("--data", required=True, help="medmnist:PATH.npz the run trained on")
    p.add_argument("--split", default="val", choices=("val", "test", "train"), help="real images compared")
    p.add_argument("--gan", default=None, help="a class-conditional GAN bundle measured the same way")
    p.add_argument("--out", required=True, help="folder for the figures, results.json and report.md")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps of the diffusion samples (default 50)")
    p.add_argument("--k", type=int, default=3, help="nearest neighbours of precision / recall (default 3)")
    p.add_argument("--feature-network", default="efficientnet-lite0", help="features (default Lite0)")
    p.add_argument("--max-per-class", type=int, default=None, help="cap on real images per class")
    p.add_argument("--seed", type=int, default=0)
    return p


def real_images(data: str, split: str, resolution: int) -> LabelledImages:
    path = data.removeprefix("medmnist:")
    return LabelledImages.from_medmnist(path, split, resolution=resolution)


def samples_figure(rows: list[tuple[str, torch.Tensor]], path: Path) -> Path:
    fig = agg_figure((12.0, 0.9 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, (title, images) in zip(axes, rows, strict=True):
        strip = torch.cat(list(images[:, 0].clamp(-1, 1) * 0.5 + 0.5), dim=1)
        ax.imshow(strip.numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    diffusion = load_diffusion(Path(args.run) / "bundle", device="cpu")
    resolution = diffusion.config.resolution
    data = real_images(args.data, args.split, resolution)
    real = data.images_tensor()
    labels = data.labels
    if args.max_per_class is not None:
        keep = torch.cat([torch.nonzero(labels == c)[: args.max_per_class, 0] for c in labels.unique()])
        real, labels = real[keep], labels[keep]
    names = data.class_names or [str(c) for c in range(int(labels.max()) + 1)]
    net = feature_network(args.feature_network, device="cpu")

    def diffusion_sample(n: int, label: int, seed: int) -> torch.Tensor:
        return diffusion.sample(n, labels=label, seed=seed, steps=args.steps, batch_size=256)

    generators: dict[str, Any] = {"diffusion": diffusion_sample}
    if args.gan:
        gan = load_gan(args.gan, device="cpu")

        def gan_sample(n: int, label: int, seed: int) -> torch.Tensor:
            return gan.sample(n, labels=label, seed=seed, noise_mode="random")

        generators["gan"] = gan_sample
    scores = {
        name: class_fidelity(sample, real, labels, net, k=args.k, seed=10_000 * args.seed + 1000)
        for name, sample in generators.items()
    }
    title = "diffusion training: FID against the training images"
    plot_fid_curve(args.run, out / "fid-curve.png", title=title)
    rows: list[tuple[str, torch.Tensor]] = []
    for label, name in enumerate(names):
        rows.append((f"real {name}", real[labels == label][:16]))
        for gen, sample in generators.items():
            rows.append((f"{gen} {name}", sample(16, label, 77 + label)))
    samples_figure(rows, out / "samples.png")
    log = read_log(args.run)
    scored = scored_records(log)
    done = (Path(args.run) / "bundle" / "config.json").read_text(encoding="utf-8")
    result = {
        **provenance(torch.device("cpu"), MODULE),
        "run": str(args.run),
        "split": args.split,
        "feature_network": args.feature_network,
        "k": args.k,
        "steps": args.steps,
        "class_names": names,
        "training": {
            "kimg": log[-1]["kimg"] if log else None,
            "seconds": log[-1].get("seconds") if log else None,
            "curve": [
                {"kimg": r["kimg"], "fid": r["score/fid"], "smoothed": r.get("score/smoothed")}
                for r in scored
            ],
            "bundle": json.loads(done).get("training", {}),
        },
        "fidelity": scores,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    return result


def markdown(result: dict[str, Any]) -> str:
    t, fidelity = result["training"], result["fidelity"]
    lines = [
        "# A diffusion model on a CPU: what the run made",
        "",
        f"Command: `{result['command']}`  ",
        f"Commit: `{result['commit']}`, {result['device']}",
        "",
        f"Training: {t['kimg']} kimg in {t['seconds']} s of training steps (from the run's log.jsonl); "
        f"the bundle is the checkpoint of kimg {t['bundle'].get('selected_kimg')} (lowest smoothed FID).",
        "",
        "![FID curve](fid-curve.png)",
        "",
        f"## Fidelity against the {result['split']} split ({result['feature_network']}, k = {result['k']})",
        "",
        "As many generated images per class as real ones; DDIM with "
        f"{result['steps']} steps for the diffusion model.",
        "",
        "| generator | class | n | FID | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for gen, s in result["fidelity"].items():
        for label, c in s["per_class"].items():
            name = result["class_names"][int(label)]
            lines.append(
                f"| {gen} | {name} | {c['n']} | {c['fid']:.2f} | {c['precision']:.3f} | {c['recall']:.3f} |"
            )
        lines.append(f"| {gen} | all | | {s['fid']:.2f} | {s['precision']:.3f} | {s['recall']:.3f} |")
    lines += [
        "",
        "Sampling cost on this machine (a ratio between rows of this run, not an absolute speed): "
        + ", ".join(f"{g} {s['seconds_per_1000']:.1f} s per 1,000 images" for g, s in fidelity.items())
        + ".",
        "",
        "![samples](samples.png)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    args = build_parser().parse_args()
    result = run(args)
    print(markdown(result))
    print(f"wrote {args.out}/report.md and {args.out}/results.json")


if __name__ == "__main__":
    main()
