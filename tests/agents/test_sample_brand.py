"""The sample brand in data/samples/brand stays what its README promises: big enough, SMS that fit one
GSM-7 segment, offers named in copy that exist in the catalog, only reserved domains, and the planted
prompt-injection test items present and documented."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agents.catalog import parse_offers
from agents.creative import parse_creative
from agents.evaluation import load_eval_set
from agents.sanitize import clean
from core.models import Channel, CreativeKind
from nudge.commands.creative import SAMPLE_BRAND

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€")  # each takes two of the 160 septets
INJECTIONS = {"em-jazz-weekend-listening", "sms-fiber-hidden-text", "snip-customer-quote-injection"}


def creative() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((SAMPLE_BRAND / "creative.json").read_text())["creative"]
    return items


def test_the_files_are_valid_and_the_library_is_big_enough() -> None:
    offers, offer_problems = parse_offers((SAMPLE_BRAND / "offers.json").read_bytes())
    library = parse_creative((SAMPLE_BRAND / "creative.json").read_bytes())
    guidelines = parse_creative((SAMPLE_BRAND / "guidelines.json").read_bytes(), "guidelines.json")

    assert offer_problems == library.problems == guidelines.problems == []
    assert 8 <= len(offers) <= 12
    assert len(library.rows) >= 60
    assert {row.kind for row in library.rows} == {CreativeKind.CAMPAIGN, CreativeKind.SNIPPET}
    assert {row.kind for row in guidelines.rows} == {CreativeKind.GUIDELINE}


def septets(text: str) -> int | None:
    """GSM-7 length of ``text``, or None if it needs UCS-2."""
    if any(character not in GSM7_BASIC and character not in GSM7_EXTENDED for character in text):
        return None
    return len(text) + sum(character in GSM7_EXTENDED for character in text)


@pytest.mark.parametrize(
    "item", [item for item in creative() if item["channel"] == "sms"], ids=lambda item: str(item["external_id"])
)
def test_every_sms_fits_one_gsm7_segment_once_sanitised(item: dict[str, Any]) -> None:
    length = septets(clean(item["body"]))

    assert length is not None  # GSM-7 only: no emoji, no curly quotes
    assert length <= 160


def test_offer_codes_in_copy_are_in_the_catalog() -> None:
    catalog = {row.code for row in parse_offers((SAMPLE_BRAND / "offers.json").read_bytes())[0]}
    named = {
        (item["external_id"], code)
        for item in creative()
        if item["external_id"] not in INJECTIONS
        for code in re.findall(r"\b[Cc]ode ([A-Z][A-Z0-9]{3,})", item["body"])
    }

    assert named
    assert {code for _, code in named} <= catalog


def test_links_and_addresses_use_reserved_example_domains_only() -> None:
    text = "\n".join(path.read_text() for path in SAMPLE_BRAND.glob("*.json"))
    domains = set(re.findall(r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?=[/\s\"'),:]|$)", text))

    assert domains == {"fablewave.example.com"}


def test_the_planted_injections_are_there_and_documented() -> None:
    tagged = {item["external_id"] for item in creative() if "injection" in item["tags"]}
    readme = (SAMPLE_BRAND / "README.md").read_text()

    assert tagged == INJECTIONS
    assert all(f"`{external_id}`" in readme for external_id in INJECTIONS)


def test_performance_is_varied() -> None:
    rates = [
        item["performance"]["conversions"] / item["performance"]["sends"]
        for item in creative()
        if item["kind"] == "campaign" and item["performance"]["sends"] >= 1000
    ]

    assert min(rates) < 0.005
    assert max(rates) > 0.06


def test_every_labelled_query_names_items_of_its_channel() -> None:
    by_id = {item["external_id"]: item for item in creative()}
    eval_set = load_eval_set(SAMPLE_BRAND / "retrieval_eval.json")

    assert len(eval_set.queries) >= 30
    for query in eval_set.queries:
        assert all(external_id in by_id for external_id in query.relevant), query.query
        channels = {Channel(by_id[external_id]["channel"]) for external_id in query.relevant}
        assert query.channel is None or channels == {query.channel}, query.query
