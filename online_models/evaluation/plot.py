"""Per-week curves of an `evaluate` result: one panel per metric, one line per method."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt

#: (metric, panel title)
PANELS = (("mae", "Final progress: MAE (lower is better)"),
          ("auc_dropout", "Dropout: ROC AUC (higher is better)"),
          ("auc_success", "Success: ROC AUC (higher is better)"))
#: method -> (legend, color, marker, line style)
STYLES = {
    "online": ("online, strict time order", "tab:blue", "o", "-"),
    "online_warm": ("online, warm-started on the forest's train set", "tab:green", "^", "-."),
    "forest": ("per-week random forest (seed)", "tab:orange", "s", "--"),
    "prior": ("version-0 prior", "tab:gray", "x", ":"),
}


def _series(rows: list[dict[str, Any]], method: str, metric: str) -> tuple[list[int], list[float]]:
    points = [(r["week"], r[method][metric]) for r in rows
              if r.get(method) and r[method].get(metric) is not None]
    return [w for w, _ in points], [v for _, v in points]


def plot_weeks(result: dict[str, Any], path: Path) -> None:
    rows = result["weeks"]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.6))
    for ax, (metric, title) in zip(axes, PANELS):
        for method, (legend, color, marker, line) in STYLES.items():
            weeks, values = _series(rows, method, metric)
            if weeks:
                ax.plot(weeks, values, color=color, marker=marker, linestyle=line, label=legend)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("course week")
        weeks = [r["week"] for r in rows]
        ax.set_xticks(weeks[:: max(1, -(-len(weeks) // 12))])  # at most 12 labels: long courses stay legible
        ax.grid(alpha=0.3)
        if metric != "mae":
            ax.axhline(0.5, color="black", linewidth=0.6, alpha=0.4)
    axes[0].legend(fontsize=9)
    students = result["students"]
    fig.suptitle(f"Online ({result['family']}) vs per-week forest on {students['test']} test students "
                 f"(forest trained on {students['train']})", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
