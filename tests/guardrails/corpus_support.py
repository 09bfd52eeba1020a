"""The guardrail corpus: drafts and rendered messages with the exact findings each must produce.

Each ``corpus/*.yaml`` file is a list of cases. A case gives a message (``channel``, ``rendered``, the
text fields, ``offer_codes``, e-mail ``from_name``/``from_address``/``headers``), optionally the
``recipient`` (``country``, ``region``, ``email``, ``phone``, ``first_name``), ``now`` (ISO 8601, default
``DEFAULT_NOW``) and ``injected`` payloads, and ``expect``: the findings, each ``{rule, severity, field,
excerpt}`` (``field`` and ``excerpt`` default to null and ""). A clean case expects ``[]``. An e-mail
without ``body_html`` gets the HTML the layout would render from its ``body_text``.

The context is the sample brand's: ``data/samples/brand/rules.json`` and ``offers.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from agents.layout import html_from_text
from core.models import Channel, OfferKind
from guardrails.context import BrandRules, CatalogOffer, CheckContext, Message, RecipientData
from guardrails.report import Report

ROOT = Path(__file__).resolve().parents[2]
BRAND = ROOT / "data" / "samples" / "brand"
CORPUS = Path(__file__).resolve().parent / "corpus"
DEFAULT_NOW = "2026-11-21T15:00:00+00:00"


@cache
def sample_brand() -> BrandRules:
    return BrandRules.load(BRAND / "rules.json")


@cache
def sample_catalog() -> dict[str, CatalogOffer]:
    data = json.loads((BRAND / "offers.json").read_text())
    items = data["offers"] if isinstance(data, dict) else data
    return {item["code"]: _offer(item) for item in items}


def _offer(item: dict[str, Any]) -> CatalogOffer:
    return CatalogOffer(
        code=item["code"],
        name=item["name"],
        kind=OfferKind(item["kind"]),
        value=Decimal(str(item["value"])),
        currency=item.get("currency"),
        terms=item.get("terms", ""),
        valid_from=_instant(item.get("valid_from")),
        valid_until=_instant(item.get("valid_until")),
    )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def context_for(case: dict[str, Any]) -> CheckContext:
    recipient = case.get("recipient")
    return CheckContext(
        catalog=sample_catalog(),
        brand=sample_brand(),
        now=datetime.fromisoformat(case.get("now", DEFAULT_NOW)),
        recipient=RecipientData(**recipient) if recipient is not None else None,
        injected=frozenset(case.get("injected", ())),
    )


def message_for(case: dict[str, Any]) -> Message:
    channel = Channel(case["channel"])
    body_text = case.get("body_text", "")
    body_html = case.get("body_html")
    if body_html is None:
        body_html = html_from_text(body_text) if channel is Channel.EMAIL and body_text else ""
    return Message(
        channel=channel,
        subject=case.get("subject", ""),
        preheader=case.get("preheader", ""),
        body_text=body_text,
        body_html=body_html,
        sms_text=case.get("sms_text", ""),
        offer_codes=tuple(case.get("offer_codes", ())),
        rendered=case.get("rendered", False),
        from_name=case.get("from_name"),
        from_address=case.get("from_address"),
        headers=case.get("headers", {}),
    )


def load_cases() -> list[dict[str, Any]]:
    cases = [case for path in sorted(CORPUS.glob("*.yaml")) for case in yaml.safe_load(path.read_text()) or []]
    names = Counter(case["name"] for case in cases)
    duplicated = [name for name, count in names.items() if count > 1]
    assert not duplicated, f"corpus case names must be unique: {duplicated}"
    return cases


def expected(case: dict[str, Any]) -> Counter[tuple[str, str, str | None, str]]:
    return Counter(
        (item["rule"], item["severity"], item.get("field"), item.get("excerpt", "")) for item in case["expect"]
    )


def actual(report: Report) -> Counter[tuple[str, str, str | None, str]]:
    return Counter((f.rule, f.severity.value, f.field, f.excerpt) for f in report.findings)
