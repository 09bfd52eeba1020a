"""Who may be contacted on which channel, now: an address on file, current consent, and no suppression.

Current consent for (customer, channel) is the latest consent record; no record means no consent
(marketing needs opt-in under GDPR, CASL and TCPA alike). A suppressed address is never reachable,
whoever it belongs to. Vectorised: three queries for any number of customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.bulk import among, chunks
from core.models import Channel, Consent, ConsentStatus, Customer, Suppression

ADDRESS_COLUMN = {Channel.EMAIL: "email", Channel.SMS: "phone"}


def reachable(session: Session, customer_ids: Sequence[int]) -> dict[Channel, np.ndarray]:
    """A boolean mask per channel, aligned with ``customer_ids``."""
    ids = pd.Index(np.asarray(customer_ids, dtype=np.int64))
    addresses = _addresses(session, ids)
    granted = _current_consent(session, ids)
    suppressed = _suppressed(session)
    masks: dict[Channel, np.ndarray] = {}
    for channel, column in ADDRESS_COLUMN.items():
        address = addresses[column].reindex(ids)
        consent = granted.get(channel, pd.Series(dtype=bool)).reindex(ids, fill_value=False)
        blocked = address.isin(suppressed.get(channel, set()))
        masks[channel] = (address.notna() & consent.astype(bool) & ~blocked).to_numpy()
    return masks


def _addresses(session: Session, ids: pd.Index) -> pd.DataFrame:
    rows: list[Any] = []
    for chunk in chunks(ids.tolist()):
        query = select(Customer.id, Customer.email, Customer.phone).where(among(Customer.id, chunk))
        rows.extend(session.execute(query).all())
    return pd.DataFrame(rows, columns=["id", "email", "phone"]).set_index("id")


def _current_consent(session: Session, ids: pd.Index) -> dict[Channel, pd.Series]:
    rows: list[Any] = []
    for chunk in chunks(ids.tolist()):
        query = (
            select(Consent.customer_id, Consent.channel, Consent.status)
            .where(among(Consent.customer_id, chunk))
            .order_by(Consent.customer_id, Consent.channel, Consent.recorded_at, Consent.id)
        )
        rows.extend(session.execute(query).all())
    frame = pd.DataFrame(rows, columns=["customer_id", "channel", "status"])
    latest = frame.drop_duplicates(["customer_id", "channel"], keep="last")
    return {
        Channel(str(channel)): group.set_index("customer_id")["status"].eq(ConsentStatus.GRANTED)
        for channel, group in latest.groupby("channel")
    }


def _suppressed(session: Session) -> dict[Channel, set[str]]:
    found: dict[Channel, set[str]] = {}
    for channel, address in session.execute(select(Suppression.channel, Suppression.address)):
        found.setdefault(channel, set()).add(address)
    return found
