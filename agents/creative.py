"""The creative library: past campaigns, reusable snippets and brand guidelines, imported from JSON and indexed
for retrieval.

``import_creative`` reads ``{"creative": [item, …]}``, normalises every text field (``agents.sanitize``:
HTML comments and invisible characters are removed and reported), checks every item and writes all of
them or none, reporting every problem. Items are upserted by ``external_id``; an item whose every
column is unchanged is left alone. After the database write the created and changed items — and any the
vector store does not hold yet — are (re)indexed, the external id being the vector id, so re-indexing
replaces and never duplicates. The database is written (and flushed, so constraints are checked) before
the store: if indexing fails the caller rolls back and nothing changed; if the commit fails after
indexing, the store holds a vector the retriever ignores (it keeps only ids that are in the database).

An item::

    {"external_id": "em-m2m-loyalty-20-a", "kind": "campaign", "channel": "email",
     "title": "…", "subject": "…", "body": "…", "tags": ["retention"], "audience": "subscribers_month_to_month",
     "sent_from": "2025-09-08", "sent_until": "2025-09-22",
     "performance": {"sends": 48200, "opens": 16388, "clicks": 2506, "conversions": 1494, "revenue": "102189.60"}}

Rules beyond the types (checked on the items whose fields are all valid): a campaign has a channel; an
e-mail campaign has a subject and an SMS has none; opens, clicks and conversions are at most the sends;
``sent_until`` is not before ``sent_from``; tags are unique. Guidelines are items of kind ``guideline``
(usually in their own file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.files import (
    Problem,
    UtcDatetime,
    apply_columns,
    duplicates,
    raise_problems,
    read_items,
    shown,
    validate_items,
)
from agents.sanitize import Stripped, sanitize
from agents.vectorstore import store_errors
from core.bulk import among, chunks
from core.models import Channel, CreativeItem, CreativeKind

CREATIVE_KEY = "creative"
TEXT_FIELDS = ("title", "subject", "body", "audience")


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none)]


class PerformanceRow(BaseModel):
    """What an item achieved while it was sent; all zero for an item never sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sends: int = Field(default=0, ge=0)
    opens: int = Field(default=0, ge=0)
    clicks: int = Field(default=0, ge=0)
    conversions: int = Field(default=0, ge=0)
    revenue: Decimal = Field(default=Decimal(0), ge=0, lt=Decimal("1e12"), decimal_places=2)


class CreativeRow(BaseModel):
    """One item as the file holds it, after sanitising."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    external_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    kind: CreativeKind
    channel: Channel | None = None
    title: str = Field(min_length=1, max_length=200)
    subject: OptionalText = Field(default=None, max_length=200)
    body: str = Field(min_length=1)
    tags: list[Tag] = Field(default_factory=list)
    audience: OptionalText = Field(default=None, max_length=200)
    sent_from: UtcDatetime | None = None
    sent_until: UtcDatetime | None = None
    performance: PerformanceRow = Field(default_factory=PerformanceRow)

    def columns(self) -> dict[str, Any]:
        columns = self.model_dump(exclude={"performance"})
        columns.update(self.performance.model_dump())
        return columns


@dataclass(frozen=True, slots=True)
class Sanitized:
    """Invisible content removed from one field of one item."""

    file: str
    external_id: str
    field: str
    stripped: Stripped

    def describe(self) -> str:
        return f"{self.external_id} {self.field}: removed {self.stripped.describe()}"


@dataclass(frozen=True, slots=True)
class ParsedCreative:
    rows: list[CreativeRow]
    numbers: list[int]  # each row's item number in the file
    sanitized: list[Sanitized]
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class CreativeImportSummary:
    file: str
    items: int
    created: int
    updated: int
    unchanged: int
    indexed: int
    sanitized: tuple[Sanitized, ...]


# --- reading --------------------------------------------------------------------------------------


def parse_creative(data: bytes, file: str = "creative.json") -> ParsedCreative:
    """Every item of the file sanitised and checked; the rows are only usable when there is no problem."""
    items, problems = read_items(data, file, CREATIVE_KEY)
    cleaned, sanitized = _sanitized(items, file)
    rows, row_problems = validate_items(CreativeRow, cleaned, file)
    problems += row_problems
    for number, row in enumerate(rows, start=1):
        if row is not None:
            problems += [Problem(file, number, field, reason, value) for field, reason, value in _rules(row)]
    problems += duplicates(file, cleaned, "external_id")
    valid = [(number, row) for number, row in enumerate(rows, start=1) if row is not None]
    return ParsedCreative([row for _, row in valid], [number for number, _ in valid], sanitized, problems)


def _sanitized(items: Sequence[Any], file: str) -> tuple[list[Any], list[Sanitized]]:
    """Items with their text fields (and tags) sanitised, before validation, so limits apply to the clean text."""
    cleaned: list[Any] = []
    report: list[Sanitized] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            cleaned.append(item)
            continue
        item = dict(item)
        name = str(item.get("external_id") or f"item {number}")
        for field in TEXT_FIELDS:
            if isinstance(item.get(field), str):
                item[field], stripped = sanitize(item[field])
                if stripped.total:
                    report.append(Sanitized(file, name, field, stripped))
        if isinstance(item.get("tags"), list):
            item["tags"], stripped = _sanitized_tags(item["tags"])
            if stripped.total:
                report.append(Sanitized(file, name, "tags", stripped))
        cleaned.append(item)
    return cleaned, report


def _sanitized_tags(tags: list[Any]) -> tuple[list[Any], Stripped]:
    cleaned: list[Any] = []
    total = Stripped()
    for tag in tags:
        if isinstance(tag, str):
            tag, stripped = sanitize(tag)
            total += stripped
        cleaned.append(tag)
    return cleaned, total


def _rules(row: CreativeRow) -> list[tuple[str, str, str | None]]:
    """(field, reason, value) for each rule the item breaks."""
    broken: list[tuple[str, str, str | None]] = []
    if row.kind is CreativeKind.CAMPAIGN and row.channel is None:
        broken.append(("channel", "a campaign needs a channel (email or sms)", None))
    if row.kind is CreativeKind.CAMPAIGN and row.channel is Channel.EMAIL and row.subject is None:
        broken.append(("subject", "an e-mail campaign needs a subject", None))
    if row.channel is Channel.SMS and row.subject is not None:
        broken.append(("subject", "an SMS has no subject", shown(row.subject)))
    performance = row.performance
    for name in ("opens", "clicks", "conversions"):
        if getattr(performance, name) > performance.sends:
            broken.append((f"performance.{name}", "more than the sends", str(getattr(performance, name))))
    if row.sent_from and row.sent_until and row.sent_until < row.sent_from:
        broken.append(("sent_until", "before sent_from", shown(row.sent_until.isoformat())))
    if len({tag.casefold() for tag in row.tags}) != len(row.tags):
        broken.append(("tags", "lists a tag more than once", shown(row.tags)))
    return broken


# --- writing and indexing -------------------------------------------------------------------------


def import_creative(
    session: Session, data: bytes, *, file: str = "creative.json", store: VectorStore | None = None
) -> CreativeImportSummary:
    """Check every item, then upsert all of them by external id and index what changed into ``store``,
    or raise ``ValidationFailed`` with every problem. Never commits."""
    parsed = parse_creative(data, file)
    raise_problems(parsed.problems)
    return write_creative(session, parsed, file, store)


def write_creative(
    session: Session, parsed: ParsedCreative, file: str, store: VectorStore | None
) -> CreativeImportSummary:
    items, created, updated = _upsert(session, parsed.rows)
    indexed = index_missing_or_changed(store, items, changed=created | updated) if store is not None else 0
    rows = len(parsed.rows)
    return CreativeImportSummary(
        file, rows, len(created), len(updated), rows - len(created) - len(updated), indexed, tuple(parsed.sanitized)
    )


def _upsert(session: Session, rows: Sequence[CreativeRow]) -> tuple[list[CreativeItem], set[str], set[str]]:
    """Every row's item (created or updated as needed), and the ids created and updated."""
    stored = stored_items(session, [row.external_id for row in rows])
    items: list[CreativeItem] = []
    created: set[str] = set()
    updated: set[str] = set()
    for row in rows:
        item = stored.get(row.external_id)
        if item is None:
            item = CreativeItem(**row.columns())
            session.add(item)
            created.add(row.external_id)
        elif apply_columns(item, row.columns()):
            updated.add(row.external_id)
        items.append(item)
    session.flush()
    return items, created, updated


