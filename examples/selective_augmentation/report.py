"""The experiment's report: ``results.json``, ``report.md`` and the figures."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from latent_transforms import GanBundle, plot_fid_curve
from latent_transforms.metrics import compare_methods, wilcoxon

METRICS = ("accuracy", "auc", "sensitivity", "specificity", "balanced_accuracy")
LABELS = {
    "baseline": "Baseline (real only)",
    "standard_da": "+ Traditional augmentation (StandardDA)",
    "gan_r0.5": "+ GAN augmentation, r = 0.5 (unfiltered)",
    "entropy_r0.5": "+ Entropy filter only, r = 0.5",
    "centroid_r0.5": "+ Centroid filter only, r = 0.5",
    "selective_r0.5": "+ Selective augmentation, r = 0.5",
    "selective_r0.8": "+ Selective augmentation, r = 0.8",
    "selective_r1.0": "+ Selective augmentation, r = 1.0",
    "sg2sample": "+ SG2Sample (online)",
    "latent_augment": "+ LatentAugment (online)",
}
#: Xue et al. 2021, Table 1 (cervical histopathology, ResNet34, 5 runs): accuracy and AUC.
PAPER = {
    "baseline": (0.753, 0.835),
    "standard_da": (0.756, 0.837),
    "gan_r0.5": (0.726, 0.817),
    "centroid_r0.5": (0.804, 0.869),
    "selective_r0.5": (0.821, 0.881),
    "selective_r0.8": (0.802, 0.868),
    "selective_r1.0": (0.787, 0.858),
}


#: The pattern of Xue et al.'s Table 1, as orderings of mean test accuracy: ``(better, worse, claim)``.
PAPER_PATTERN = (
    ("baseline", "gan_r0.5", "unfiltered GAN samples hurt: the baseline beats GAN augmentation at r = 0.5"),
    ("selective_r0.5", "baseline", "selective augmentation at r = 0.5 beats the baseline"),
    ("selective_r0.5", "gan_r0.5", "the filter helps: selective r = 0.5 beats unfiltered r = 0.5"),
    ("selective_r0.5", "standard_da", "selective r = 0.5 beats traditional augmentation"),
    ("centroid_r0.5", "gan_r0.5", "the centroid filter alone beats unfiltered samples"),
    ("selective_r0.5", "selective_r0.8", "r = 0.5 beats r = 0.8"),
    ("selective_r0.8", "selective_r1.0", "r = 0.8 beats r = 1.0"),
)


def paper_pattern(methods: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ordering of Xue et al.'s Table 1 (mean test accuracy) and whether the measured means follow it.

    Returns one ``{"claim", "better", "worse", "paper", "here", "holds"}`` per ordering whose two rows were
    both run; ``paper`` and ``here`` are the two mean accuracies ``(better, worse)``.
    """
    checks = []
    for better, worse, claim in PAPER_PATTERN:
        if better not in methods or worse not in methods:
            continue
        here = (statistics.fmean(methods[better]["accuracy"]), statistics.fmean(methods[worse]["accuracy"]))
        paper = (PAPER[better][0], PAPER[worse][0])
        checks.append(
            {
                "claim": claim,
                "better": better,
                "worse": worse,
                "paper": paper,
                "here": here,
                "holds": here[0] > here[1],
            }
        )
    return checks


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def collect(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list[float]]]:
    """``{row: {metric: [per run]}}`` plus the row's ``p`` and synthetic count."""
    out: dict[str, dict[str, Any]] = {}
    for row, records in rows.items():
        out[row] = {m: [float(r["test"][m]) for r in records] for m in METRICS}
        out[row]["p"] = records[0].get("p")
        out[row]["synthetic"] = [int(r["synthetic"]) for r in records]
        out[row]["best_epoch"] = [int(r["best_epoch"]) for r in records]
    return out


