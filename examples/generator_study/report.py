"""The study's report: ``results.json``, ``report.md`` and the sample figure, and the pattern of Xing et al.'s
Table II checked against the measured numbers."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latent_transforms.tasks import UtilityComparison

from .pipeline import GROUP, ROWS, Study

LABELS = {
    "real": "Real (no augmentation)",
    "standard_da": "StandardDA (traditional augmentation)",
    "sg2sample": "SG2Sample (cGAN, ψ = 1)",
    "latent_augment": "LatentAugment (cGAN, inverted training images)",
    "ddpm": "DDPM (diffusion, DDIM)",
}
#: Xing et al. 2023, Table II (chest X-rays, 512 px, InceptionV3 features; accuracy in %): the rows this
#: study has a counterpart of. Training = real, Augmented = traditional augmentation, LDM = the diffusion
#: model; the utility columns are the accuracies (their table gives the change against Training).
PAPER: dict[str, dict[str, float]] = {
    "real": {
        "fid": 6.06,
        "precision": 0.73,
        "recall": 0.80,
        "variety": 50.46,
        "augmentation_utility": 84.77,
        "extraction_utility": 84.77,
    },
    "standard_da": {
        "fid": 35.45,
        "precision": 0.03,
        "recall": 0.80,
        "variety": 51.58,
        "augmentation_utility": 84.77 - 5.12,
    },
    "sg2sample": {
        "fid": 9.85,
        "precision": 0.68,
        "recall": 0.19,
        "variety": 115.62,
        "augmentation_utility": 84.77 - 1.92,
        "extraction_utility": 84.77 + 1.76,
        "seconds_per_1000": 60.0,
    },
    "ddpm": {
        "fid": 25.68,
        "precision": 0.19,
        "recall": 0.04,
        "variety": 70.59,
        "augmentation_utility": 84.77 - 0.64,
        "extraction_utility": 84.77 - 0.80,
        "seconds_per_1000": 39 * 60.0,
    },
}
#: The significance level of the statements about utility (their ``*``: p < 0.05).
ALPHA = 0.05
FIDELITY = ("fid", "precision", "recall")


@dataclass(frozen=True)
class Claim:
    """One statement of Xing et al.'s Table II about two rows.

    ``kind``: ``"lower"`` / ``"higher"`` (the mean of ``metric`` for ``a`` is lower / higher than for
    ``b``), ``"not-significantly-better"`` (``a`` is not above ``b`` with a paired two-sided Wilcoxon
    p < 0.05 over the runs) or ``"not-significantly-different"`` (that test gives p >= 0.05).
    """

    kind: str
    metric: str
    a: str
    b: str
    text: str


#: The pattern of Table II (X-ray), as statements the measured numbers either follow or not.
PAPER_PATTERN = (
    Claim("lower", "fid", "sg2sample", "ddpm", "StyleGAN2 has a better (lower) FID than the diffusion model"),
    Claim(
        "higher",
        "precision",
        "sg2sample",
        "ddpm",
        "StyleGAN2 has a higher precision than the diffusion model",
    ),
    Claim("higher", "recall", "sg2sample", "ddpm", "StyleGAN2 has a higher recall than the diffusion model"),
    Claim(
        "higher",
        "variety",
        "sg2sample",
        "real",
        "StyleGAN2's samples vary less than the real images (a larger mean image)",
    ),
    Claim(
        "higher",
        "variety",
        "sg2sample",
        "ddpm",
        "StyleGAN2's samples vary less than the diffusion model's (a larger mean image)",
    ),
    Claim(
        "lower",
        "augmentation_utility",
        "standard_da",
        "real",
        "traditional augmentation lowers the accuracy of real-only training",
    ),
    Claim(
        "not-significantly-better",
        "augmentation_utility",
        "sg2sample",
        "standard_da",
        "StyleGAN2 augmentation does not beat traditional augmentation significantly",
    ),
    Claim(
        "not-significantly-better",
        "augmentation_utility",
        "ddpm",
        "standard_da",
        "diffusion augmentation does not beat traditional augmentation significantly",
    ),
    Claim(
        "not-significantly-better",
        "augmentation_utility",
        "sg2sample",
        "real",
        "adding StyleGAN2 images does not improve on real-only training significantly",
    ),
    Claim(
        "not-significantly-better",
        "augmentation_utility",
        "ddpm",
        "real",
        "adding diffusion images does not improve on real-only training significantly",
    ),
    Claim(
        "not-significantly-different",
        "extraction_utility",
        "sg2sample",
        "real",
        "features pretrained on StyleGAN2 images are as good as on real images (no significant difference)",
    ),
    Claim(
        "not-significantly-different",
        "extraction_utility",
        "ddpm",
        "real",
        "features pretrained on diffusion images are as good as on real images (no significant difference)",
    ),
    Claim(
        "higher",
        "seconds_per_1000",
        "ddpm",
        "sg2sample",
        "the diffusion model is slower to sample than StyleGAN2",
    ),
)


def wilcoxon_floor(runs: int) -> float:
    """The smallest two-sided p-value a Wilcoxon signed-rank test of ``runs`` pairs can give (2 / 2^n).

    Example:
        >>> wilcoxon_floor(5), wilcoxon_floor(6)
        (0.0625, 0.03125)
    """
    return 2.0 / 2**runs


def _mean(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, list):
        return statistics.fmean(value) if value else None
    return float(value)


def _paired(a: list[float], b: list[float], metric: str) -> UtilityComparison:
    return UtilityComparison("paired", metric, list(a), list(b), list(range(len(a))))


def paper_pattern(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each statement of :data:`PAPER_PATTERN` and whether the measured numbers follow it.

    ``rows`` are the rows of ``results.json``: per row the Lite0 ``fid`` / ``precision`` / ``recall``, the
    task network's under ``task_network``, ``variety``, ``seconds_per_1000`` and the per-run lists
    ``augmentation_utility`` / ``extraction_utility``. A statement whose rows or numbers are missing is
    left out. Returns one dict per statement: ``claim``, ``kind``, ``metric``, ``rows`` (a, b),
    ``paper`` and ``here`` (the two values: means for the utility lists), ``pvalue`` (the paired test, for
    the utility statements), ``holds``, ``testable`` (``False`` when the runs are too few for the test
    ever to reach p < 0.05, so a "not significantly" statement cannot fail) and, for the fidelity
    statements, ``task_network`` (``here`` and ``holds`` on the task network's features).
    """
    checks: list[dict[str, Any]] = []
    for claim in PAPER_PATTERN:
        if claim.a not in rows or claim.b not in rows:
            continue
        raw_a, raw_b = rows[claim.a].get(claim.metric), rows[claim.b].get(claim.metric)
        here = (_mean(raw_a), _mean(raw_b))
        if here[0] is None or here[1] is None:
            continue
        check: dict[str, Any] = {
            "claim": claim.text,
            "kind": claim.kind,
            "metric": claim.metric,
            "rows": [claim.a, claim.b],
            "paper": [PAPER.get(claim.a, {}).get(claim.metric), PAPER.get(claim.b, {}).get(claim.metric)],
            "here": list(here),
            "pvalue": None,
            "testable": True,
        }
        if claim.kind in ("lower", "higher"):
            check["holds"] = here[0] < here[1] if claim.kind == "lower" else here[0] > here[1]
            if claim.metric in FIDELITY:
                task = (
                    rows[claim.a]["task_network"][claim.metric],
                    rows[claim.b]["task_network"][claim.metric],
                )
                check["task_network"] = {
                    "here": list(task),
                    "holds": task[0] < task[1] if claim.kind == "lower" else task[0] > task[1],
                }
        else:
            if not isinstance(raw_a, list) or not isinstance(raw_b, list) or len(raw_a) != len(raw_b):
                continue
            test = _paired(raw_a, raw_b, claim.metric)
            check["pvalue"] = test.pvalue
            check["testable"] = wilcoxon_floor(len(raw_a)) < ALPHA
            significant = test.pvalue is not None and test.pvalue < ALPHA
            if claim.kind == "not-significantly-better":
                check["holds"] = not (significant and here[0] > here[1])
            else:
                check["holds"] = not significant
        checks.append(check)
    return checks


