"""Reading the brand's JSON files: every problem in a file is found and reported, as the CSV importer does.

A file is one JSON object whose single list holds the items (``{"offers": [...]}``, ``{"creative": [...]}``).
Each item is validated with a Pydantic model; every failure becomes a ``Problem`` naming the file, the
item's position (1 for the first item), the field and the offending value. ``raise_problems`` turns them
into one ``ValidationFailed`` whose details use the CSV importer's keys (``row`` is the item number,
``column`` the field), so the CLI prints both the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from core.clock import as_utc
from core.errors import ValidationFailed

SHOWN_VALUE_CHARS = 60  # an offending value is echoed back truncated to this

Model = TypeVar("Model", bound=BaseModel)

# ISO 8601 dates or times; without an offset they are UTC, as in the CSV importer.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file; ``item`` is None when it concerns the whole file."""

    file: str
    item: int | None
    field: str | None
    reason: str
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.item, "column": self.field, "reason": self.reason, "value": self.value}

    def describe(self) -> str:
        """``creative.json, item 3, field 'title': reason (value: '…')``."""
        where = (
            [self.file]
            + ([f"item {self.item}"] if self.item else [])
            + ([f"field {self.field!r}"] if self.field else [])
        )
        value = f" (value: {self.value!r})" if self.value is not None else ""
        return f"{', '.join(where)}: {self.reason}{value}"


def read_items(data: bytes, file: str, key: str) -> tuple[list[Any], list[Problem]]:
    """The list under ``key`` in a UTF-8 JSON file. Numbers are read as ``Decimal``, so money never passes a float."""
    try:
        document = json.loads(data.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError as error:
        return [], [Problem(file, None, None, f"not UTF-8 text (byte {error.start})")]
    except json.JSONDecodeError as error:
        return [], [
            Problem(file, None, None, f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")
        ]
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        return [], [Problem(file, None, None, f'expected a JSON object with a list under "{key}"')]
    unknown = sorted(set(document) - {key})
    if unknown:
        return [], [Problem(file, None, None, f"unknown top-level keys: {', '.join(unknown)}")]
    return list(document[key]), []


def validate_items(model: type[Model], items: Sequence[Any], file: str) -> tuple[list[Model | None], list[Problem]]:
    """Each item validated; None where an item fails, with every failure as a problem."""
    rows: list[Model | None] = []
    problems: list[Problem] = []
    for number, item in enumerate(items, start=1):
        try:
            rows.append(model.model_validate(item))
        except ValidationError as error:
            rows.append(None)
            problems += [_problem(file, number, detail) for detail in error.errors(include_url=False)]
    return rows, problems


def _problem(file: str, number: int, detail: Any) -> Problem:
    field = ".".join(str(part) for part in detail["loc"]) or None
    value = None if detail["type"] == "missing" else shown(detail["input"])
    # A validator's ValueError reads "Value error, <our message>": the prefix says nothing to a marketer.
    return Problem(file, number, field, str(detail["msg"]).removeprefix("Value error, "), value)


def duplicates(file: str, items: Sequence[Any], field: str) -> list[Problem]:
    """A problem for every repeat of an item's key ``field``, naming the item that had it first. Read from the
    raw items, so a repeat is reported even when the item has other problems."""
    first_seen: dict[str, int] = {}
    problems: list[Problem] = []
    for number, item in enumerate(items, start=1):
        key = item.get(field) if isinstance(item, dict) else None
        if not isinstance(key, str):
            continue
        key = key.strip()
        if key in first_seen:
            problems.append(Problem(file, number, field, f"duplicate: also item {first_seen[key]}", shown(key)))
        else:
            first_seen[key] = number
    return problems


def shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 1] + "…"


def raise_problems(problems: Iterable[Problem]) -> None:
    """Raise ``ValidationFailed`` listing every problem, in file and item order; do nothing if there is none."""
    ordered = sorted(problems, key=lambda problem: (problem.file, problem.item or 0))
    if not ordered:
        return
    count = f"{len(ordered)} problem{'' if len(ordered) == 1 else 's'}"
    files = ", ".join(dict.fromkeys(problem.file for problem in ordered))
    raise ValidationFailed(
        f"{count} in {files}; nothing was imported", details=[problem.as_dict() for problem in ordered]
    )


def apply_columns(target: Any, columns: dict[str, Any]) -> bool:
    """Set the ORM columns whose value differs (an upsert's update); whether any did. Datetimes compare in
    UTC, since SQLite returns them without a zone."""
    changed = False
    for name, value in columns.items():
        current = getattr(target, name)
        if isinstance(current, datetime):
            current = as_utc(current)
        if current != value:
            setattr(target, name, value)
            changed = True
    return changed
