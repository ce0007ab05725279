"""Per-week curves of an `evaluate` result: one panel per metric, one line per method, a red ring where an
online method is worse than the forest beyond chance (its paired interval, online_models.evaluation.evaluate);
and, when the result has it, the early warning's precision against recall by threshold, beside the rule without a
model: what a school picking its `at_risk` threshold trades (online_models.evaluation.early_warning)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt

from online_models.evaluation.evaluate import METRICS, beyond_chance

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


def worse_beyond_chance(rows: list[dict[str, Any]], method: str, metric: str) -> tuple[list[int], list[float]]:
    """The weeks (and values) where `method`'s paired interval against the forest lies wholly on the worse side."""
    lower_is_better = dict(METRICS)[metric]
    points = [(r["week"], r[method][metric]) for r in rows
              if (gap := r.get(f"{method}_vs_forest", {}).get(metric)) and beyond_chance(gap, lower_is_better) > 0]
    return [w for w, _ in points], [v for _, v in points]


def plot_early_warning(ax: Any, early_warning: dict[str, Any]) -> None:
    """Precision against recall: the `at_risk` rule at each of the sweep's thresholds and, where the result has
    it, the rule without a model at each number of days of silence, each point labelled with its threshold and
    its median lead (days from the first warning to asleep); the base rate (the precision of warning everyone)
    as a line and the configured threshold ringed. Of two points, the one above and to the right warns better."""
    curves = (("at_risk: P(dropout) at or above", early_warning["sweep"], "threshold", "P {:g}", "tab:purple", "o", 4),
              ("no model: days inactive at or above", early_warning.get("silence", []), "days_inactive", "{:g} d",
               "tab:gray", "s", -10))  # labels above the model's points, below the other rule's
    for legend, rows, key, name, color, marker, above in curves:
        points = [row for row in rows if row["precision"] is not None]
        if not points:
            continue
        ax.plot([row["recall"] for row in points], [row["precision"] for row in points], color=color, marker=marker,
                label=legend)
        for row in points:
            lead = row["median_lead_days_to_asleep"]
            ax.annotate(name.format(row[key]) + ("" if lead is None else f" ({lead:g} d)"),
                        (row["recall"], row["precision"]), textcoords="offset points", xytext=(4, above), fontsize=7,
                        color=color)
    rule = early_warning["rule"]
    if rule["base_rate"] is not None:
        ax.axhline(rule["base_rate"], color="black", linewidth=0.8, linestyle=":", label="base rate (went quiet)")
    if rule["precision"] is not None:
        ax.scatter([rule["recall"]], [rule["precision"]], s=160, facecolors="none", edgecolors="red", linewidths=1.5,
                   zorder=3, label=f"configured (P {rule['threshold']:g})")
    ax.set_xlim(0.0, 1.05)
    ax.set_ylim(0.0, 1.05)
    ax.set_title("Early warning: precision against recall\n(each point: its threshold, median days before asleep)",
                 fontsize=10)
    ax.set_xlabel("recall (of the students who went quiet)")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot_weeks(result: dict[str, Any], path: Path) -> None:
    rows = result["weeks"]
    early_warning = result.get("early_warning")
    panels = len(PANELS) + bool(early_warning)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.6))
    for ax, (metric, title) in zip(axes, PANELS):
        for method, (legend, color, marker, line) in STYLES.items():
            weeks, values = _series(rows, method, metric)
            if weeks:
                ax.plot(weeks, values, color=color, marker=marker, linestyle=line, label=legend)
        worse = [worse_beyond_chance(rows, method, metric) for method in ("online", "online_warm")]
        weeks, values = [w for ws, _ in worse for w in ws], [v for _, vs in worse for v in vs]
        ax.scatter(weeks, values, s=160, facecolors="none", edgecolors="red", linewidths=1.5, zorder=3,
                   label="worse than the forest beyond chance (paired 95% interval)")
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("course week")
        weeks = [r["week"] for r in rows]
        ax.set_xticks(weeks[:: max(1, -(-len(weeks) // 12))])  # at most 12 labels: long courses stay legible
        ax.grid(alpha=0.3)
        if metric != "mae":
            ax.axhline(0.5, color="black", linewidth=0.6, alpha=0.4)
    handles, labels = axes[0].get_legend_handles_labels()  # below the panels: inside one it hid the early weeks
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    if early_warning:
        plot_early_warning(axes[-1], early_warning)
    students = result["students"]
    fig.suptitle(f"Online ({result['family']}) vs per-week forest on {students['test']} test students "
                 f"(forest trained on {students['train']})", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_hypotheses(result: dict[str, Any], path: Path) -> None:
    """One column of panels per hypothesis (and one for the controls): the outcome rate per band of
    each measure, lowest band left, with Wilson 95% intervals; dropout on top, success below."""
    groups = [*result["hypotheses"], result["controls"]]
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 7.6), sharey="row", squeeze=False)
    colors = plt.get_cmap("tab10")
    for column, group in enumerate(groups):
        for row, outcome in enumerate(("dropout", "success")):
            ax = axes[row][column]
            for k, measure in enumerate(group["measures"]):
                bands = measure["bands"]
                x = [b["band"] for b in bands]
                rate = [b[outcome]["rate"] for b in bands]
                low = [b[outcome]["rate"] - b[outcome]["ci"][0] for b in bands]
                high = [b[outcome]["ci"][1] - b[outcome]["rate"] for b in bands]
                effect = measure[outcome]
                star = "*" if effect.get("separates") else ""
                auc = "" if effect.get("auc") is None else f" (AUC {effect['auc']:.2f}{star})"
                ax.errorbar([v + 0.06 * (k - 1) for v in x], rate, yerr=[low, high], color=colors(k), marker="o",
                            capsize=3, label=measure["name"] + auc)
            ax.set_title(f"{group['title']}: {group['verdict']}" if row == 0 else "", fontsize=10)
            ax.set_xlabel("band of the measure (1 = lowest)")
            ax.set_xticks(range(1, 1 + max((len(m["bands"]) for m in group["measures"]), default=1)))
            if column == 0:
                ax.set_ylabel(f"{outcome} rate")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    population = result["population"]
    fig.suptitle(f"Outcome rates by band at the end of course week {result['cutoff']['week']} "
                 f"({population['students']} students; * = AUC interval excludes 0.5)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
