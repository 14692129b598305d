"""Draw docs/images/architecture.png: the library's layers, from the table the layering test checks.

python docs/images/draw_architecture.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from tests.layering import LAYERS, ROLES  # noqa: E402


def main() -> Path:
    """Draw the picture and return its path."""
    n = len(LAYERS)
    fig, ax = plt.subplots(figsize=(12, 0.5 * n + 0.9))
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.45, n + 0.1)
    ax.axis("off")
    box = 1.05
    for row, (layer, packages) in enumerate(LAYERS):
        band = FancyBboxPatch(
            (0.1, row - 0.32), 11.8, 0.64, boxstyle="round,pad=0.02", fc="#f3f5f8", ec="#c9d1dc"
        )
        ax.add_patch(band)
        ax.text(0.25, row, layer, va="center", ha="left", fontsize=9, color="#555", style="italic")
        for k, pkg in enumerate(packages):
            x = 2.0 + k * (box + 0.12)
            ax.add_patch(
                FancyBboxPatch(
                    (x, row - 0.21), box, 0.42, boxstyle="round,pad=0.02", fc="white", ec="#3b6ea5"
                )
            )
            ax.text(x + box / 2, row, pkg, va="center", ha="center", fontsize=8.5, family="monospace")
        ax.text(2.0 + len(packages) * (box + 0.12) + 0.1, row, ROLES[layer], va="center", fontsize=8.5)
    ax.annotate(
        "", xy=(11.6, -0.2), xytext=(11.6, n - 0.8), arrowprops={"arrowstyle": "-|>", "color": "#3b6ea5"}
    )
    ax.text(
        6.0,
        n - 0.45,
        "imports point down: a module uses only its own layer and the layers below (tests/test_layering.py)",
        ha="center",
        fontsize=9,
    )
    out = ROOT / "docs" / "images" / "architecture.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
