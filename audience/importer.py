"""CSV import of customers, subscriptions and orders: every row is checked first, then all are written, or none.

``import_csv`` reads the whole file, checks every value, every required column and every reference
to the database, and raises ``ValidationFailed`` listing *every* problem (row, column, reason,
value) before a single INSERT runs. Only a clean file is written, in bulk. The caller's session
scope commits; this module never does.

What a marketer can rely on:

- **Rows are numbered as in the file**: the header is row 1, the first data row is row 2 (a row
  that spans lines inside quotes is numbered by the line it starts on; blank lines count).
- **Columns** are matched to fields by name, ignoring case; ``mapping`` (field → column header)
  overrides that for the fields it names. Columns nobody asked for are ignored and listed in the
  summary. An extra column is kept only when mapped explicitly as ``attributes.<name>`` (customers
  and subscriptions), stored as text under ``<name>``, so a stray column never lands in the data.
- **Customers are upserted** by ``external_id``: a new id is created, a known one updated. A blank
  cell leaves the stored value as it is (a partial export never wipes data), and attributes are
  merged into the stored ones.
- **Orders and subscriptions are facts**: one whose ``external_id`` is already stored is refused,
  as is one whose customer does not exist yet (import customers first). Without an
  ``external_id``, re-importing the same file adds the rows again.
- Timestamps are ISO 8601 (``2024-03-31``, ``2024-03-31T14:05:00+02:00``); without an offset they
  are UTC. Amounts are decimal numbers with a ``.`` (no currency sign or thousands separator),
  rounded to cents.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from audience.repository import customer_ids, existing_external_ids, upsert_customers
from core.bulk import insert_rows
from core.clock import utcnow
from core.contact import normalize_country, normalize_email, normalize_phone, validate_time_zone
from core.errors import NudgeError, ValidationFailed
from core.models import Base, Order, Subscription
from core.money import to_amount, to_currency


class ImportKind(StrEnum):
    CUSTOMERS = "customers"
    SUBSCRIPTIONS = "subscriptions"
    ORDERS = "orders"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file. ``row`` is None when it concerns the whole file."""

    row: int | None
    column: str | None
    reason: str
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason, "value": self.value}


@dataclass(frozen=True, slots=True)
class ImportSummary:
    kind: ImportKind
    rows: int
    created: int
    updated: int  # customers only: rows whose external_id was already stored
    ignored_columns: tuple[str, ...]


SHOWN_VALUE_CHARS = 60  # an offending value is echoed back truncated to this
MAX_AMOUNT = Decimal("1e12")  # Numeric(14, 2) holds 12 digits before the point
MAX_QUANTITY = 2**31 - 1
ATTRIBUTE_PREFIX = "attributes."

# --- parsing values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


# Takes the distinct non-blank (stripped) texts of a column; returns each one's value or Invalid.
Parser = Callable[[Sequence[str]], dict[str, Any]]


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _each(convert: Callable[[str], Any], reason: str = "") -> Parser:
    """A parser converting each distinct text once: files repeat values (dates, amounts, currencies) a lot."""

    def parse(texts: Sequence[str]) -> dict[str, Any]:
        parsed: dict[str, Any] = {}
        for text in texts:
            try:
                parsed[text] = convert(text)
            except _Reject as rejection:
                parsed[text] = Invalid(rejection.reason)
            except (NudgeError, ValueError):
                parsed[text] = Invalid(reason)
        return parsed

    return parse


def _text(max_length: int) -> Parser:
    def check(text: str) -> str:
        if len(text) > max_length:
            raise _Reject(f"longer than {max_length} characters")
        return text

    return _each(check)


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_DATE_START = r"\d{4}-\d{2}-\d{2}"


