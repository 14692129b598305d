"""Turn the finished runs into the paper's tables and figures: ``report.md``, ``results.json``, PNGs.

- Table II: each policy's test MAE (in the body), SSIM, PSNR and LPIPS, mean ± std over seeds (each
  seed's value is the mean over the test slices), the augmentation time per batch measured during
  training, and the paper's values next to them.
- Table III: Friedman per metric over the test slices (each policy's per-slice values averaged over its
  seeds), then Nemenyi where Friedman finds a difference (``latent_transforms.compare_methods``).
- Table V: the MAE-preset LatentAugment with each loss term switched off, MAE and time with the change
  against the full loss.
- Fig. 4 (MAE against HU), Fig. 6 (validation MAE against ``p_aug``), Table IV (sCT error maps).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import latent_transforms as lt

from .evaluation import HIGHER_IS_BETTER
from .figures import plot_error_maps, plot_mae_vs_hu, plot_p_sweep
from .policies import ABLATIONS, main_policies

#: Tronchin et al. 2023, Table II: test MAE [HU], SSIM, PSNR [dB], LPIPS, throughput [s] on an RTX A5000.
PAPER_TABLE_II: dict[str, dict[str, float | None]] = {
    "Baseline": {"mae": 45.64, "ssim": 0.929, "psnr": 33.62, "lpips": 0.0657, "throughput": None},
    "Standard DA": {"mae": 44.73, "ssim": 0.931, "psnr": 33.82, "lpips": 0.0632, "throughput": 0.0348},
    "Standard SG2 DA": {"mae": 42.26, "ssim": 0.934, "psnr": 34.19, "lpips": 0.0645, "throughput": 0.0309},
    "LatentAugment (F1)": {"mae": 39.32, "ssim": 0.937, "psnr": 34.29, "lpips": 0.0610, "throughput": 2.55},
    "LatentAugment (MAE)": {"mae": 39.39, "ssim": 0.937, "psnr": 34.41, "lpips": 0.0633, "throughput": 2.55},
}
#: The paper's Table V MAE [HU] per ablation (reference row: 39.39).
PAPER_TABLE_V = {
    "latentaugment-mae": 39.39,
    "ablate-diversity": 41.99,
    "ablate-lat": 41.29,
    "ablate-perc": 40.46,
    "ablate-pix": 39.92,
    "ablate-fidelity": 40.05,
}
METRICS = ("mae", "ssim", "psnr", "lpips")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value).

    Example:
        >>> mean_std([1.0, 3.0])
        (2.0, 1.4142135623730951)
    """
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def _fmt(mean: float, std: float, metric: str, n: int) -> str:
    digits = {"mae": 2, "psnr": 2, "ssim": 4, "lpips": 4}.get(metric, 4)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def _by_policy(results: list[dict[str, Any]], role: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if role in r["roles"]:
            out.setdefault(r["policy"]["name"], []).append(r)
    for runs in out.values():
        runs.sort(key=lambda r: r["seed"])
    return out


def table_ii(results: list[dict[str, Any]], units: str) -> tuple[str, dict[str, Any]]:
    """Table II as Markdown and as numbers (``{label: {metric: {"mean", "std", "n"}}}``)."""
    groups = _by_policy(results, "main")
    metrics = [m for m in METRICS if all(m in r["test"]["mean"] for runs in groups.values() for r in runs)]
    numbers: dict[str, Any] = {}
    base_mae = None
    for policy in main_policies():
        runs = groups.get(policy.name)
        if not runs:
            continue
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "p": policy.p}
        for m in metrics:
            mean, std = mean_std([r["test"]["mean"][m] for r in runs])
            entry[m] = {"mean": mean, "std": std, "n": len(runs)}
        times = [t for t in (r["training"]["augment_seconds_per_batch"] for r in runs) if t is not None]
        if times:
            t_mean, t_std = mean_std(times)
            entry["augment_seconds_per_batch"] = {"mean": t_mean, "std": t_std, "n": len(times)}
            entry["augmented_fraction"] = mean_std([r["training"]["augmented_fraction"] for r in runs])[0]
        if policy.name == "baseline":
            base_mae = entry["mae"]["mean"]
        elif base_mae:
            entry["mae_change_vs_baseline"] = (entry["mae"]["mean"] - base_mae) / base_mae
        numbers[policy.label] = entry
    header = [
        "Method",
        "Objective",
        "p (p_aug)",
        *[_metric_title(m, units) for m in metrics],
        "Aug. s / batch",
    ]
    lines = [_row(header), _row(["---"] * len(header)), *(_row(r) for r in _rows(numbers, metrics))]
    return "\n".join(lines), numbers


