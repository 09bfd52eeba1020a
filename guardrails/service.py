"""The guardrails' one entry point: check a message (a draft or a rendered message) in its context.

``check`` runs every listed rule (``guardrails.rules.RULES``) that applies to the message's channel and
returns a ``Report``. The checks are pure and need no I/O, so the workers can re-check each rendered
message at send time for next to nothing (``bench/guardrails.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from guardrails.context import CheckContext, Message
from guardrails.report import Report
from guardrails.rule import Rule
from guardrails.rules import RULES


def check(message: Message, context: CheckContext, *, rules: Sequence[Rule] = RULES) -> Report:
    """Every finding of ``rules`` on ``message``, as a report dated ``context.now``."""
    return Report.of((finding for rule in rules for finding in rule.run(message, context)), checked_at=context.now)
