"""The performance suite in one command: every policy, LatentAugment's speed knobs, inversion and the
training-loop overhead, with a summary against the performance issue's targets, the paper and the last run.

    python -m benchmarks.run --device cuda            # the reference setting (H100: the issue's targets)
    python -m benchmarks.run --device cpu             # CPU ratios, on the shipped phantom bundle
    python -m benchmarks.run --smoke                  # tiny sizes, seconds (CI runs it)

Sizes per profile (``--profile``, default ``reference`` on CUDA, ``cpu`` on a CPU, ``smoke`` with
``--smoke``):

- ``reference``: 256 px, 2 channels, channel_base 16384, mapping depth 2, batch 16, K = 9, all four loss
  terms, 64 x 64 perceptual patches (EfficientNet-Lite0), random weights (timing does not depend on
  them); inversion at the same size; a Pix2Pix epoch of 20 batches with 64 filters.
- ``cpu``: the shipped bundle ``builtin:pelvis-phantom-64`` at its native 64 px, batch 16 (the issue's
  "CPU path" item: LatentAugment against SG2Sample in the same run); inversion at 32 px; a Pix2Pix epoch
  of 4 batches. Only ratios between rows of one run mean anything on a CPU.
- ``smoke``: 16-32 px networks with a random perceptual network, one repeat.

Sections (``--sections``): ``policies`` (``benchmarks.transforms``), ``variants`` (the eager speed
settings of ``benchmarks.latent_augment_variants``), ``compiled`` (its ``torch.compile`` and CUDA-graph
variants; not in the smoke profile), ``walk`` (``benchmarks.walk_profile``: the parts of a step and
an operator profile of the walk), ``inversion`` (``benchmarks.inversion``) and ``training``
(``benchmarks.training_overhead``), run in this process. ``--precision``, ``--compile-mode`` and
``--channels-last`` set LatentAugment's speed settings in the policies, walk and training sections. Writes
``benchmarks/results/suite-<device>[-<tag>].json`` (provenance, every section's rows, the summary) and
``.md`` (the summary table), and compares with the file it replaces.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks import inversion, latent_augment_variants, training_overhead, transforms, walk_profile
from benchmarks.common import RESULTS, provenance
from benchmarks.setting import add_speed_arguments, speed_options

#: Seed 000, Table II (RTX A5000, batch 16, 256 x 256 x 2): seconds per augmented batch.
PAPER = {"LatentAugment": 2.55, "SG2Sample": 0.0309, "StandardDA": 0.0348}
#: The performance issue's targets (H100, reference setting).
TARGETS = {
    "latentaugment_s": ("<=", 0.10),
    "sg2sample_s": ("<=", 0.003),
    "standardda_s": ("<=", 0.002),
    "psnr_db": (">=", 40.0),
    "inversion_speedup": (">=", 40.0),
    "training_ratio": ("<=", 1.5),
}
SECTIONS = ("policies", "variants", "compiled", "walk", "inversion", "training")
#: Sections that take the speed settings (``--precision``, ``--compile-mode``, ``--channels-last``).
SPEED_SECTIONS = ("policies", "walk", "training")

_TINY = ["--resolution", "16", "--channel-base", "256", "--channel-max", "32", "--z-dim", "32"]
_SMOKE_LA = ["--real", "8", "--steps", "2", "--patch-size", "8", "--perceptual", "random"]
_COMPILED = ["--variants", ",".join(latent_augment_variants.COMPILED)]
PROFILES: dict[str, dict[str, list[str]]] = {
    "reference": {
        "policies": [],
        "variants": [],
        "compiled": _COMPILED,
        "walk": [],
        "inversion": [],
        "training": [],
    },
    "cpu": {
        "policies": ["--gan", "builtin:pelvis-phantom-64", "--repeats", "3", "--warmup", "1"],
        "variants": ["--gan", "builtin:pelvis-phantom-64", "--repeats", "3", "--warmup", "1"],
        "compiled": [*_COMPILED, "--gan", "builtin:pelvis-phantom-64", "--repeats", "3", "--warmup", "1"],
        "walk": ["--gan", "builtin:pelvis-phantom-64", "--repeats", "3", "--warmup", "1"],
        "inversion": [
            *("--resolution", "32", "--channel-base", "1024", "--z-dim", "64", "--images", "16"),
            *("--batch", "16", "--baseline-images", "2", "--baseline-steps", "200", "--encoder-steps", "100"),
        ],
        "training": ["--gan", "builtin:pelvis-phantom-64", "--batches", "4"],
    },
    "smoke": {
        "policies": [*_TINY, *_SMOKE_LA, "--batch", "4", "--warmup", "0", "--repeats", "1"],
        "variants": [*_TINY, *_SMOKE_LA, "--batch", "4", "--warmup", "0", "--repeats", "1"],
        # no "compiled": compiling takes minutes on a CPU; tests/transforms pins the compiled walk
        "walk": [*_TINY, *_SMOKE_LA, "--batch", "4", "--warmup", "0", "--repeats", "1"],
        "inversion": [
            *(*_TINY, "--images", "4", "--batch", "4", "--baseline-images", "1"),
            *("--baseline-steps", "5", "--encoder-steps", "0", "--perceptual", "random"),
        ],
        "training": [
            *("--resolution", "32", "--channel-base", "256", "--channel-max", "32", "--z-dim", "32"),
            *(*_SMOKE_LA, "--batch", "4", "--batches", "2", "--ngf", "4"),
        ],
    },
}
MODULES: dict[str, Any] = {
    "policies": transforms,
    "variants": latent_augment_variants,
    "compiled": latent_augment_variants,
    "walk": walk_profile,
    "inversion": inversion,
    "training": training_overhead,
}


def run_section(name: str, argv: list[str]) -> tuple[dict[str, Any], float]:
    """Run one section (its script's ``run``) with ``argv``; returns its result and its wall time."""
    module = MODULES[name]
    args = module.build_parser().parse_args([*argv, "--no-write"])
    started = time.perf_counter()
    result = module.run(args)
    return result, time.perf_counter() - started


def _row(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get(key) == value), None)