def _rows(numbers: dict[str, Any], metrics: list[str]) -> list[list[str]]:
    rows = []
    for policy in main_policies():
        entry = numbers.get(policy.label)
        if entry is None:
            continue
        n = len(entry["seeds"])
        cells = [policy.label, policy.objective or "-", f"{policy.p:g} ({1 - policy.p:g})"]
        cells += [_fmt(entry[m]["mean"], entry[m]["std"], m, n) for m in metrics]
        t = entry.get("augment_seconds_per_batch")
        cells.append(f"{t['mean']:.4f}" if t else "-")
        rows.append(cells)
    return rows


def _metric_title(metric: str, units: str) -> str:
    return {"mae": f"MAE [{units}] ↓", "ssim": "SSIM ↑", "psnr": "PSNR [dB] ↑", "lpips": "LPIPS ↓"}[metric]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def paper_comparison(numbers: dict[str, Any]) -> str:
    """Our MAE change against the Baseline next to the paper's (the paper's gains are relative)."""
    lines = [
        _row(["Method", "MAE change vs Baseline (here)", "MAE (paper)", "MAE change vs Baseline (paper)"]),
        _row(["---"] * 4),
    ]
    paper_base = PAPER_TABLE_II["Baseline"]["mae"]
    for label, entry in numbers.items():
        here = entry.get("mae_change_vs_baseline")
        paper = PAPER_TABLE_II.get(label, {}).get("mae")
        change = (paper - paper_base) / paper_base if paper is not None and paper_base else None
        lines.append(
            _row(
                [
                    label,
                    f"{here:+.1%}" if here is not None else "-",
                    f"{paper:.2f}" if paper is not None else "-",
                    f"{change:+.1%}" if change is not None and label != "Baseline" else "-",
                ]
            )
        )
    return "\n".join(lines)


