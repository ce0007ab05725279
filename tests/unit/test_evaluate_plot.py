"""The evaluation's plot rings the weeks where an online method is worse than the forest beyond chance."""
from __future__ import annotations

from pathlib import Path

from online_models.evaluation.plot import plot_weeks, worse_beyond_chance


def _row(week: int, mae: float, low: float, high: float, auc: float, auc_low: float, auc_high: float) -> dict:
    metrics = {"mae": mae, "mse": mae * mae, "auc_dropout": auc, "auc_success": None}
    gap = {"mae": {"difference": (low + high) / 2, "low": low, "high": high},
           "auc_dropout": {"difference": (auc_low + auc_high) / 2, "low": auc_low, "high": auc_high},
           "auc_success": None}
    return {"week": week, "n": 300, "online": metrics, "online_warm": metrics, "forest": metrics,
            "online_vs_forest": gap, "online_warm_vs_forest": gap}


ROWS = [
    _row(1, 20.0, 0.5, 1.5, 0.70, -0.05, 0.01),  # MAE higher beyond chance: worse; AUC within chance
    _row(2, 18.0, -0.4, 0.3, 0.72, -0.06, -0.01),  # MAE within chance; AUC lower beyond chance: worse
    _row(3, 15.0, -1.5, -0.2, 0.80, 0.01, 0.04),  # both better beyond chance: not ringed
]


def test_only_intervals_wholly_on_the_worse_side_are_ringed() -> None:
    assert worse_beyond_chance(ROWS, "online", "mae") == ([1], [20.0])
    assert worse_beyond_chance(ROWS, "online", "auc_dropout") == ([2], [0.72])
    assert worse_beyond_chance(ROWS, "online", "auc_success") == ([], [])


def test_the_plot_draws_with_and_without_rings(tmp_path: Path) -> None:
    result = {"weeks": ROWS, "family": "forest", "students": {"test": 300, "train": 300}}
    plot_weeks(result, tmp_path / "ringed.png")
    plain = [{k: v for k, v in row.items() if not k.endswith("_vs_forest")} for row in ROWS]
    plot_weeks({**result, "weeks": plain}, tmp_path / "plain.png")
    assert (tmp_path / "ringed.png").read_bytes() != (tmp_path / "plain.png").read_bytes()


def _png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # IHDR's width, right after the signature


def test_an_early_warning_sweep_adds_its_panel(tmp_path: Path) -> None:
    def rule(threshold: float, warned: int, came_true: int) -> dict:
        return {"threshold": threshold, "precision": came_true / warned if warned else None,
                "recall": came_true / 100, "base_rate": 0.4, "median_lead_days_to_asleep": 10.0 if warned else None}

    sweep = [rule(0.4, 90, 60), rule(0.6, 30, 25), rule(0.8, 0, 0)]  # nobody warned at 0.8: no precision, no lead
    silence = [{**rule(0.0, 120, 55), "days_inactive": 3}, {**rule(0.0, 40, 30), "days_inactive": 6}]
    result = {"weeks": ROWS, "family": "forest", "students": {"test": 300, "train": 300}}
    plot_weeks(result, tmp_path / "weeks.png")
    plot_weeks({**result, "early_warning": {"rule": sweep[1], "sweep": sweep}}, tmp_path / "warnings.png")
    assert _png_width(tmp_path / "warnings.png") > _png_width(tmp_path / "weeks.png")
    plot_weeks({**result, "early_warning": {"rule": sweep[1], "sweep": sweep, "silence": silence}},
               tmp_path / "beside_silence.png")  # the rule without a model drawn beside the sweep
    assert (tmp_path / "beside_silence.png").read_bytes() != (tmp_path / "warnings.png").read_bytes()