def statistics_tables(methods: dict[str, dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """Friedman + Nemenyi over the rows (runs as blocks) and Wilcoxon of every row against the baseline."""
    per_metric = {m: {row: methods[row][m] for row in methods} for m in ("accuracy", "auc")}
    comparison = None
    if len(methods) >= 3 and len(next(iter(methods.values()))["accuracy"]) >= 2:
        comparison = compare_methods(per_metric, {"accuracy": True, "auc": True})
    tests: dict[str, Any] = {}
    base = methods.get("baseline")
    for row, values in methods.items():
        if row == "baseline" or base is None:
            continue
        tests[row] = {m: wilcoxon(values[m], base[m]).to_dict() for m in ("accuracy", "auc")}
    return comparison, tests


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    from torchvision.utils import make_grid

    return make_grid((images.clamp(-1, 1) + 1) / 2, nrow=nrow, padding=1, pad_value=1.0)


def figures(out: Path, exp: Any, bundle: GanBundle | None) -> dict[str, str]:
    """Sample grid per class, kept vs rejected samples, FID against kimg. Returns ``{name: file}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, str] = {}
    names = getattr(exp.splits["train"], "class_names", None) or [str(i) for i in range(exp.num_classes)]
    x, y = exp.train_xy
    if bundle is not None:
        fig, axes = plt.subplots(2, exp.num_classes, figsize=(4 * exp.num_classes, 8))
        for label in range(exp.num_classes):
            real = x[y == label][:32]
            c = F.one_hot(torch.full((32,), label), exp.num_classes).float()
            fake = bundle.sample(32, seed=77 + label, c=c, noise_mode="random")
            for row, (title, imgs) in enumerate((("real", real), ("cGAN", fake))):
                ax = axes[row, label]
                ax.imshow(_grid(imgs, 8).permute(1, 2, 0).numpy(), cmap="gray")
                ax.set_title(f"{title}: {names[label]}")
                ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / "samples-per-class.png", dpi=110)
        plt.close(fig)
        made["samples"] = "samples-per-class.png"
        result = None
        if "selective_r0.5" in exp.cfg.rows:  # run 0's selection at r = 0.5 (recomputed when resuming)
            result = exp.selection(0.5, 0, exp.sampler(bundle, 1000))
        if result is not None:
            fig, axes = plt.subplots(2, exp.num_classes, figsize=(4 * exp.num_classes, 8))
            for label in range(exp.num_classes):
                members = (result.pool_labels == label).nonzero().flatten()
                kept = members[result.kept[members]]
                rejected_stage1 = members[~result.stage1[members]]
                order = torch.argsort(result.uncertainty[rejected_stage1], descending=True)
                for row, (title, idx) in enumerate(
                    (("kept", kept[:32]), ("rejected (highest entropy)", rejected_stage1[order][:32]))
                ):
                    ax = axes[row, label]
                    ax.imshow(_grid(result.pool[idx], 8).permute(1, 2, 0).numpy(), cmap="gray")
                    ax.set_title(f"{names[label]}: {title}")
                    ax.axis("off")
            fig.tight_layout()
            fig.savefig(out / "kept-vs-rejected.png", dpi=110)
            plt.close(fig)
            made["kept_vs_rejected"] = "kept-vs-rejected.png"
    log = exp.work / "gan" / "log.jsonl"
    if log.is_file() and any("score/fid" in line for line in log.read_text().splitlines()):
        plot_fid_curve(log, out / "fid-curve.png", title="GAN training: FID on the task network's features")
        made["fid_curve"] = "fid-curve.png"
    return made


def write(out: Path, exp: Any, results: dict[str, Any], *, commit: str, command: str) -> dict[str, Any]:
    """Write ``results.json`` and ``report.md`` into ``out``; returns the JSON content."""
    out.mkdir(parents=True, exist_ok=True)
    methods = collect(results["rows"])
    comparison, tests = statistics_tables(methods)
    bundle = results.get("bundle")
    made = figures(out, exp, bundle)
    gan: dict[str, Any] = {}
    if results.get("fidelity"):
        gan = {k: v for k, v in results["fidelity"].items() if isinstance(v, dict)}
    training = {}
    if bundle is not None:
        training = {k: v for k, v in bundle.config.training.items() if not isinstance(v, dict | list)}
    data = {
        "data": exp.cfg.data,
        "gan": gan,
        "gan_training": training,
        "gan_selection": exp.gan_selection(),
        "methods": methods,
        "wilcoxon_vs_baseline": tests,
        "paper_pattern": paper_pattern(methods),
        "friedman_nemenyi": comparison.to_dict() if comparison is not None else None,
        "config": exp.cfg.to_dict(),
        "figures": made,
        "command": command,
        "commit": commit,
    }
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render(data, comparison), encoding="utf-8")
    return data


def selection_lines(selection: dict[str, Any] | None) -> list[str]:
    """The class-recall checkpoint choice as a Markdown table (nothing for the smoothed-FID rule)."""
    if not selection or "chosen" not in selection:
        return []
    s = selection["settings"]
    lines = [
        "## The checkpoint choice (validation split)",
        "",
        "The kept snapshot with the highest smallest per-class recall "
        f"({s['features']} features, k = {s['k']}, mean of {s['draws']} draws; ties to the lower FID) is the "
        "experiment's GAN.",
        "",
        "| snapshot | kimg | FID | smallest class recall | per class (precision / recall) | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in sorted(selection["snapshots"].items(), key=lambda kv: kv[1]["kimg"]):
        per_class = ", ".join(
            f"{c}: {x['precision']:.3f} / {x['recall']:.3f}" for c, x in v["per_class"].items()
        )
        worst = min(x["recall"] for x in v["per_class"].values())
        mark = "yes" if name == selection["chosen"] else ""
        lines.append(f"| {name} | {v['kimg']} | {v['fid']:.2f} | {worst:.3f} | {per_class} | {mark} |")
    return [*lines, ""]


def render(data: dict[str, Any], comparison: Any) -> str:
    """The Markdown report."""
    lines = [
        "# Selective synthetic augmentation on labelled images",
        "",
        f"Data: `{data['data']}`. Command: `{data['command']}` (commit `{data['commit']}`).",
        "",
    ]
    gan = data["gan"]
    if gan:
        draws = next(iter(gan.values())).get("draws", 1)
        lines += ["## The class-conditional GAN on the held-out test split", ""]
        lines += [
            f"k = {data['config'].get('fidelity_k', 3)}, as many samples per class as real test images, "
            f"mean of {draws} sample draw"
            f"{'s' if draws > 1 else ''}.",
            "",
        ]
        lines += [
            "| features | FID | precision | recall | per class (precision / recall) |",
            "|---|---|---|---|---|",
        ]
        for net, scores in gan.items():
            per_class = ", ".join(
                f"{c}: {v['precision']:.3f} / {v['recall']:.3f}"
                for c, v in scores.get("per_class", {}).items()
            )
            cells = [
                net,
                f"{scores['fid']:.2f}",
                f"{scores['precision']:.3f}",
                f"{scores['recall']:.3f}",
                per_class,
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += selection_lines(data.get("gan_selection"))
    lines += ["## Classification on the test split (mean ± std over runs)", ""]
    lines += ["| row | accuracy | AUC | sensitivity | specificity | p | synthetic | Xue et al. (acc / AUC) |"]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for row, values in data["methods"].items():
        paper = PAPER.get(row)
        synthetic = values["synthetic"][0] if values["synthetic"] else 0
        lines.append(
            f"| {LABELS.get(row, row)} | {_mean_std(values['accuracy'])} | {_mean_std(values['auc'])} | "
            f"{_mean_std(values['sensitivity'])} | {_mean_std(values['specificity'])} | "
            f"{'-' if values['p'] is None else values['p']} | {synthetic} | "
            f"{'-' if paper is None else f'{paper[0]:.3f} / {paper[1]:.3f}'} |"
        )
    lines.append("")
    if data["wilcoxon_vs_baseline"]:
        lines += ["## Wilcoxon signed-rank test against the baseline (two-sided)", ""]
        lines += ["| row | accuracy: median diff, p | AUC: median diff, p |", "|---|---|---|"]
        for row, tests in data["wilcoxon_vs_baseline"].items():
            cells = []
            for m in ("accuracy", "auc"):
                t = tests[m]
                p = t["pvalue"]
                p_text = "nan" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.3g}"
                cells.append(f"{t['median_difference']:+.3f}, {p_text}")
            lines.append(f"| {LABELS.get(row, row)} | {cells[0]} | {cells[1]} |")
        runs = len(next(iter(data["methods"].values()))["accuracy"])
        floor = 2.0 / 2**runs
        lines += [
            "",
            f"With {runs} runs the smallest two-sided Wilcoxon p-value possible is {floor:.3g}"
            + (
                ", so no single row can reach p < 0.05 on its own; the Friedman test over all rows is the "
                "significance test here."
                if floor >= 0.05
                else "."
            ),
            "",
        ]
    if comparison is not None:
        lines += ["## Friedman + Nemenyi (runs as blocks)", "", comparison.to_markdown(), ""]
    if data.get("paper_pattern"):
        held = sum(c["holds"] for c in data["paper_pattern"])
        lines += [
            "## Does Xue et al.'s pattern hold here?",
            "",
            f"{held} of the {len(data['paper_pattern'])} orderings of their Table 1 hold in the mean test "
            "accuracy measured here (the direction of the means, not a significance test: see the tests "
            "above).",
            "",
            "| Xue et al.'s ordering | theirs | here | holds |",
            "|---|---|---|---|",
        ]
        for c in data["paper_pattern"]:
            lines.append(
                f"| {c['claim']} | {c['paper'][0]:.3f} > {c['paper'][1]:.3f} | "
                f"{c['here'][0]:.3f} {'>' if c['holds'] else '<='} {c['here'][1]:.3f} | "
                f"{'yes' if c['holds'] else 'no'} |"
            )
        lines.append("")
    for key, title in (
        ("samples", "Real and generated images per class"),
        ("kept_vs_rejected", "Kept and rejected synthetic samples (r = 0.5, run 0)"),
        ("fid_curve", "FID during GAN training"),
    ):
        if key in data["figures"]:
            lines += [f"### {title}", "", f"![{title}]({data['figures'][key]})", ""]
    return "\n".join(lines) + "\n"