# -- collecting the rows -------------------------------------------------------------------------------


def _peak(result: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """Peak memory in GB and what it measures (GPU memory, or the process's resident set on a CPU)."""
    if not result:
        return None, None
    if result.get("peak_memory_gb") is not None:
        return float(result["peak_memory_gb"]), "GPU memory allocated"
    if result.get("peak_rss_gb") is not None:
        return float(result["peak_rss_gb"]), "process resident set (CPU)"
    return None, None


def collect(study: Study, results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``rows`` of ``results.json``, from the evaluation reports and the utility runs."""
    rows: dict[str, dict[str, Any]] = {}
    lite, task = study.feature_networks()
    for row in ROWS:
        group = GROUP[row]
        index = [r for r in ROWS if GROUP[r] == group].index(row)
        measured = {net: results["reports"][group][net].rows[index] for net in (lite, task)}
        first = measured[lite]
        efficiency = first.efficiency
        peak, peak_kind = _peak(efficiency)
        utility = results["utility"][row]
        rows[row] = {
            "label": LABELS[row],
            "policy": study.spec(row),
            "fid": first.fid["mean"],
            "precision": first.precision["mean"],
            "recall": first.recall["mean"],
            "task_network": {m: getattr(measured[task], m)["mean"] for m in FIDELITY},
            "fidelity": {
                net: {
                    m: getattr(r, m)["mean"]
                    for m in ("fid", "precision", "recall", "f1", "density", "coverage")
                }
                for net, r in measured.items()
            },
            "variety": first.mean_image_kb["mean"],
            "augmentation_utility": utility.get("augmentation"),
            "extraction_utility": utility.get("feature-extraction"),
            "utility_seconds": {
                protocol: times or None
                for protocol, times in results.get("utility_seconds", {}).get(row, {}).items()
            },
            "seconds_per_1000": None if efficiency is None else efficiency["seconds_per_1000"],
            "peak_memory_gb": peak,
            "peak_memory": peak_kind,
            "efficiency": efficiency,
            "n_samples": first.n_samples,
        }
    metric = study.cfg.metric
    for row, entry in rows.items():
        for column in ("augmentation_utility", "extraction_utility"):
            reference = rows["real"][column]
            if row == "real" or entry[column] is None or reference is None:
                entry[f"{column}_vs_real"] = None
                continue
            test = _paired(entry[column], reference, metric)
            entry[f"{column}_vs_real"] = {
                "gain": test.gain,
                "pvalue": test.pvalue,
                "statistic": test.statistic,
            }
        entry["augmentation_utility_vs_standard_da"] = None
        if row in ("sg2sample", "latent_augment", "ddpm"):
            test = _paired(entry["augmentation_utility"], rows["standard_da"]["augmentation_utility"], metric)
            entry["augmentation_utility_vs_standard_da"] = {
                "gain": test.gain,
                "pvalue": test.pvalue,
                "statistic": test.statistic,
            }
    return rows


def figure(out: Path, study: Study, grids: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> str:
    """``samples.png``: per row, a grid of images of each class. Returns the file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    names = getattr(study.splits["train"], "class_names", None) or [str(c) for c in range(study.num_classes)]
    fig, axes = plt.subplots(
        len(ROWS), study.num_classes, figsize=(1.5 + 2.6 * study.num_classes, 1.4 * len(ROWS)), squeeze=False
    )
    for i, row in enumerate(ROWS):
        images, labels = grids[row]
        for c in range(study.num_classes):
            ax = axes[i, c]
            chosen = images[labels == c]
            grid = make_grid((chosen.clamp(-1, 1) + 1) / 2, nrow=4, padding=1, pad_value=1.0)
            ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"class {names[c]}")
            if c == 0:
                ax.set_ylabel(LABELS[row].split(" (")[0], rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=110)
    plt.close(fig)
    return "samples.png"


def write(out: Path, study: Study, results: dict[str, Any], *, commit: str, command: str) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and ``samples.png`` into ``out``; returns the JSON content."""
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(study, results)
    lite, task = study.feature_networks()
    some = {net: results["reports"]["gan"][net].settings for net in (lite, task)}
    generators = {}
    for name, bundle, source in (
        ("gan", study.gan, study.gan_source),
        ("diffusion", study.diffusion, study.diffusion_source),
    ):
        training = {k: v for k, v in bundle.config.training.items() if not isinstance(v, dict | list)}
        generators[name] = {"source": source, "fingerprint": bundle.fingerprint, "training": training}
    data = {
        "data": study.cfg.data,
        "rows": rows,
        "metric": study.cfg.metric,
        "runs": study.cfg.runs,
        "paper_pattern": paper_pattern(rows),
        "feature_networks": {
            net: {"name": s.get("feature_network"), "fingerprint": s.get("feature_fingerprint")}
            for net, s in some.items()
        },
        "reference": some[lite].get("reference"),
        "generators": generators,
        "inversion": study.inversion,
        "device": study.device.type,
        "work": results["work"],
        "figures": {"samples": figure(out, study, results["grids"])},
        "config": study.cfg.to_dict(),
        "command": command,
        "commit": commit,
    }
    (out / "results.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render(data), encoding="utf-8")
    return data


# -- Markdown ------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _runs(values: list[float] | None) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {std:.3f}"


def _seconds(values: list[float] | None) -> str:
    return "-" if not values else f"{statistics.fmean(values):.0f} ({len(values)} runs)"


def _test(test: dict[str, Any] | None) -> str:
    return "-" if not test else f"{test['gain']:+.3f}, p = {_p(test['pvalue'])}"


def _pair(values: list[Any], metric: str, *, paper: bool = False) -> str:
    if values[0] is None or values[1] is None:
        return "-"
    if paper and metric.endswith("_utility"):  # their accuracies, in %
        return f"{values[0]:.2f} % vs {values[1]:.2f} %"
    digits = 1 if metric == "seconds_per_1000" else 2 if metric in ("fid", "variety") else 3
    return f"{values[0]:.{digits}f} vs {values[1]:.{digits}f}"


def render(data: dict[str, Any]) -> str:
    """The Markdown report."""
    rows = data["rows"]
    metric = data["metric"]
    nets = list(data["feature_networks"])
    lines = [
        "# Generators side by side: fidelity, variety, utility, efficiency (Xing et al. 2023)",
        "",
        f"Data: `{data['data']}`. Command: `{data['command']}` (commit `{data['commit']}`).",
        "",
        f"Fidelity is measured against {data['reference']}; the utility columns are the task classifier's "
        f"test {metric} over {data['runs']} runs (seeds 0-{data['runs'] - 1}), each row paired with the real "
        "row's runs of the same seed (two-sided Wilcoxon signed-rank test).",
        "",
        "## Fidelity and variety",
        "",
        f"| row | FID ({nets[0]}) | precision | recall | FID ({nets[1]}) | precision | recall | "
        "mean image (KB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        t = row["task_network"]
        lines.append(
            f"| {row['label']} | {_num(row['fid'], 2)} | {_num(row['precision'])} | {_num(row['recall'])} | "
            f"{_num(t['fid'], 2)} | {_num(t['precision'])} | {_num(t['recall'])} | "
            f"{_num(row['variety'], 2)} |"
        )
    lines += [
        "",
        "## Utility and efficiency",
        "",
        f"| row | augmentation utility ({metric}) | vs real: Δ, p | feature-extraction utility ({metric}) | "
        "vs real: Δ, p | s / 1000 images | peak memory (GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        extraction = row["extraction_utility"]
        lines.append(
            f"| {row['label']} | {_runs(row['augmentation_utility'])} | "
            f"{_test(row['augmentation_utility_vs_real'])} | "
            f"{_runs(extraction) if extraction is not None else 'n/a (makes no images of its own)'} | "
            f"{_test(row['extraction_utility_vs_real'])} | {_num(row['seconds_per_1000'], 1)} | "
            f"{_num(row['peak_memory_gb'], 2)} |"
        )
    kinds = sorted({r["peak_memory"] for r in rows.values() if r["peak_memory"]})
    lines += [
        "",
        f"Peak memory: {', '.join(kinds) or 'not measured'} (the whole process while it made the images). "
        "The real row makes no images.",
        "",
        "## Wilcoxon signed-rank tests (two-sided, paired by seed)",
        "",
        "| row | augmentation vs real | feature extraction vs real | augmentation vs StandardDA |",
        "|---|---|---|---|",
    ]
    for name, row in rows.items():
        if name == "real":
            continue
        lines.append(
            f"| {row['label']} | {_test(row['augmentation_utility_vs_real'])} | "
            f"{_test(row['extraction_utility_vs_real'])} | "
            f"{_test(row['augmentation_utility_vs_standard_da'])} |"
        )
    floor = wilcoxon_floor(data["runs"])
    lines += [
        "",
        f"With {data['runs']} runs the smallest two-sided p-value the test can give is {floor:.3g}"
        + (", so no row can differ significantly (p < 0.05) from another here." if floor >= ALPHA else "."),
        "",
    ]
    checks = data["paper_pattern"]
    if checks:
        held = sum(c["holds"] for c in checks)
        lines += [
            "## Does Xing et al.'s pattern hold here?",
            "",
            "Xing et al. 2023, Table II (chest X-rays at 512 px): StyleGAN2 reaches FID 9.85 against the "
            "latent diffusion model's 25.68, yet neither generator's images beat traditional augmentation "
            "significantly. Each statement of that table, computed from the numbers above (fidelity on "
            f"{nets[0]} features, the task network's in the last column; utility in {metric}; their utility "
            "numbers are accuracies in %, their efficiency (1 and 39 minutes per 1,000 images on a GPU) is "
            "given in seconds):",
            "",
            f"{held} of the {len(checks)} statements hold here.",
            "",
            f"| statement | Xing et al. | here | holds? | on {nets[1]} features |",
            "|---|---|---|---|---|",
        ]
        for c in checks:
            verdict = "holds" if c["holds"] else "does not hold"
            if c["kind"].startswith("not-"):
                verdict += (
                    f" (p = {_p(c['pvalue'])})" if c["pvalue"] is not None else " (the runs do not differ)"
                )
                if not c["testable"]:
                    verdict += f"; cannot fail with {data['runs']} runs"
            task = c.get("task_network")
            task_text = "-"
            if task:
                task_text = f"{_pair(task['here'], c['metric'])}: " + (
                    "holds" if task["holds"] else "does not hold"
                )
            theirs, here = _pair(c["paper"], c["metric"], paper=True), _pair(c["here"], c["metric"])
            lines.append(f"| {c['claim']} | {theirs} | {here} | {verdict} | {task_text} |")
        lines.append("")
    lines += [
        "## Samples",
        "",
        "Each row's images, one panel per class (real: training images; StandardDA: the same images "
        "augmented; LatentAugment: walks of training images of that class).",
        "",
        f"![Samples per row and class]({data['figures']['samples']})",
        "",
        "## How the rows were made",
        "",
        "- Fidelity, variety and efficiency: `latent_transforms.evaluate_policies` on each group of rows "
        "(`real`, `standardda`; `sg2sample:psi=...` and `latentaugment:preset=...` with the GAN; "
        "`diffusion:bundle=...,steps=...`), against the whole test split, once per feature network. The "
        "conditional generators' samples follow the training split's class balance, as the real and "
        f"StandardDA rows do. LatentAugment (preset `{data['config']['preset']}`) walks inverted training "
        "images, each from its own latent and with its own class, which the conditional discriminator is "
        "told; the one-off inversion of the training split is not counted in its efficiency.",
        "- Utility: `latent_transforms.tasks.classifier_utility`. Augmentation: the generators (and "
        "LatentAugment, walking training images of the drawn classes) add as many labelled images as there "
        "are training images, with the real class "
        f"balance; StandardDA augments each training batch online (p = {data['config']['augment_p']}). "
        "Feature extraction: pretrain on the synthetic images only, then fine-tune the last layer on "
        f"{data['config']['fraction']:.0%} of the real training images for "
        f"{data['config']['finetune_epochs']} epochs; the real row pretrains on the real images.",
        "",
        "Seconds per utility run (mean over the runs; each run trains its classifier and, for a generator's "
        "row, draws its synthetic set, once for both protocols, so the first protocol's time includes the "
        f"draw). They are the times measured when each run was made, on `{data['device']}`, "
        "with whatever else the machine was doing then:",
        "",
        "| row | augmentation | feature extraction |",
        "|---|---|---|",
        *(
            f"| {row['label']} | {_seconds(row['utility_seconds'].get('augmentation'))} | "
            f"{_seconds(row['utility_seconds'].get('feature-extraction'))} |"
            for row in data["rows"].values()
        ),
        "",
        "Work done by this invocation: made "
        + (json.dumps(data["work"]["made"]) or "{}")
        + ", reused "
        + json.dumps(data["work"]["reused"])
        + ".",
        "",
    ]
    return "\n".join(lines) + "\n"
