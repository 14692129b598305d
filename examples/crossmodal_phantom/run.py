"""Cross-modal augmentation (Yang & Xie) on the built-in phantom, end to end, in one command.

    python examples/crossmodal_phantom/run.py --quick        # CI smoke run: toy sizes
    python examples/crossmodal_phantom/run.py --report benchmarks/results/crossmodal_phantom

A CT task with few labelled CT patients (regressing the phantom's bone-density attribute) borrows the
labelled MRI of other patients, translated to CT. Per random patient split it trains a plain CycleGAN and
a DUIIT translator (the translator trained jointly with a predictor), measures their translations
against held-out real CT (FID, precision / recall), and trains the CT predictor for every row: CT alone,
CT plus CycleGAN or DUIIT translations, DUIIT's own predictor, transfer learning, multi-task learning,
DANN and StandardDA. It writes results.json and report.md (mean ± std over the splits, Friedman and
Nemenyi tests) into --report (default: --out). Rerun the same command to resume.

Size of the full study (the defaults): 40 phantom patients of 8 slices at 32 px per split (20 MRI patients,
6 / 4 / 10 CT patients for training / validation / test), translators of 120 epochs at batch 4 (4,800
steps; discriminator width 32 with two stride-2 layers), predictors of 30 epochs at batch 16. Each
translator takes about 10 minutes on one CPU thread (OMP_NUM_THREADS=1), so the 10 translators are most of
the study's time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # makes `crossmodal_phantom` importable

from crossmodal_phantom import report
from crossmodal_phantom.config import ROWS, StudyConfig, quick_config
from crossmodal_phantom.grid import translation_grid
from crossmodal_phantom.study import Study


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--out", default=None, help="work folder (default runs/crossmodal-phantom[-quick])")
    p.add_argument("--report", default=None, help="where report.md / results.json go (default: --out)")
    p.add_argument("--quick", action="store_true", help="toy sizes for CI")
    p.add_argument(
        "--task",
        choices=["regression", "classification"],
        default=None,
        help="regression: bone density, test MSE (default); classification: lesion label, test accuracy",
    )
    p.add_argument("--splits", type=int, default=None, help="random patient splits (default 5)")
    p.add_argument("--rows", default=None, help=f"comma list of rows (default all: {','.join(ROWS)})")
    p.add_argument("--translator-epochs", type=int, default=None, help="epochs of each translator")
    p.add_argument("--predictor-epochs", type=int, default=None, help="epochs of each predictor")
    p.add_argument("--disc-width", type=int, default=None, help="translators' discriminator width (32)")
    p.add_argument("--disc-layers", type=int, default=None, help="its stride-2 layers (2: sees 34 px)")
    p.add_argument("--feature-network", default=None, help="features of FID / precision-recall")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> StudyConfig:
    cfg = quick_config() if args.quick else StudyConfig()
    changes = {
        "out": args.out,
        "splits": args.splits,
        "task": args.task,
        "translator_epochs": args.translator_epochs,
        "predictor_epochs": args.predictor_epochs,
        "disc_width": args.disc_width,
        "disc_layers": args.disc_layers,
        "feature_network": args.feature_network,
        "device": args.device,
    }
    cfg = cfg.replace(**{k: v for k, v in changes.items() if v is not None})
    if args.rows:
        rows = tuple(r.strip() for r in args.rows.split(",") if r.strip())
        unknown = sorted(set(rows) - set(ROWS))
        if unknown:
            raise SystemExit(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
        cfg = cfg.replace(rows=rows)
    if args.no_progress:
        cfg = cfg.replace(progress=False)
    command = "python examples/crossmodal_phantom/run.py " + " ".join(shlex.quote(a) for a in argv)
    return cfg.replace(command=command.strip())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    config = config_from_args(args, argv)
    splits = Study(config).run()
    result = report.collect(config, splits)
    folder = args.report or config.out
    report.write(folder, result, args.quick)
    grid = translation_grid(config, Path(folder) / "translations.png")
    if grid is not None:
        print(f"wrote {grid}")
    print(f"wrote {folder}/report.md and {folder}/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
