"""Money as ``Decimal`` with a currency: never floats for amounts that are stored or summed."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from core.errors import BadRequest

CENT = Decimal("0.01")


def to_amount(value: str | int | float | Decimal) -> Decimal:
    """Parse an amount and round it to cents (banker's rounding, as ledgers do)."""
    try:
        amount = Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError) as error:
        raise BadRequest(f"not an amount: {value!r}") from error
    if not amount.is_finite():
        raise BadRequest(f"not an amount: {value!r}")
    return amount


def to_currency(code: str) -> str:
    """An ISO 4217 code: three ASCII letters, upper-cased."""
    code = code.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise BadRequest(f"not an ISO 4217 currency code: {code!r}")
    return code
