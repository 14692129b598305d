"""Where LatentAugment's walk spends its time: the cost of each part of a step, and an operator profile.

A walk is ``K`` steps; each renders ``G(w)`` and runs the active loss terms forward and backward, then
takes an Adam step. This script times the parts on their own, on the setting's batch (median of
repeated, synchronised calls taken in turn, with FLOPs), next to one whole step and the whole walk:

- ``generator forward``: ``G(w)`` without gradients (what SG2Sample costs);
- ``generator forward + backward``: ``G(w)`` and the gradient to ``w``;
- ``discriminator forward + backward``: ``D(x)`` and the gradient to the images (the fidelity term);
- ``perceptual forward + backward``: the patch cut, the perceptual network and the gradient to the
  images (the perceptual term);
- ``one step``: the walk's loop body (render, every active term, backward, Adam; compiled with
  ``--compile-mode``);
- ``walk``: the whole transform call (``K`` steps and the final render).

Then one walk under ``torch.profiler``: the operators with the most self time (device time on CUDA,
CPU time on a CPU), how many operators and GPU kernels a step launches, and the share of the step
spent in kernels. A step with thousands of short kernels and a low kernel share is bound by launch
overhead (what ``compile_mode="reduce-overhead"`` removes); a high share and a high FLOP rate mean
arithmetic. ::

    python -m benchmarks.walk_profile --device cuda
    python -m benchmarks.walk_profile --device cpu --gan builtin:pelvis-phantom-64 --repeats 3

Writes ``benchmarks/results/walk_profile-<device>.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import measure_side_by_side, script_main
from benchmarks.setting import Setting, build_setting, speed_options, timing_parser
from latent_transforms import LatentAugment


def parts(transform: LatentAugment, setting: Setting) -> dict[str, Callable[[], Any]]:
    """Zero-argument calls, one per part of a walk, on the setting's batch and its latents."""
    images, w = setting.images()
    stats, perceptual = setting.stats, setting.perceptual  # what the transform walks with
    discriminator = transform.bundle.discriminator
    positions = stats.random_positions(images.shape[0], torch.Generator().manual_seed(0)).to(w.device)

    def generator_forward() -> Any:
        with torch.no_grad():
            return transform.render(w)

    def generator_backward() -> Any:
        leaf = w.detach().clone().requires_grad_(True)
        transform.render(leaf).sum().backward()
        return leaf.grad

    def discriminator_backward() -> Any:
        assert discriminator is not None
        x = images.detach().clone().requires_grad_(True)
        discriminator(x, None).sum().backward()
        return x.grad

    def perceptual_backward() -> Any:
        x = images.detach().clone().requires_grad_(True)
        feats = perceptual(stats.patch(x, positions, check_range=False), check_finite=False)
        sum(f.sum() for f in feats).backward()
        return x.grad

    # The walk's own step function: exactly the loop body (compiled when the transform is, with no input
    # checks), inside the minibatch-std group of one sample the walk sets around its loop.
    latent_walk = transform.walk(w.device)
    step = latent_walk.step_function()

    def one_step() -> Any:
        leaf = w.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([leaf], lr=transform.lr)
        torch.compiler.cudagraph_mark_step_begin()
        with latent_walk.discriminator_group():
            step(leaf, positions, None).backward()
        optimizer.step()
        return leaf

    def walk() -> Any:
        return transform.augment(images, w_star=w, generator=torch.Generator().manual_seed(0))

    calls: dict[str, Callable[[], Any]] = {"generator forward": generator_forward}
    calls["generator forward + backward"] = generator_backward
    if transform.alpha_f > 0 and discriminator is not None:
        calls["discriminator forward + backward"] = discriminator_backward
    if transform.alpha_perc > 0:
        calls["perceptual forward + backward"] = perceptual_backward
    calls["one step"] = one_step
    calls["walk"] = walk
    return calls


def operator_profile(
    call: Callable[[], Any], device: torch.device, steps: int, wall_s: float, top: int = 15
) -> dict[str, Any]:
    """One ``call`` under ``torch.profiler``: the ``top`` operators by self time, operators per step and,
    on CUDA, kernels per step and the share of ``wall_s`` (the call's unprofiled time) spent in kernels."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        call()
        if cuda:
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    rows = sorted(events, key=lambda e: getattr(e, key), reverse=True)
    total_self = sum(getattr(e, key) for e in events) or 1.0
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    out: dict[str, Any] = {
        "sorted_by": key,
        "aten_ops_per_step": round(ops / max(steps, 1), 1),
        "top": [
            {
                "name": e.key,
                "calls": e.count,
                "self_ms": round(getattr(e, key) / 1000, 3),
                "share": round(getattr(e, key) / total_self, 4),
            }
            for e in rows[:top]
        ],
    }
    if cuda:  # device-side entries are the kernels (and memcpy/memset)
        kernels = [e for e in events if e.device_type == DeviceType.CUDA]
        launched = sum(e.count for e in kernels)
        busy_us = sum(e.self_device_time_total for e in kernels)
        out["kernels_per_step"] = round(launched / max(steps, 1), 1)
        out["mean_kernel_us"] = round(busy_us / max(launched, 1), 2)
        out["kernel_busy_share"] = round(busy_us / 1e6 / wall_s, 4)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        setting = build_setting(args, folder)
        transform = LatentAugment(
            setting.bundle,
            setting.cache,
            setting.stats,
            p=1.0,
            steps=args.steps,
            perceptual=setting.perceptual,
            value_range="generator",
            on_missing="raise",
            **speed_options(args),
        )
        calls = parts(transform, setting)
        timings = measure_side_by_side(calls, device, warmup=args.warmup, repeats=args.repeats)
        for name in calls:
            rows.append({"part": name, **timings[name]})
            print(f"{name}: {timings[name]['median_s'] * 1000:.2f} ms", flush=True)
        step = next(r["median_s"] for r in rows if r["part"] == "one step")
        for row in rows:
            row["vs_one_step"] = round(row["median_s"] / step, 3)
        walk_s = next(r["median_s"] for r in rows if r["part"] == "walk")
        profiled = operator_profile(calls["walk"], device, args.steps, walk_s, top=args.top)
        return {"setting": setting.describe(args), "rows": rows, "profile": profiled}


def build_parser() -> argparse.ArgumentParser:
    """The command line (``benchmarks.run`` builds its settings from it too)."""
    parser = timing_parser(__doc__)
    parser.add_argument("--top", type=int, default=15, help="operators listed in the profile")
    return parser


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| part | ms | x one step | GFLOP | TFLOP/s |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['part']} | {r['median_s'] * 1000:.2f} | {r['vs_one_step']} | {r.get('gflops', '-')} | "
            f"{r.get('tflops_per_s', '-')} |"
        )
    prof = result["profile"]
    lines += ["", f"aten operator calls per step (nested calls included): {prof['aten_ops_per_step']}."]
    if "kernels_per_step" in prof:
        lines.append(
            f"GPU kernels per step: {prof['kernels_per_step']}, mean {prof['mean_kernel_us']} us each; "
            f"kernels busy {prof['kernel_busy_share']:.0%} of the walk's wall time."
        )
    lines += ["", f"| operator ({prof['sorted_by']}) | calls | self ms | share |", "|---|---|---|---|"]
    for r in prof["top"]:
        lines.append(f"| `{r['name']}` | {r['calls']} | {r['self_ms']} | {r['share']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    script_main("walk_profile", "benchmarks.walk_profile", build_parser, run, markdown)


if __name__ == "__main__":
    main()