def table_iii(results: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """Friedman + Nemenyi over the test slices (per-slice values averaged over each policy's seeds)."""
    groups = _by_policy(results, "main")
    labels = {p.name: p.label for p in main_policies()}
    present = [name for name in labels if name in groups]
    if len(present) < 3:
        return "(Table III needs at least three policies with finished runs.)", None
    seeds = {name: {r["seed"] for r in groups[name]} for name in present}
    common = set.intersection(*seeds.values())
    per_metric: dict[str, dict[str, list[float]]] = {}
    for metric in METRICS:
        if not all(metric in r["test"]["per_slice"] for name in present for r in groups[name]):
            continue
        per_metric[metric] = {}
        for name in present:
            runs = [r for r in groups[name] if r["seed"] in common]
            columns = [r["test"]["per_slice"][metric] for r in runs]
            per_metric[metric][labels[name]] = [sum(v) / len(v) for v in zip(*columns, strict=True)]
    comparison = lt.compare_methods(per_metric, {m: HIGHER_IS_BETTER[m] for m in per_metric})
    return comparison.to_markdown(), {"seeds": sorted(common), **comparison.to_dict()}


def table_v(results: list[dict[str, Any]], units: str) -> tuple[str, dict[str, Any]]:
    """Table V: the ablations against the full MAE-preset loss (MAE and augmentation time, with change)."""
    groups = _by_policy(results, "ablation")
    order = ["latentaugment-mae", *ABLATIONS]
    ref = groups.get("latentaugment-mae")
    if not ref:
        return "(not run: the ablation runs are off or not finished.)", {}
    ref_mae = mean_std([r["test"]["mean"]["mae"] for r in ref])[0]
    ref_t = mean_std([r["training"]["augment_seconds_per_batch"] for r in ref])[0]
    header = ["α_pix", "α_perc", "α_lat", "α_f", f"MAE [{units}] ↓", "Aug. s / batch ↓", "MAE (paper)"]
    lines = [_row(header), _row(["---"] * len(header))]
    numbers: dict[str, Any] = {}
    for name in order:
        runs = groups.get(name)
        if not runs:
            continue
        options = runs[0]["policy"]
        alphas = _alphas(options)
        mae_mean, mae_std = mean_std([r["test"]["mean"]["mae"] for r in runs])
        t_mean = mean_std([r["training"]["augment_seconds_per_batch"] for r in runs])[0]
        change = "" if name == "latentaugment-mae" else f" ({(mae_mean - ref_mae) / ref_mae:+.1%})"
        t_change = "" if name == "latentaugment-mae" or not ref_t else f" ({(t_mean - ref_t) / ref_t:+.1%})"
        numbers[name] = {
            "alphas": alphas,
            "mae": {"mean": mae_mean, "std": mae_std, "n": len(runs)},
            "seconds": t_mean,
        }
        lines.append(
            _row(
                [
                    *(f"{alphas[k]:g}" for k in ("alpha_pix", "alpha_perc", "alpha_lat", "alpha_f")),
                    _fmt(mae_mean, mae_std, "mae", len(runs)) + change,
                    f"{t_mean:.4f}{t_change}",
                    f"{PAPER_TABLE_V[name]:.2f}",
                ]
            )
        )
    return "\n".join(lines), numbers


def _alphas(policy: dict[str, Any]) -> dict[str, float]:
    preset = lt.PRESETS[policy.get("preset", "mae")]
    return {k: float(policy.get(k, preset[k])) for k in ("alpha_pix", "alpha_perc", "alpha_lat", "alpha_f")}


def hu_curves(results: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """Fig. 4's curves: per Table II policy, MAE per bin pooled over its seeds (NaN for empty bins)."""
    groups = _by_policy(results, "main")
    curves = {}
    for policy in main_policies():
        runs = groups.get(policy.name)
        if not runs:
            continue
        edges = runs[0]["test"]["hu_curve"]["edges"]
        sums = [sum(v) for v in zip(*(r["test"]["hu_curve"]["sums"] for r in runs), strict=True)]
        counts = [sum(v) for v in zip(*(r["test"]["hu_curve"]["counts"] for r in runs), strict=True)]
        centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        curves[policy.label] = (
            centres,
            [s / c if c else math.nan for s, c in zip(sums, counts, strict=True)],
        )
    return curves


def sweep_points(results: list[dict[str, Any]]) -> tuple[str, list[tuple[float, float]]]:
    """Fig. 6's points: ``(p, validation MAE)`` of every sweep run, and the swept policy's label."""
    runs = [r for r in results if "sweep" in r["roles"]]
    label = runs[0]["policy"]["label"] if runs else ""
    return label, sorted((r["policy"]["p"], r["val"]["mean"]["mae"]) for r in runs)


def write_report(
    out: Path, results: list[dict[str, Any]], context: dict[str, Any], example: dict[str, Any] | None
) -> dict[str, Any]:
    """Write ``report.md``, ``results.json`` and the figures into ``out``; returns the JSON content."""
    units = context["units"]
    figures: dict[str, str] = {}
    t2, t2_numbers = table_ii(results, units)
    t3, t3_numbers = table_iii(results)
    t5, t5_numbers = table_v(results, units)
    curves = hu_curves(results)
    if curves:
        figures["fig4"] = plot_mae_vs_hu(
            curves, out / "fig4_mae_vs_hu.png", units=units, body_threshold=context["body_threshold"]
        ).name
    label, points = sweep_points(results)
    if points:
        figures["fig6"] = plot_p_sweep(points, out / "fig6_p_sweep.png", label=label, units=units).name
    if example is not None:
        figures["table4"] = plot_error_maps(
            example["mri"],
            example["ct"],
            example["sct"],
            out / "table4_error_maps.png",
            units=units,
            title=f"test slice {example['key']} (seed of each policy's first run)",
        ).name
    summary = {
        **context,
        "table_ii": t2_numbers,
        "table_iii": t3_numbers,
        "table_v": t5_numbers,
        "fig4": {
            k: {"centres": c, "mae": [None if math.isnan(v) else v for v in m]}
            for k, (c, m) in curves.items()
        },
        "fig6": {"policy": label, "points": points},
        "figures": figures,
        "runs": results,
    }
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(tmp, out / "results.json")
    (out / "report.md").write_text(_markdown(context, t2, t2_numbers, t3, t5, figures, points, label))
    return summary


def _markdown(
    context: dict[str, Any],
    t2: str,
    t2_numbers: dict[str, Any],
    t3: str,
    t5: str,
    figures: dict[str, str],
    points: list[tuple[float, float]],
    sweep_label: str,
) -> str:
    env, cfg, data = context["environment"], context["config"], context["data"]
    units = context["units"]
    status = "complete" if context["complete"] else "INCOMPLETE (rerun the same command to resume)"
    note = (context["lpips_note"] or "").split(". Fix:")[0]
    lpips = context["lpips"] or f"not computed: {note} (the fix is in results.json, `lpips_note`)"
    px = cfg["pix2pix"]
    parts = [
        "# Pix2Pix MRI-to-CT benchmark (Tronchin et al. 2023, Tables II-V, Figs. 4 and 6)",
        "",
        f"- Status: **{status}**; {len(context['planned_runs'])} runs planned"
        + (" (quick mode: smoke size, the numbers do not mean anything)" if cfg["quick"] else ""),
        f"- Command: `{cfg['command']}`",
        f"- Device: {env['device']} ({env['device_name']}), torch {env['torch']}, latent-transforms "
        f"{env['latent_transforms']}, commit {env['commit']}, {env['date']}",
        f"- Data: `{data['data']}` at {data['resolution']} px; patients (train/val/test) {data['patients']}, "
        f"slices used {data['slices_used']}; split {data['split_fractions']} seed {data['split_seed']}",
        f"- GAN: `{context['gan']['source']}` (fingerprint {context['gan']['fingerprint']}); latent cache: "
        f"{context['latent_cache']}",
        f"- Pix2Pix: {px['epochs']} epochs ({px['epochs_decay']} decaying), batch {px['batch_size']}, lr "
        f"{px['lr']}, λ_L1 {px['lambda_l1']}, ngf {px['ngf']}, ndf {px['ndf']}; seeds {cfg['seeds']} "
        f"(Table II), "
        + (f"{cfg['ablation_seeds']} (Table V)" if cfg["ablation"] else "no Table V (--no-ablation)"),
        f"- Metrics on the test patients: MAE inside the body (reference CT > {context['body_threshold']:g} "
        f"{units}), SSIM, PSNR (peak = CT window width), LPIPS ({lpips})",
        "",
        "## Table II: downstream performance (test set, mean ± std over seeds)",
        "",
        t2,
        "",
        "Aug. s / batch: the mean time of the augmentation call per training batch of "
        f"{px['batch_size']}, measured during training (with synchronisation; the first call, which loads "
        "the networks, left out), as the paper's throughput column; only the drawn samples (p) are "
        "augmented.",
        "",
        "Against the paper (Tronchin et al. 2023, Table II; its test MAE in HU on 375 patients at 256 px):",
        "",
        paper_comparison(t2_numbers),
        "",
        "## Table III: Friedman + Nemenyi over the test slices",
        "",
        t3,
        "",
        "## Table V: ablation of the loss terms (LatentAugment, MAE preset)",
        "",
        t5,
        "",
        "## Fig. 4: MAE against the reference CT value",
        "",
        f"![MAE vs HU]({figures['fig4']})" if "fig4" in figures else "(no finished Table II run)",
        "",
        f"## Fig. 6: validation MAE against p_aug ({sweep_label or 'no sweep'})",
        "",
        f"![p sweep]({figures['fig6']})" if "fig6" in figures else "(no sweep run)",
        "",
        _row(["p", "p_aug", f"validation MAE [{units}]"]) if points else "",
        _row(["---"] * 3) if points else "",
        *(_row([f"{p:g}", f"{1 - p:g}", f"{m:.2f}"]) for p, m in points),
        "",
        "## Table IV: sCT and error maps of one test slice",
        "",
        f"![error maps]({figures['table4']})" if "table4" in figures else "(no finished Table II run)",
        "",
    ]
    return "\n".join(parts)
