"""Settings: declared once, read from the environment, handed to child workers, documented."""
from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings, SettingsError, documented

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


@pytest.mark.parametrize(("env", "named"), [
    ({"SCORER_DOZING_DAYS": "20", "SCORER_ASLEEP_DAYS": "7"}, "SCORER_DOZING_DAYS"),
    ({"SCORER_CLOCK": "sundial"}, "SCORER_CLOCK"),
    ({"SCORER_PARTITIONS": "four"}, "SCORER_PARTITIONS='four' is not a whole number"),
    ({"SCORER_SURROGATE_EVERY_MINUTES": "-1"}, "SCORER_SURROGATE_EVERY_MINUTES"),
    ({"SCORER_SCHOOL_TIME_ZONE": "Mars/Olympus"}, "SCORER_SCHOOL_TIME_ZONE"),
    ({"SCORER_REDIS_WAIT_REPLICAS": "-1"}, "SCORER_REDIS_WAIT_REPLICAS"),
    ({"SCORER_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SCORER_KAFKA_SECURITY_PROTOCOL"),
    ({"SCORER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SCORER_KAFKA_SASL_USERNAME": "scorer"},
     "SCORER_KAFKA_SASL_PASSWORD"),
    ({"SCORER_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SCORER_KAFKA_SASL_MECHANISM"),
    ({"SCORER_REDIS_WAIT_TIMEOUT_MS": "0"}, "SCORER_REDIS_WAIT_TIMEOUT_MS"),
])
def test_invalid_settings_are_refused_naming_their_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_a_command_with_an_invalid_setting_refuses_in_one_line(monkeypatch, capsys) -> None:
    """An operator with a typo in a variable gets its name and exit code 2, not a traceback."""
    from streams.cli import main

    monkeypatch.setenv("SCORER_SCHOOL_TIME_ZONE", "Europe/Moskow")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scorer migrate: invalid setting: SCORER_SCHOOL_TIME_ZONE") and "\n" not in err


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
