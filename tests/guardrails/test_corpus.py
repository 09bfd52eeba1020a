"""Every corpus case (``tests/guardrails/corpus/*.yaml``) produces exactly the findings it lists."""

from __future__ import annotations

from typing import Any

import pytest

from guardrails.service import check
from tests.guardrails.corpus_support import actual, context_for, expected, load_cases, message_for

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_a_corpus_case_produces_exactly_its_findings(case: dict[str, Any]) -> None:
    report = check(message_for(case), context_for(case))

    assert actual(report) == expected(case)


def test_the_corpus_covers_both_channels_clean_messages_and_several_jurisdictions() -> None:
    channels = {case["channel"] for case in CASES}
    clean = [case for case in CASES if not any(item["severity"] == "block" for item in case["expect"])]
    countries = {case.get("recipient", {}).get("country") for case in CASES} - {None}

    assert len(CASES) >= 60
    assert channels == {"email", "sms"}
    assert len(clean) >= 10
    assert len(countries) >= 3
