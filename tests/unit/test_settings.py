"""Settings: declared once, read from the environment, handed to child workers, documented."""
from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings, documented

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_reads_its_scorer_variable() -> None:
    env = {"SCORER_PARTITIONS": "8", "SCORER_ASLEEP_DAYS": "21.5", "SCORER_CLOCK": "live",
           "SCORER_REDIS_URL": "redis://r:6379/0", "UNRELATED": "x"}
    settings = Settings.from_env(env)
    assert (settings.partitions, settings.asleep_days, settings.clock) == (8, 21.5, "live")
    assert settings.redis_url == "redis://r:6379/0" and settings.kafka_url == ""


def test_a_child_worker_gets_exactly_these_settings() -> None:
    settings = Settings(kafka_url="kafka://k:9092", partitions=6, dozing_days=5, score_every_minutes=7.5,
                        state_dir="/tmp/x", app_id="group-7")
    assert Settings.from_env(settings.to_env()) == settings
    assert len(settings.to_env()) == len(documented())


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Settings(dozing_days=20, asleep_days=7)
    with pytest.raises(ValueError):
        Settings.from_env({"SCORER_CLOCK": "sundial"})
    with pytest.raises(ValueError):
        Settings.from_env({"SCORER_PARTITIONS": "four"})
    with pytest.raises(ValueError):
        Settings.from_env({"SCORER_SURROGATE_EVERY_MINUTES": "-1"})


def test_the_surrogate_interval_defaults_to_the_trainers() -> None:
    from online_models.trainer import SURROGATE_EVERY_S

    assert Settings().surrogate_every_minutes * 60 == SURROGATE_EVERY_S


def test_the_readme_settings_table_is_the_declared_one() -> None:
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `SCORER_")]
    assert rows == documented(), "README's settings table differs from streams/settings.py (print documented())"


def test_outcomes_wait_the_days_set_and_a_negative_value_learns_each_on_arrival() -> None:
    from features import DAY
    from streams.runtime import pipeline_config

    assert pipeline_config(Settings()).step.learn_after == 28 * DAY
    waiting = Settings.from_env({"SCORER_LEARN_OUTCOMES_AFTER_DAYS": "7"})
    assert pipeline_config(waiting).step.learn_after == 7 * DAY
    assert pipeline_config(Settings(learn_outcomes_after_days=-1)).step.learn_after is None
