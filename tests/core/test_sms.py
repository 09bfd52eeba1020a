"""SMS segment counting, on the cases the compliance reference verified (§2.1)."""

from __future__ import annotations

import pytest

from core.sms import SmsSize, normalize_typography, sms_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("", SmsSize("GSM-7", 0, 0)),
        ("a" * 160, SmsSize("GSM-7", 160, 1)),
        ("a" * 161, SmsSize("GSM-7", 161, 2)),
        ("a" * 306, SmsSize("GSM-7", 306, 2)),
        ("a" * 307, SmsSize("GSM-7", 307, 3)),
        ("€" * 80, SmsSize("GSM-7", 160, 1)),
        ("€" * 81, SmsSize("GSM-7", 162, 2)),
        ("a" * 70 + "é", SmsSize("GSM-7", 71, 1)),
        ("a" * 69 + "ç", SmsSize("UCS-2", 70, 1)),
        ("a" * 70 + "😀", SmsSize("UCS-2", 72, 2)),
    ],
)
def test_segments_are_counted_as_carriers_bill_them(text: str, size: SmsSize) -> None:
    assert sms_size(text) == size


def test_typography_is_made_plain_so_a_message_stays_gsm7() -> None:
    text = normalize_typography("It\u2019s \u201cyours\u201d \u2014 now\u2026\u00a0ok")

    assert text == 'It\'s "yours" - now... ok'
    assert sms_size(text).encoding == "GSM-7"