def stored_items(session: Session, external_ids: Sequence[str]) -> dict[str, CreativeItem]:
    found: dict[str, CreativeItem] = {}
    for chunk in chunks(list(external_ids)):
        query = select(CreativeItem).where(among(CreativeItem.external_id, chunk))
        found.update((item.external_id, item) for item in session.scalars(query))
    return found


def index_missing_or_changed(store: VectorStore, items: Sequence[CreativeItem], *, changed: set[str]) -> int:
    """Index the changed items and those the store lacks (a new data directory, a new Pinecone namespace)."""
    with store_errors():
        held = {document.id for document in store.get_by_ids([item.external_id for item in items])}
    return index_items(store, [item for item in items if item.external_id in changed or item.external_id not in held])


def index_items(store: VectorStore, items: Sequence[CreativeItem]) -> int:
    """(Re)index ``items``; their external ids are the vector ids, so an old vector is replaced."""
    if not items:
        return 0
    with store_errors():
        store.add_documents([document_for(item) for item in items], ids=[item.external_id for item in items])
    return len(items)


def reindex_all(session: Session, store: VectorStore) -> int:
    """Index every item in the database (after a change of embedding model or of store)."""
    return index_items(store, session.scalars(select(CreativeItem).order_by(CreativeItem.external_id)).all())


def document_for(item: CreativeItem) -> Document:
    """What is embedded and what the store keeps beside the vector.

    The embedded text leads with what says most about the item (title, subject, tags, audience) because
    the local model reads only the first 128 word pieces. Metadata is flat (Pinecone takes strings,
    numbers, booleans and lists of strings, never null): ``channel`` is absent when the item has none.
    """
    lines = [
        item.title,
        item.subject or "",
        _words(item.tags),
        _words([item.audience] if item.audience else []),
        item.body,
    ]
    metadata: dict[str, Any] = {
        "external_id": item.external_id,
        "kind": item.kind.value,
        "title": item.title,
        "tags": list(item.tags),
        "sends": item.sends,
        "conversions": item.conversions,
    }
    if item.channel is not None:
        metadata["channel"] = item.channel.value
    if item.subject:
        metadata["subject"] = item.subject
    metadata["body"] = item.body  # so a retriever without a database session still has the copy
    return Document(id=item.external_id, page_content="\n".join(line for line in lines if line), metadata=metadata)


def _words(labels: Sequence[str]) -> str:
    """``["month_to_month", "cd"]`` as ``month to month, cd``: the model reads words, not identifiers."""
    return ", ".join(label.replace("_", " ") for label in labels)
