"""``results.json`` and ``report.md`` of the cross-modal study: only what the run measured, beside the
numbers Yang & Xie report (cited, not measured here)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from latent_transforms.evaluation import commit_label
from latent_transforms.metrics import friedman, nemenyi

from .config import ROW_MEANING, StudyConfig

#: Yang & Xie, Table 3 (MRI -> CT, mean squared error of the physiological age): cited for the pattern.
PAPER_MSE = {
    "PURE-CT": 103.88,
    "TL": 91.52,
    "MTL": 99.26,
    "DANN": 88.13,
    "MIX-CycleGAN": 147.06,
    "MIX-DUIIT": 76.91,
}
PAPER_FID = {"cyclegan": 40.94, "duiit": 63.17}
TASKS = {
    "regression": "regression of the phantom's bone-density attribute (in [0, 1]) from CT; "
    "test MSE per split",
    "classification": "classification of the phantom's lesion label (per patient, 0 / 1) from CT slices; "
    "test accuracy per split",
}


def collect(config: StudyConfig, splits: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``results.json`` document."""
    key = config.metric
    methods = {row: {key: [s["methods"][row][key] for s in splits]} for row in config.rows}
    translation = {
        m: {k: [s["translation"][m][k] for s in splits] for k in ("fid", "precision", "recall", "f1")}
        for m in ("cyclegan", "duiit")
    }
    result: dict[str, Any] = {
        "methods": methods,
        "translation": translation,
        "command": config.command,
        "commit": commit_label(Path(__file__).resolve().parent, short=False),
        "task": TASKS[config.task],
        "splits": [{"seed": s["seed"], "patients": s["patients"]} for s in splits],
        "config": config.to_dict(),
    }
    scores = {row: v[key] for row, v in methods.items()}
    if len(scores) >= 3 and len(splits) >= 2:
        test = friedman(scores)
        result["friedman"] = test.to_dict()
        if test.significant(0.05):
            result["nemenyi"] = nemenyi(scores, higher_is_better=key == "accuracy").to_dict()
    return result


def _mean_std(values: list[float], digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def markdown(result: dict[str, Any], quick: bool) -> str:
    """``report.md``: the rows, the tests, the translations and what the pattern looks like here."""
    methods, tr = result["methods"], result["translation"]
    key = "mse" if result["config"]["task"] == "regression" else "accuracy"
    n = len(next(iter(methods.values()))[key])
    means = {row: statistics.fmean(v[key]) for row, v in methods.items()}
    name = "MSE" if key == "mse" else "accuracy"
    lines = ["# Cross-modal augmentation on the phantom (Yang & Xie)", ""]
    if quick:
        lines += [
            "**Quick run (toy sizes, for CI): these numbers say nothing about the method.**",
            "",
        ]
    lines += [
        f"Command: `{result['command']}`  ",
        f"Commit: `{result['commit']}`",
        "",
        f"Task: {result['task']}. {n} random patient splits; MRI patients and CT patients never overlap and "
        "the MRI of the CT patients is never read. Mean ± standard deviation over the splits.",
        "",
        f"| row | what it trains on | test {name} | Yang & Xie (MRI → CT, age MSE) |",
        "|---|---|---|---|",
    ]
    for row, values in methods.items():
        paper = PAPER_MSE.get(row)
        lines.append(
            f"| {row} | {ROW_MEANING[row]} | {_mean_std(values[key])} | {'' if paper is None else paper} |"
        )
    lines += [""]
    if "friedman" in result:
        f = result["friedman"]
        lines.append(
            f"Friedman test over the {n} splits: statistic {f['statistic']:.3g}, p = {f['pvalue']:.3g}."
        )
        if "nemenyi" in result:
            lines += [
                "",
                "Nemenyi post-hoc (row better `+` / worse `−` / no difference `0` than column):",
                "",
            ]
            nem = result["nemenyi"]
            header = ["row", *nem["methods"], "score"]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for row in nem["methods"]:
                cells = [nem["directions"][row][c] for c in nem["methods"]]
                lines.append(f"| {row} | " + " | ".join(cells) + f" | {nem['scores'][row]:+d} |")
        else:
            lines.append("No Nemenyi test: Friedman finds no difference at α = 0.05.")
    lines += [
        "",
        "## Translations against real CT",
        "",
        "Translated MRI of the MRI patients against the held-out CT (validation and test patients), features "
        f"`{result['config']['feature_network']}`.",
        "",
        "| translator | FID | precision | recall | Yang & Xie's FID |",
        "|---|---|---|---|---|",
    ]
    for m, label in (("cyclegan", "CycleGAN"), ("duiit", "DUIIT")):
        lines.append(
            f"| {label} | {_mean_std(tr[m]['fid'], 2)} | {_mean_std(tr[m]['precision'], 3)} | "
            f"{_mean_std(tr[m]['recall'], 3)} | {PAPER_FID[m]} |"
        )
    fid_means = {m: statistics.fmean(tr[m]["fid"]) for m in tr}

    def said(condition: bool) -> str:
        return "holds" if condition else "does not hold"

    def better(a: str, b: str) -> bool:
        """Whether row ``a``'s mean score is better than row ``b``'s."""
        x, y = means.get(a, float("nan")), means.get(b, float("nan"))
        return x < y if key == "mse" else x > y

    claims = [
        ("DUIIT's mix beats CT alone (paper: 76.91 < 103.88)", better("MIX-DUIIT", "PURE-CT")),
        ("CycleGAN's mix is worse than CT alone (paper: 147.06 > 103.88)", better("PURE-CT", "MIX-CycleGAN")),
        ("DUIIT's mix beats CycleGAN's", better("MIX-DUIIT", "MIX-CycleGAN")),
        (
            "DUIIT's FID is worse than CycleGAN's (paper: 63.17 > 40.94)",
            fid_means["duiit"] > fid_means["cyclegan"],
        ),
    ]

    rows_of = {
        claims[0][0]: ("MIX-DUIIT", "PURE-CT"),
        claims[1][0]: ("MIX-CycleGAN", "PURE-CT"),
        claims[2][0]: ("MIX-DUIIT", "MIX-CycleGAN"),
        claims[3][0]: (),
    }
    measured = {claim for claim, rows in rows_of.items() if all(r in means for r in rows)}
    lines += [
        "",
        "## The paper's pattern, here",
        "",
        "Comparisons of the means above (the tests say whether a difference is significant):",
        "",
        *(f"- {claim}: {said(holds)}." for claim, holds in claims if claim in measured),
        "",
    ]
    return "\n".join(lines)


def write(folder: str | Path, result: dict[str, Any], quick: bool) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("results.json", json.dumps(result, indent=1) + "\n"),
        ("report.md", markdown(result, quick)),
    ):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(folder / name)
