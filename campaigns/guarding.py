"""The guardrails applied to the drafting agent: before it reads creative, while it repairs, and on what it writes.

The agent and the guardrails do not know each other (they are sibling layers); this module joins them:

- ``GuardedRetriever`` wraps the agent's retriever: every retrieved item is scanned for injected
  instructions, which are removed before the prompt is built (the model never sees them), and what
  they asked for (links, codes, addresses) is remembered, so copy that obeys them anyway is blocked.
- ``repair_check`` is a ``DraftCheck`` for ``draft_campaign(extra_checks=…)``: the guardrails' blocking
  findings on each finished answer go back to the model in the repair prompt.
- ``review`` checks every draft of a set and returns its report, stored with the draft and shown to
  the approver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from agents.checks import DraftCheck
from agents.ports import CreativeRetriever, RetrievedCreative
from agents.schemas import Brief, Draft, DraftOutput, DraftSet
from core.models import Channel
from guardrails.context import CheckContext, Message
from guardrails.injection import neutralise
from guardrails.report import Report
from guardrails.service import check


@dataclass
class GuardedRetriever:
    """A ``CreativeRetriever`` whose items come back with injected instructions removed.

    Attributes
    ----------
    inner : CreativeRetriever
    flagged : dict of str to tuple of str
        External ids of the items that held instructions, with what was removed from each.
    payloads : set of str
        What those instructions asked the copy to contain.
    """

    inner: CreativeRetriever
    flagged: dict[str, tuple[str, ...]]
    payloads: set[str]

    @classmethod
    def around(cls, inner: CreativeRetriever) -> GuardedRetriever:
        return cls(inner, {}, set())

    def retrieve(self, query: str, *, channel: Channel | None = None, k: int = 5) -> list[RetrievedCreative]:
        return [self._neutralised(item) for item in self.inner.retrieve(query, channel=channel, k=k)]

    def _neutralised(self, item: RetrievedCreative) -> RetrievedCreative:
        body, hits = neutralise(item.body)
        subject, subject_hits = neutralise(item.subject) if item.subject else (item.subject, [])
        hits = [*hits, *subject_hits]
        if not hits:
            return item
        self.flagged[item.external_id] = tuple(hit.text for hit in hits)
        self.payloads.update(payload for hit in hits for payload in hit.payloads)
        return replace(item, body=body, subject=subject)


def message_of(output: DraftOutput, channel: Channel) -> Message:
    """A draft's copy as the guardrails read it: unrendered, slots in place."""
    return Message(
        channel=channel,
        subject=output.subject,
        preheader=output.preheader,
        body_text=output.body_text,
        body_html=output.body_html,
        sms_text=output.sms_text,
        offer_codes=tuple(output.offer_codes),
    )


def with_injected(context: CheckContext, retriever: GuardedRetriever) -> CheckContext:
    """``context`` that also blocks what the retriever's flagged creative asked for."""
    return replace(context, injected=context.injected | frozenset(retriever.payloads))


def repair_check(context: CheckContext, retriever: GuardedRetriever) -> DraftCheck:
    """The guardrails' blocking findings on an answer, as problems the drafting agent sends back for repair.

    The retriever's payloads are read at each check: the agent retrieves before its first answer.
    """

    def blocking(output: DraftOutput, brief: Brief) -> list[str]:
        report = check(message_of(output, brief.channel), with_injected(context, retriever))
        return [finding.for_model() for finding in report.blocking()]

    return blocking


def review(draft_set: DraftSet, context: CheckContext) -> dict[str, Report]:
    """Each draft's report, by variant."""
    return {draft.variant: review_draft(draft, context) for draft in draft_set.drafts}


def review_draft(draft: Draft, context: CheckContext, *, at: datetime | None = None) -> Report:
    """One draft's report (dated ``at``, default the context's clock)."""
    dated = context if at is None else replace(context, now=at)
    return check(message_of(draft, draft.channel), dated)
