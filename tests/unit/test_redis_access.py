"""The least a Redis user needs (streams/redis_access.py), as deploy/README.md gives it."""
from __future__ import annotations

from pathlib import Path

from streams.redis_access import COMMANDS, KEY_FAMILIES, acl_rule

ROOT = Path(__file__).resolve().parents[2]


def test_the_deploy_readme_gives_the_codes_rule() -> None:
    assert f"ACL SETUSER scorer on >PASSWORD {acl_rule('')}\n" in (ROOT / "deploy" / "README.md").read_text("utf-8")


def test_the_rule_names_every_key_family_after_the_prefix_and_every_command_probed() -> None:
    rule = acl_rule("school-a.").split()
    assert [word for word in rule if word.startswith("~")] == [f"~school-a.{family}*" for family in KEY_FAMILIES]
    assert {f"+{name}" for name in COMMANDS} <= set(rule) and rule.index("-@all") < rule.index("+ping")
