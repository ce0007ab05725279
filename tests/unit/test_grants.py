"""The least the scorer's Kafka principal, Redis user and Postgres role need (`scorer check --grants`), as
deploy/README.md gives them for the default settings."""
from __future__ import annotations

from pathlib import Path

from streams.redis_access import COMMANDS, KEY_FAMILIES, acl_rule
from streams.settings import Settings
from streams.tools.preflight import grants

ROOT = Path(__file__).resolve().parents[2]


def test_the_deploy_readme_gives_the_codes_grants() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text("utf-8").splitlines()
    printed = [line for line in grants(Settings()) if not line.startswith("#")]
    assert [line for line in printed if line not in readme] == []
    assert f"ACL SETUSER scorer on >PASSWORD {acl_rule('')}" in printed


def test_the_grants_follow_the_settings_names() -> None:
    printed = "\n".join(grants(Settings(topic_prefix="school-a.", app_id="w", notify_group="n",
                                        kafka_sasl_username="svc", database_url="postgresql://role1@db/scorer")))
    assert "--allow-principal User:svc " in printed and "--group w --group n" in printed
    assert "GRANT SELECT ON alembic_version TO role1;" in printed
    assert "--topic school-a.lms.authorizations " in printed and " lms." not in printed


def test_the_redis_rule_names_every_key_family_after_the_prefix_and_every_command_probed() -> None:
    rule = acl_rule("school-a.").split()
    assert [word for word in rule if word.startswith("~")] == [f"~school-a.{family}*" for family in KEY_FAMILIES]
    assert {f"+{name}" for name in COMMANDS} <= set(rule) and rule.index("-@all") < rule.index("+ping")
