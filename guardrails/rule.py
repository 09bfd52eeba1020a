"""The shape of a guardrail rule: an id, a severity, the channels it applies to, and a small check function.

A rule's check reads one ``Message`` in its ``CheckContext`` and yields ``Finding``s (none: the rule
holds). ``Rule.finding`` builds them with the rule's id and severity, so a check only says what and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.models import Channel
from guardrails.context import CheckContext, Message
from guardrails.report import Finding, Severity

ALL_CHANNELS = frozenset(Channel)
EMAIL = frozenset({Channel.EMAIL})
SMS = frozenset({Channel.SMS})

Check = Callable[["Rule", Message, CheckContext], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One listed, documented rule.

    Attributes
    ----------
    id : str
        ``<area>.<name>``, such as ``email.unsubscribe_link``; stable, shown to approvers, used in tests.
    severity : Severity
        What its findings do: ``block`` stops approval and sending, ``warn`` informs the approver.
    channels : frozenset of Channel
        The channels it applies to.
    summary : str
        One sentence: what it requires.
    source : str
        Why: the law, carrier rule or policy, as the compliance reference cites it.
    check : Check
        The check itself.
    """

    id: str
    severity: Severity
    channels: frozenset[Channel]
    summary: str
    source: str
    check: Check

    def run(self, message: Message, context: CheckContext) -> list[Finding]:
        """The rule's findings on ``message`` (none when the channel is not the rule's)."""
        if message.channel not in self.channels:
            return []
        return list(self.check(self, message, context))

    def finding(
        self,
        message: str,
        *,
        field: str | None = None,
        span: tuple[int, int] | None = None,
        excerpt: str = "",
        hint: str = "",
        severity: Severity | None = None,
    ) -> Finding:
        """A finding of this rule; ``severity`` overrides the rule's own where one case is milder."""
        start, end = span if span is not None else (None, None)
        return Finding(
            rule=self.id,
            severity=severity or self.severity,
            message=message,
            field=field,
            start=start,
            end=end,
            excerpt=excerpt,
            hint=hint,
        )
