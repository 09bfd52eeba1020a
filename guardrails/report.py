"""What a guardrail check returns: findings, each naming its rule, how serious it is, where, and how to fix it.

A ``Report`` is stored with the draft it judged and shown to the approver; a draft with a ``block``
finding cannot be approved or sent, a ``warn`` finding is for the approver to weigh.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, computed_field

RULES_VERSION = "guardrails-1"


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class Finding(BaseModel):
    """One broken or doubtful rule.

    Attributes
    ----------
    rule : str
        The rule's id, such as ``email.unsubscribe_link`` (``guardrails.rules.RULES`` lists them).
    severity : Severity
    message : str
        What is wrong, in words an approver (or the drafting model, on repair) can act on.
    field : str, optional
        The part of the message: ``subject``, ``body_text``, ``sms_text``, a header name …
    start, end : int, optional
        The offending span within ``field`` (Python string offsets), for highlighting.
    excerpt : str
        The offending text itself, when there is one.
    hint : str
        How to fix it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    severity: Severity
    message: str
    field: str | None = None
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    excerpt: str = ""
    hint: str = ""

    def for_model(self) -> str:
        """The finding as one line for the drafting agent's repair prompt."""
        where = f"{self.field}: " if self.field else ""
        quoted = f" ({self.excerpt!r})" if self.excerpt else ""
        fix = f" Fix: {self.hint}" if self.hint else ""
        return f"{where}{self.message}{quoted}.{fix}"


class Report(BaseModel):
    """Every finding of one check of one message, blocks first."""

    # "ignore": a stored report carries its computed ``blocked``, which is recomputed on reading.
    model_config = ConfigDict(frozen=True, extra="ignore")

    findings: tuple[Finding, ...] = ()
    checked_at: datetime
    rules_version: str = RULES_VERSION

    @classmethod
    def of(cls, findings: Iterable[Finding], *, checked_at: datetime) -> Report:
        """A report of ``findings``, each once, blocks before warnings (otherwise in the order found)."""
        unique = list(dict.fromkeys(findings))
        ordered = sorted(unique, key=lambda finding: finding.severity is not Severity.BLOCK)
        return cls(findings=tuple(ordered), checked_at=checked_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocked(self) -> bool:
        """Whether any finding blocks the message."""
        return any(finding.severity is Severity.BLOCK for finding in self.findings)

    def blocking(self) -> tuple[Finding, ...]:
        """The findings that block."""
        return tuple(finding for finding in self.findings if finding.severity is Severity.BLOCK)

    def rules(self) -> tuple[str, ...]:
        """The ids of the rules with findings, each once, in report order."""
        return tuple(dict.fromkeys(finding.rule for finding in self.findings))