def summarise(sections: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of the sections (``None`` where a section did not run)."""
    out: dict[str, Any] = {}
    pol = sections.get("policies")
    if pol:
        for name in ("LatentAugment", "SG2Sample", "StandardDA"):
            r = _row(pol["rows"], "policy", name)
            if r:
                key = name.lower()
                out[f"{key}_s"] = r["median_s"]
                out[f"{key}_gflops"] = r.get("gflops")
                out[f"{key}_bf16_peak_fraction"] = r.get("bf16_peak_fraction")
                out[f"{key}_peak_memory_gib"] = r.get("peak_memory_gib")
        if out.get("latentaugment_s") and out.get("sg2sample_s"):
            out["latentaugment_vs_sg2sample"] = out["latentaugment_s"] / out["sg2sample_s"]
    variants = [r for name in ("variants", "compiled") for r in (sections.get(name) or {}).get("rows", [])]
    if variants:
        fast = [r for r in variants if r["psnr_vs_fp32_db"] >= TARGETS["psnr_db"][1]]
        best = min(fast or variants, key=lambda r: r["median_s"])
        out["fastest_variant"] = best["variant"]
        out["fastest_variant_s"] = best["median_s"]
        out["psnr_db"] = best["psnr_vs_fp32_db"]
    prof = sections.get("walk")
    if prof:
        parts = {r["part"]: r["median_s"] for r in prof["rows"]}
        step = parts.get("one step")
        for part in ("generator forward + backward", "discriminator forward + backward"):
            if step and part in parts:
                out[f"step_share_{part.split()[0]}"] = parts[part] / step
        if step and "perceptual forward + backward" in parts:
            out["step_share_perceptual"] = parts["perceptual forward + backward"] / step
        detail = prof["profile"]
        out["walk_ops_per_step"] = detail.get("aten_ops_per_step")
        out["walk_kernels_per_step"] = detail.get("kernels_per_step")
        out["walk_kernel_busy_share"] = detail.get("kernel_busy_share")
        out["walk_top_operator"] = detail["top"][0]["name"] if detail.get("top") else None
    inv = sections.get("inversion")
    if inv:
        speedups = [r.get("speedup_vs_baseline") for r in inv["rows"] if r.get("speedup_vs_baseline")]
        out["inversion_speedup"] = max(speedups) if speedups else None
    tr = sections.get("training")
    if tr:
        r = _row(tr["rows"], "policy", "LatentAugment")
        out["training_ratio"] = r["vs_no_augmentation"] if r else None
    return out


def _check(key: str, value: float | None, applies: bool) -> str:
    if key not in TARGETS or value is None:
        return "-"
    op, target = TARGETS[key]
    text = f"{op} {target:g}"
    if not applies:
        return f"{text} (H100 reference only)"
    ok = value <= target if op == "<=" else value >= target
    return f"{text}: {'met' if ok else 'MISSED'}"


def markdown(summary: dict[str, Any], previous: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    """The summary table: value, target, paper, previous run."""
    applies = meta["profile"] == "reference" and meta["device_type"] == "cuda"
    labels = [
        ("latentaugment_s", "LatentAugment, s per batch", "LatentAugment"),
        ("sg2sample_s", "SG2Sample, s per batch", "SG2Sample"),
        ("standardda_s", "StandardDA, s per batch", "StandardDA"),
        ("latentaugment_vs_sg2sample", "LatentAugment / SG2Sample", None),
        ("fastest_variant_s", "fastest LatentAugment variant (PSNR >= 40 dB), s", "LatentAugment"),
        ("psnr_db", "its PSNR against the fp32 path, dB", None),
        ("inversion_speedup", "batched inversion / one at a time, at equal PSNR", None),
        ("training_ratio", "Pix2Pix epoch with LatentAugment p=0.3 / without", None),
    ]
    lines = [
        f"Suite on {meta['device']} ({meta['profile']} profile), commit {meta['commit']}, "
        f"torch {meta['torch']}.",
        "",
        "| figure | value | target | paper (RTX A5000) | previous run |",
        "|---|---|---|---|---|",
    ]
    for key, label, paper_key in labels:
        value = summary.get(key)
        if value is None:
            continue
        paper = (
            PAPER.get(paper_key)
            if paper_key
            else (2.55 / 0.0309 if key == "latentaugment_vs_sg2sample" else None)
        )
        paper_text = "-"
        if paper is not None:  # absolute times compare only on the reference GPU run
            faster = f" ({paper / value:.1f}x ours)" if key.endswith("_s") and applies else ""
            paper_text = f"{paper:.4g}{faster}"
        prev = (previous or {}).get(key)
        prev_text = (
            f"{prev:.4g} ({value / prev - 1:+.0%})" if isinstance(prev, (int, float)) and prev else "-"
        )
        lines.append(
            f"| {label} | {value:.4g} | {_check(key, value, applies)} | {paper_text} | {prev_text} |"
        )
    if summary.get("fastest_variant"):
        lines += ["", f"Fastest LatentAugment variant: `{summary['fastest_variant']}`."]
    shares = [
        f"{name} {summary[key]:.0%}"
        for key, name in (
            ("step_share_generator", "generator"),
            ("step_share_discriminator", "discriminator"),
            ("step_share_perceptual", "perceptual network"),
        )
        if summary.get(key) is not None
    ]
    if shares:
        lines.append(
            "One walk step (forward + backward of each part, as a share of the step): "
            + ", ".join(shares)
            + f". aten operator calls per step (nested included): {summary.get('walk_ops_per_step')}"
            + (
                f"; GPU kernels per step: {summary['walk_kernels_per_step']}, busy "
                f"{summary['walk_kernel_busy_share']:.0%} of the walk's time"
                if summary.get("walk_kernels_per_step") is not None
                else ""
            )
            + f"; most self time: `{summary.get('walk_top_operator')}`."
        )
    for name in ("latentaugment", "sg2sample"):
        gflops, share = summary.get(f"{name}_gflops"), summary.get(f"{name}_bf16_peak_fraction")
        if gflops is not None:
            lines.append(
                f"{name}: {gflops:.4g} GFLOP per batch"
                + (f", {share:.2%} of the dense bf16 peak" if share is not None else "")
                + "."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--smoke", action="store_true", help="the smoke profile (tiny sizes)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    parser.add_argument("--no-write", action="store_true", help="print only")
    speed = parser.add_argument_group(
        "LatentAugment's speed settings in the policies, walk and training sections (default: the library's)"
    )
    add_speed_arguments(speed)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    profile = "smoke" if args.smoke else args.profile or ("reference" if device.type == "cuda" else "cpu")
    names = [s for s in args.sections.split(",") if s]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")
    sections: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        if name not in PROFILES[profile]:
            log(f"== {name}: not in the {profile} profile, skipped")
            continue
        log(f"== {name} ({profile})")
        argv = [*PROFILES[profile][name], "--device", str(device)]
        if name in SPEED_SECTIONS:
            argv += ["--precision", args.precision, "--channels-last", args.channels_last]
            argv += ["--compile-mode", args.compile_mode] if args.compile_mode else []
        sections[name], seconds[name] = run_section(name, argv)
    summary = summarise(sections)
    stem = (
        f"suite-{device.type}"
        + (f"-{args.tag}" if args.tag else "")
        + ("-smoke" if profile == "smoke" else "")
    )
    path = RESULTS / f"{stem}.json"
    previous = json.loads(path.read_text()).get("summary") if path.is_file() else None
    meta = {
        **provenance(device, "benchmarks.run"),
        "profile": profile,
        "speed_settings": {**speed_options(args), "channels_last": args.channels_last},
    }
    text = markdown(summary, previous, meta)
    log(text)
    payload = {
        **meta,
        "summary": summary,
        "section_seconds": seconds,
        "sections": sections,
        "previous": previous,
    }
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        Path(path.with_suffix(".md")).write_text(text + "\n")
        log(f"wrote {path} and {path.with_suffix('.md')}")
    return payload


if __name__ == "__main__":
    main()
