"""Audience: customers, orders, subscriptions, consent and suppression coming in — CSV import,
the real sample data sets, and Segment-spec event intake (identify, track, batch)."""