def _amount(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise _Reject("not a number (use digits and a '.', no currency sign or thousands separator)")
    amount = to_amount(text)
    if amount < 0:
        raise _Reject("must not be negative")
    if amount >= MAX_AMOUNT:
        raise _Reject(f"too large (at most {MAX_AMOUNT - Decimal('0.01')})")
    return amount


def _quantity(text: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(text):
        raise _Reject("not a whole number")
    quantity = int(text)
    if not 1 <= quantity <= MAX_QUANTITY:
        raise _Reject("must be a whole number of at least 1")
    return quantity


def _timestamps(texts: Sequence[str]) -> dict[str, Any]:
    """ISO 8601, vectorised. A text must start with a full date: pandas alone would read ``2024`` as a year."""
    series = pd.Series(list(texts), dtype=object)
    complete = series.str.match(_DATE_START)
    moments = pd.to_datetime(series.where(complete), format="ISO8601", utc=True, errors="coerce")
    reason = "not a date or time in ISO 8601 (e.g. 2024-03-31 or 2024-03-31T14:05:00+02:00)"
    return {
        text: Invalid(reason) if pd.isna(moment) else moment.to_pydatetime()
        for text, moment in zip(texts, moments, strict=True)
    }


_ID = _text(128)
_EMAIL = _each(normalize_email, "not an e-mail address")
_PHONE = _each(normalize_phone, "not a phone number in international format (+, country code, number)")
_TIME_ZONE = _each(validate_time_zone, "not an IANA time zone (e.g. America/New_York)")
_COUNTRY = _each(normalize_country, "not a two-letter ISO 3166-1 country code (e.g. US)")
_CURRENCY = _each(to_currency, "not an ISO 4217 currency code (three letters, e.g. USD)")
_AMOUNT = _each(_amount)
_QUANTITY = _each(_quantity)

# --- what each kind of file holds -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    parse: Parser
    required: bool = False  # the column must be in the file and no cell may be blank


@dataclass(frozen=True, slots=True)
class Spec:
    fields: tuple[Field, ...]
    keeps_attributes: bool

    def get(self, name: str) -> Field | None:
        return next((candidate for candidate in self.fields if candidate.name == name), None)


SPECS: dict[ImportKind, Spec] = {
    ImportKind.CUSTOMERS: Spec(
        fields=(
            Field("external_id", _ID, required=True),
            Field("email", _EMAIL),
            Field("phone", _PHONE),
            Field("first_name", _text(100)),
            Field("last_name", _text(100)),
            Field("time_zone", _TIME_ZONE),
            Field("country", _COUNTRY),
            Field("region", _text(64)),
        ),
        keeps_attributes=True,
    ),
    ImportKind.SUBSCRIPTIONS: Spec(
        fields=(
            Field("external_id", _ID),
            Field("customer_external_id", _ID, required=True),
            Field("plan", _text(64), required=True),
            Field("monthly_charge", _AMOUNT, required=True),
            Field("currency", _CURRENCY),
            Field("started_at", _timestamps, required=True),
            Field("ended_at", _timestamps),
        ),
        keeps_attributes=True,
    ),
    ImportKind.ORDERS: Spec(
        fields=(
            Field("external_id", _ID),
            Field("customer_external_id", _ID, required=True),
            Field("amount", _AMOUNT, required=True),
            Field("currency", _CURRENCY),
            Field("quantity", _QUANTITY),
            Field("ordered_at", _timestamps, required=True),
        ),
        keeps_attributes=False,
    ),
}

# --- the file -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Table:
    """The CSV as text cells; ``lines[i]`` is the file line where record ``i`` starts (header = 1)."""

    header: list[str]
    records: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def read_table(data: bytes, encoding: str = "utf-8") -> tuple[Table, list[Problem]]:
    """Decode and split the file; an undecodable or empty file raises, a ragged row is a problem."""
    text = _decode(data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise _file_failure([Problem(None, None, "the file is empty: no header row")])
        table, problems = Table([cell.strip() for cell in header]), []
        start = reader.line_num + 1
        for record in reader:
            problems += _take(table, record, start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise _file_failure([Problem(reader.line_num, None, f"not readable as CSV: {error}")]) from error
    if not table.records and not problems:
        problems.append(Problem(None, None, "the file has a header but no rows"))
    return table, problems


def _take(table: Table, record: list[str], line: int) -> list[Problem]:
    width = len(table.header)
    if len(record) > width and not any(cell.strip() for cell in record[width:]):
        record = record[:width]  # trailing empty cells, as some spreadsheets write them
    if not any(cell.strip() for cell in record):
        return []  # a blank line
    if len(record) != width:
        return [Problem(line, None, f"has {len(record)} cells but the header has {width}")]
    table.records.append(record)
    table.lines.append(line)
    return []


def _decode(data: bytes, encoding: str) -> str:
    try:
        codec = codecs.lookup(encoding)
    except LookupError as error:
        raise ValidationFailed(f"unknown encoding {encoding!r}") from error
    name = "utf-8-sig" if codec.name == "utf-8" else codec.name  # accept (and drop) a UTF-8 byte order mark
    try:
        return data.decode(name)
    except UnicodeDecodeError as error:
        raise _file_failure(_decoding_problems(data, name, encoding, error)) from error


def _decoding_problems(data: bytes, codec: str, encoding: str, first: UnicodeDecodeError) -> list[Problem]:
    """One problem per line that does not decode, when lines can be told apart byte-wise; else the first."""
    line = data[: first.start].count(b"\n") + 1
    first_problem = _undecodable(encoding, line, data[first.start : first.end], f"offset {first.start} in the file")
    if "\n".encode(codec.removesuffix("-sig")) != b"\n":  # lines cannot be split byte-wise (UTF-16, UTF-32)
        return [first_problem]
    problems, offset = [], 0
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            raw.decode(codec)
        except UnicodeDecodeError as error:
            where = f"byte {error.start + 1} of the line, offset {offset + error.start} in the file"
            shown = _shown(raw.decode(codec, errors="replace").rstrip("\r\n"))
            problems.append(_undecodable(encoding, number, raw[error.start : error.end], where, shown))
        offset += len(raw)
    return problems or [first_problem]


def _undecodable(encoding: str, line: int, bad: bytes, where: str, shown: str | None = None) -> Problem:
    reason = f"not valid {encoding}: {bad.hex(' ').upper()} at {where}; save the file as UTF-8 or give its encoding"
    return Problem(line, None, reason, shown)


def _file_failure(problems: list[Problem]) -> ValidationFailed:
    return ValidationFailed(_headline(problems), details=[problem.as_dict() for problem in problems])


def _headline(problems: Sequence[Problem]) -> str:
    count = len(problems)
    return f"{count} problem{'s' if count != 1 else ''} in the file; nothing was imported"


# --- columns --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Columns:
    """Which file column feeds each field and each kept attribute."""

    fields: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def ignored(self, header: Sequence[str]) -> tuple[str, ...]:
        used = {*self.fields.values(), *self.attributes.values()}
        return tuple(name for index, name in enumerate(header) if name and index not in used)


def resolve_columns(kind: ImportKind, header: Sequence[str], mapping: Mapping[str, str]) -> Columns:
    spec, columns = SPECS[kind], Columns()
    for target, column in mapping.items():
        _map_explicitly(kind, spec, header, target.strip(), column.strip(), columns)
    mapped = {target.strip() for target in mapping}
    for spec_field in spec.fields:
        if spec_field.name in mapped:
            continue
        index = _find(header, spec_field.name)
        if index is not None:
            columns.fields[spec_field.name] = index
        elif spec_field.required:
            columns.problems.append(Problem(1, spec_field.name, "required column is missing"))
    for name, index in columns.fields.items() | columns.attributes.items():
        if header.count(header[index]) > 1:
            columns.problems.append(Problem(1, header[index], f"appears more than once in the header (for {name})"))
    return columns


def _map_explicitly(
    kind: ImportKind, spec: Spec, header: Sequence[str], target: str, column: str, columns: Columns
) -> None:
    attribute = target.removeprefix(ATTRIBUTE_PREFIX) if target.startswith(ATTRIBUTE_PREFIX) else None
    if attribute is not None and not (spec.keeps_attributes and attribute):
        reason = f"{kind} keep no attributes" if not spec.keeps_attributes else "attribute name is empty"
        columns.problems.append(Problem(1, column, f"cannot map to {target!r}: {reason}"))
        return
    if attribute is None and spec.get(target) is None:
        known = ", ".join(candidate.name for candidate in spec.fields)
        keep = f"; keep other columns as {ATTRIBUTE_PREFIX}NAME" if spec.keeps_attributes else ""
        columns.problems.append(Problem(1, column, f"mapped to unknown field {target!r} (fields: {known}{keep})"))
        return
    index = _find(header, column)
    if index is None:
        columns.problems.append(Problem(1, column, f"no such column in the file (mapped to {target})"))
    elif attribute is not None:
        columns.attributes[attribute] = index
    else:
        columns.fields[target] = index


def _find(header: Sequence[str], name: str) -> int | None:
    if name in header:
        return header.index(name)
    folded = name.casefold()
    return next((index for index, candidate in enumerate(header) if candidate.casefold() == folded), None)


# --- checking every row ---------------------------------------------------------------------------


@dataclass(slots=True)
class Checked:
    """Parsed values, one list per field (None where blank or invalid), and every problem found."""

    values: dict[str, list[Any]]
    attributes: list[dict[str, str]]
    problems: list[Problem]
    customer_ids: dict[str, int] = field(default_factory=dict)


def check_rows(kind: ImportKind, table: Table, columns: Columns) -> Checked:
    spec, header = SPECS[kind], table.header
    checked = Checked(values={}, attributes=_attributes(table, columns), problems=[])
    for spec_field in spec.fields:
        index = columns.fields.get(spec_field.name)
        if index is None:
            checked.values[spec_field.name] = [None] * len(table.records)
            continue
        values, problems = _check_column(spec_field, [record[index] for record in table.records], table.lines)
        checked.values[spec_field.name] = values
        checked.problems += [_in_column(problem, header[index]) for problem in problems]
    checked.problems += _duplicates(checked.values["external_id"], table.lines, _column_name(header, columns))
    if kind is ImportKind.SUBSCRIPTIONS and "ended_at" in columns.fields:
        checked.problems += _ends_before_start(checked.values, table, columns.fields["ended_at"])
    return checked


def _check_column(spec_field: Field, cells: list[str], lines: list[int]) -> tuple[list[Any], list[Problem]]:
    texts = [cell.strip() for cell in cells]
    parsed = spec_field.parse(list(dict.fromkeys(text for text in texts if text)))
    values: list[Any] = [None] * len(texts)
    problems: list[Problem] = []
    for position, text in enumerate(texts):
        if not text:
            if spec_field.required:
                problems.append(Problem(lines[position], None, "required value is blank"))
            continue
        value = parsed[text]
        if isinstance(value, Invalid):
            problems.append(Problem(lines[position], None, value.reason, _shown(cells[position])))
        else:
            values[position] = value
    return values, problems


def _attributes(table: Table, columns: Columns) -> list[dict[str, str]]:
    """Kept attributes as text; a blank cell is left out so it does not overwrite a stored value."""
    kept = list(columns.attributes.items())
    return [{name: record[index].strip() for name, index in kept if record[index].strip()} for record in table.records]


def _duplicates(ids: list[Any], lines: list[int], column: str) -> list[Problem]:
    first_seen: dict[str, int] = {}
    problems: list[Problem] = []
    for position, external_id in enumerate(ids):
        if external_id is None:
            continue
        if external_id in first_seen:
            reason = f"duplicate id: also on row {first_seen[external_id]}"
            problems.append(Problem(lines[position], column, reason, _shown(external_id)))
        else:
            first_seen[external_id] = lines[position]
    return problems


def _ends_before_start(values: dict[str, list[Any]], table: Table, ended_column: int) -> list[Problem]:
    problems: list[Problem] = []
    for position, (started, ended) in enumerate(zip(values["started_at"], values["ended_at"], strict=True)):
        if started is not None and ended is not None and ended < started:
            cell = _shown(table.records[position][ended_column])
            problems.append(Problem(table.lines[position], table.header[ended_column], "ends before it starts", cell))
    return problems


def _in_column(problem: Problem, column: str) -> Problem:
    return Problem(problem.row, column, problem.reason, problem.value)


def _column_name(header: Sequence[str], columns: Columns, name: str = "external_id") -> str:
    return header[columns.fields[name]] if name in columns.fields else name


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE_CHARS else value[: SHOWN_VALUE_CHARS - 1] + "…"


# --- checking against the database ----------------------------------------------------------------


def check_database(session: Session, kind: ImportKind, checked: Checked, table: Table, columns: Columns) -> None:
    """Orders and subscriptions: the customer must exist, and the row's own id must be new. Reads only."""
    if kind is ImportKind.CUSTOMERS:
        return
    model: type[Base] = Order if kind is ImportKind.ORDERS else Subscription
    owners = checked.values["customer_external_id"]
    checked.customer_ids = customer_ids(session, (owner for owner in owners if owner is not None))
    owner_column = _column_name(table.header, columns, "customer_external_id")
    for position, owner in enumerate(owners):
        if owner is not None and owner not in checked.customer_ids:
            reason = "no customer with this external id (import customers first)"
            checked.problems.append(Problem(table.lines[position], owner_column, reason, _shown(owner)))
    ids = checked.values["external_id"]
    taken = existing_external_ids(session, model, (external_id for external_id in ids if external_id is not None))
    id_column = _column_name(table.header, columns)
    for position, external_id in enumerate(ids):
        if external_id in taken:
            reason = f"already imported: {kind} has a row with this external id"
            checked.problems.append(Problem(table.lines[position], id_column, reason, _shown(external_id)))


# --- the service ----------------------------------------------------------------------------------


def import_csv(
    session: Session,
    kind: ImportKind,
    data: bytes,
    *,
    mapping: Mapping[str, str] | None = None,
    encoding: str = "utf-8",
    currency: str = "USD",
) -> ImportSummary:
    """Check every row of a CSV file, then write all of them or raise ``ValidationFailed`` with every problem.

    ``mapping`` maps our field (or ``attributes.<name>``) to the file's column header; unmapped fields
    are read from the column of the same name. ``currency`` fills blank or missing currency cells.
    Never commits: the caller's session scope does, or rolls back.
    """
    default_currency = to_currency(currency)
    table, problems = read_table(data, encoding)
    columns = resolve_columns(kind, table.header, mapping or {})
    checked = check_rows(kind, table, columns)
    check_database(session, kind, checked, table, columns)
    problems = _in_file_order([*problems, *columns.problems, *checked.problems], table.header)
    if problems:
        raise ValidationFailed(_headline(problems), details=[problem.as_dict() for problem in problems])
    created, updated = _write(session, kind, checked, default_currency)
    return ImportSummary(kind, len(table.records), created, updated, columns.ignored(table.header))


def _in_file_order(problems: list[Problem], header: Sequence[str]) -> list[Problem]:
    """By row, then by column as they stand in the header (whole-row problems first)."""
    position = {name: index for index, name in reversed(list(enumerate(header)))}
    return sorted(problems, key=lambda problem: (problem.row or 0, position.get(problem.column or "", -1)))


def _write(session: Session, kind: ImportKind, checked: Checked, currency: str) -> tuple[int, int]:
    if kind is ImportKind.CUSTOMERS:
        return write_customers(session, checked.values, checked.attributes)
    rows = _rows(checked.values, checked.customer_ids, currency)
    if kind is ImportKind.SUBSCRIPTIONS:
        for row, attributes in zip(rows, checked.attributes, strict=True):
            row["attributes"] = attributes
        insert_rows(session, Subscription, rows)
    else:
        insert_rows(session, Order, rows)
    return len(rows), 0


def write_customers(
    session: Session, values: Mapping[str, list[Any]], attributes: Sequence[dict[str, str]]
) -> tuple[int, int]:
    """Upsert customers; a blank value is left out of its row so it never overwrites a stored one.

    Rows are grouped by which fields they fill, since one bulk upsert needs rows of the same shape.
    Returns (created, updated).
    """
    ids: list[str] = values["external_id"]  # never blank: the column is required
    existing = customer_ids(session, ids)
    keep_attributes = any(attributes)
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for position in range(len(ids)):
        row = {name: column[position] for name, column in values.items() if column[position] is not None}
        if keep_attributes:
            row["attributes"] = attributes[position]
        groups.setdefault(frozenset(row), []).append(row)
    for rows in groups.values():
        upsert_customers(session, rows)
    return len(ids) - len(existing), len(existing)


def _rows(values: Mapping[str, list[Any]], owners: Mapping[str, int], currency: str) -> list[dict[str, Any]]:
    """Insertable rows for orders or subscriptions, with the customer's id and the defaults filled in."""
    now = utcnow()
    names = [name for name in values if name != "customer_external_id"]
    rows: list[dict[str, Any]] = []
    for position, owner in enumerate(values["customer_external_id"]):
        row = {name: values[name][position] for name in names}
        row["customer_id"] = owners[owner]
        row["currency"] = row["currency"] or currency
        if "quantity" in row:
            row["quantity"] = row["quantity"] or 1
        row["created_at"] = row["updated_at"] = now
        rows.append(row)
    return rows


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["email=E-mail Address", …]`` (the CLI's ``--map``) as ``{"email": "E-mail Address"}``."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, separator, column = pair.partition("=")
        if not separator or not target.strip() or not column.strip():
            raise ValidationFailed(f"a mapping is field=Column, got {pair!r}")
        mapping[target.strip()] = column.strip()
    return mapping
