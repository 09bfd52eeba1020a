"""The rule list is documented: docs/GUARDRAILS.md names every rule, with its severity, and no rule twice."""

from __future__ import annotations

import re
from pathlib import Path

from guardrails.rules import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "GUARDRAILS.md"


def test_every_rule_is_documented_once_with_its_severity() -> None:
    documented = re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \| (block|warn) \|", DOC.read_text(), re.MULTILINE)

    assert documented == [(rule.id, rule.severity.value) for rule in RULES]


def test_rule_ids_are_unique_and_namespaced() -> None:
    ids = [rule.id for rule in RULES]

    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"(email|sms|content|brand|injection)\.[a-z_]+", rule_id) for rule_id in ids)
