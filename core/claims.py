"""Figures a text states — percentages, money amounts, month counts — read the same way everywhere.

The drafting agent's checks and the guardrails' claims rule both compare what copy says against the
offer catalog; they read the copy with this one reader so they cannot disagree about what "20%" is.
It reads "20%", "20 percent", "$20", "€9.99", "20 USD", "20 dollars", "3 months", "three-month";
spelt-out percentages and amounts are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

# 1,000.50 | 20 | 9.99 | 9,99, as \d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)? with the first digit taken out of the
# alternatives: a pattern that starts with a digit lets the regex engine skip ahead to the digits.
_NUMBER = r"(\d(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?|\d*(?:[.,]\d+)?))"
_MONTH_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


class Claim(StrEnum):
    PERCENT = "percent"
    MONEY = "money"
    MONTHS = "months"


_PATTERNS: dict[Claim, re.Pattern[str]] = {
    Claim.PERCENT: re.compile(rf"{_NUMBER}\s*(?:%|percent\b|per\s+cent\b)", re.IGNORECASE),
    Claim.MONEY: re.compile(rf"[$€£]\s*{_NUMBER}|{_NUMBER}\s*(?:usd|eur|gbp|dollars?|euros?|pounds?)\b", re.IGNORECASE),
    Claim.MONTHS: re.compile(rf"\b(\d+|{'|'.join(_MONTH_WORDS)})[\s-]+(?:free[\s-]+)?months?\b", re.IGNORECASE),
}
# What each pattern cannot match without: one of these in the text, lower-cased (a cheap test first).
_CUES: dict[Claim, tuple[str, ...]] = {
    Claim.PERCENT: ("%", "per"),
    Claim.MONEY: ("$", "€", "£", "usd", "eur", "gbp", "dollar", "pound"),
    Claim.MONTHS: ("month",),
}
# What re.IGNORECASE matches to an ASCII letter but str.lower() does not lower to it (as guardrails.injection.folded).
_ASCII_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


@dataclass(frozen=True, slots=True)
class FoundClaim:
    """One figure in a text: its kind, its number, and where it is (``text[start:end]``)."""

    kind: Claim
    number: Decimal
    start: int
    end: int


def find_claims(text: str) -> list[FoundClaim]:
    """Every percentage, money amount and month count ``text`` states, with its span, in order."""
    return list(_found(text))


@lru_cache(maxsize=1024)
def _found(text: str) -> tuple[FoundClaim, ...]:
    # Cached: several rules (and the drafting checks) read the same texts of one message.
    lowered = text.translate(_ASCII_FOLD).lower()
    found = [
        FoundClaim(kind, _number(next(group for group in match.groups() if group is not None)), *match.span())
        for kind, pattern in _PATTERNS.items()
        if any(cue in lowered for cue in _CUES[kind])
        for match in pattern.finditer(text)
    ]
    return tuple(sorted(found, key=lambda claim: claim.start))


def claims_in(text: str) -> set[tuple[Claim, Decimal]]:
    """The percentages, money amounts and month counts ``text`` states, as (kind, number)."""
    return {(claim.kind, claim.number) for claim in find_claims(text)}


def _number(token: str) -> Decimal:
    lowered = token.lower()
    if lowered in _MONTH_WORDS:
        return Decimal(_MONTH_WORDS.index(lowered) + 1)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        return Decimal(token.replace(",", ""))  # 1,000.50: thousands separators
    return Decimal(token.replace(",", "."))  # 9,99: a decimal comma


def spoken(kind: Claim, number: Decimal) -> str:
    """How a figure reads in a message: ``20%``, ``the amount 9.99``, ``3 months``."""
    value = f"{number.normalize():f}"
    return {Claim.PERCENT: f"{value}%", Claim.MONEY: f"the amount {value}", Claim.MONTHS: f"{value} months"}[kind]
