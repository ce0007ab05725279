"""`scorer evaluate`'s output: the per-week text table (or the whole result as JSON) and the plot."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from online_models.evaluation.evaluate import AUCS, METRICS, beyond_chance, evaluate
from online_models.evaluation.plot import plot_weeks
from online_models.evaluation.progress import Progress
from online_models.evaluation.students import TRAIN_SHARE
from online_models.families import DEFAULT_FAMILY


def text_table(result: dict[str, Any]) -> str:
    methods = {"online": "strict", "online_warm": "warm", "forest": "forest"}

    def fmt(value: float | None) -> str:
        return "     -" if value is None else f"{value:6.3f}"

    def mark(row: dict[str, Any], method: str, metric: str, lower_is_better: bool) -> str:
        gap = row.get(f"{method}_vs_forest", {}).get(metric)
        return " " if gap is None else {1: "-", -1: "+", 0: " "}[beyond_chance(gap, lower_is_better)]

    shorts = " ".join(f"{short:>6} " for short in methods.values())
    head = " | ".join(f"{metric:<11} {shorts}" for metric, _ in METRICS)
    lines = [f"week    n | {head}"]
    for r in result["weeks"]:
        cells = [" " * 12 + " ".join(fmt(r[m][metric] if r["n"] else None) + mark(r, m, metric, lower)
                                     for m in methods) for metric, lower in METRICS]
        lines.append(f"{r['week']:4d} {r['n']:4d} | " + " | ".join(cells))
    lines.append("- / +: worse / better than the forest beyond chance (paired 95% interval: DeLong for AUC, "
                 "absolute errors for MAE)")
    lines.append("after Holm's adjustment over each method's table (family-wise 5%), weeks worse / better:")
    for method, short in methods.items():
        versus = result["summary"].get(f"{method}_vs_forest")
        if versus:
            held = "; ".join(f"{metric} {versus[metric]['significantly_worse_weeks_holm']} / "
                             f"{versus[metric]['significantly_better_weeks_holm']}" for metric, _ in METRICS)
            lines.append(f"  {short}: {held}")
    lines.append("AUC within flows (each flow's week is scored at one moment by one model version), weeks worse / "
                 "better beyond chance, [after Holm]:")
    for method, short in methods.items():
        within = result["summary"].get(f"{method}_vs_forest_within_flows")
        if within:
            held = "; ".join(f"{metric} {within[metric]['significantly_worse_weeks']} / "
                             f"{within[metric]['significantly_better_weeks']} "
                             f"[{within[metric]['significantly_worse_weeks_holm']} / "
                             f"{within[metric]['significantly_better_weeks_holm']}]" for metric, _, _ in AUCS)
            lines.append(f"  {short}: {held}")
    in_time = result["summary"].get("online_vs_forest_in_time")
    if in_time:
        lines.append("strict against the seed's forest in time order (fitted on the outcomes learned by then, as a "
                     "school without history could), on the snapshots it scored; weeks worse / better beyond chance "
                     f"[after Holm]; no forest yet in weeks {in_time['weeks_without_forest']}:")
        lines.append("  " + "; ".join(f"{metric} {fmt(in_time[metric]['online']).strip()} against "
                                      f"{fmt(in_time[metric]['forest_in_time']).strip()} "
                                      f"{in_time[metric]['significantly_worse_weeks']} / "
                                      f"{in_time[metric]['significantly_better_weeks']} "
                                      f"[{in_time[metric]['significantly_worse_weeks_holm']} / "
                                      f"{in_time[metric]['significantly_better_weeks_holm']}]"
                                      for metric in ("mae", "auc_dropout", "auc_success")))
    lines.append("progress MAE against the label-free prior (no learning), mean over the weeks, and weeks worse / "
                 "better beyond chance [after Holm]:")
    for method, short in methods.items():
        learning = result["summary"].get("learning_vs_prior", {}).get(method)
        if learning:
            lines.append(f"  {short}: {fmt(learning[method]).strip()} against {fmt(learning['prior']).strip()}; "
                         f"{learning['significantly_worse_weeks']} / {learning['significantly_better_weeks']} "
                         f"[{learning['significantly_worse_weeks_holm']} / "
                         f"{learning['significantly_better_weeks_holm']}]")
    lines.append("what answered the probabilities, all weeks: scores (mean P / share that came true):")
    for method, short in methods.items():
        by_basis = result["summary"].get("by_basis", {}).get(method)
        if by_basis:
            lines.append(f"  {short}: " + "; ".join(
                f"{score} " + ", ".join(f"{basis} {v['scores']} ({v['mean_p']:.3f} / {v['came_true']:.3f})"
                                        for basis, v in groups.items()) for score, groups in by_basis.items()))
    lines.append("whose outcomes had taught the scored week, all weeks: scores (MAE / the forest's on them):")
    for method, short in methods.items():
        by_taught = result["summary"].get("by_taught", {}).get(method)
        if by_taught:
            parts = (f"{group} {v['scores']} ({fmt(v['mae']).strip()} / {fmt(v['forest_mae']).strip()})"
                     for group, v in by_taught.items())
            lines.append(f"  {short}: " + "; ".join(parts))
    rule = result.get("early_warning", {}).get("rule")
    if rule:
        first = ", ".join(f"{basis} {v['warned']} ({v['precision']})"
                          for basis, v in rule["by_basis"].items() if v["warned"])
        lines.append(f"early warning (strict, at_risk at {rule['threshold']}, clear {rule['clear']}): warned "
                     f"{rule['warned']} of {rule['students']}, precision {rule['precision']} (base rate "
                     f"{rule['base_rate']}), recall {rule['recall']}; first warnings by basis: {first or 'none'}")
        silence = "; ".join(f"{row['days_inactive']:g}+ days warned {row['warned']}, precision {row['precision']}, "
                            f"recall {row['recall']}, lead to asleep {row['median_lead_days_to_asleep']} d"
                            for row in result["early_warning"]["silence"])
        lines.append(f"  without a model (warn at N+ days inactive): {silence}")
    return "\n".join(lines)


def run(directory: Path, *, weeks: int = 10, seed: int = 0, family: str = DEFAULT_FAMILY,
        train_share: float = TRAIN_SHARE, plot: Path | None = None, as_json: bool = False, workers: int = 1) -> int:
    """`scorer evaluate`: print the per-week table (or the whole result as JSON), plot it if asked; how far it
    got on stderr as it goes."""
    result = evaluate(directory, weeks=weeks, seed=seed, family=family, train_share=train_share, workers=workers,
                      progress=Progress(enabled=True))
    if plot is not None:
        plot_weeks(result, plot)
    print(json.dumps(result, ensure_ascii=False, indent=2) if as_json else text_table(result))
    return 0
