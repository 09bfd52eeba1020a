"""Inbound SMS keywords: what a reply means (opt-out, opt-in, help or anything else) and what we answer.

Pure functions: the inbound-SMS webhook classifies the text, records the opt-out or opt-in at once, and
answers with ``reply_text`` (as TwiML) when there is one.

**The matching rule.** The text is upper-cased and cut into words at anything that is not a letter or a
digit, so case, spaces and punctuation do not matter (``"Stop."``, ``" stop "``, ``"Opt-out!"``). The rule
is deliberately lopsided, because the two mistakes do not cost the same: texting someone who revoked
consent risks $500–1,500 a message (TCPA), treating a chatty reply as an opt-out costs one subscriber who
can send START.

- **Opt-out** when the whole message is an opt-out keyword (``STOP``, ``STOPALL``, ``UNSUBSCRIBE``,
  ``END``, ``QUIT``, ``CANCEL``, ``REVOKE``, ``OPTOUT``, also written ``"stop all"``, ``"opt out"``), when
  its first word is one (``"STOP please"``, ``"Cancel."``), when a reply of at most three words holds
  ``STOP``, ``STOPALL``, ``UNSUBSCRIBE``, ``REVOKE`` or ``OPTOUT`` (``"ok stop"``), or when it holds an
  unmistakable revocation anywhere (``"please opt me out"``, ``"how do I unsubscribe"``, ``"stop texting
  me"``): the FCC counts any reasonable means of revoking, and CTIA asks that normal-language opt-outs be
  honoured (reference §1.2 T5, §1.3). A word that merely starts like a keyword is not one: ``"stopping by
  later?"`` is other. The price is a few false opt-outs (``"End of story"``, ``"don't stop"``).
- **Opt-in** only when the whole message is ``START``, ``YES`` or ``UNSTOP``: restarting marketing texts on
  a reply like ``"yes, if it's cheaper"`` would be the expensive mistake.
- **Help** when the whole message or its first word is ``HELP`` or ``INFO``; answering help is harmless.
- Anything else is other (the webhook may route it to a person).

**Replies** are the carrier-required ones (CTIA, reference §1.3): the STOP confirmation carries no marketing
(the one message TCPA allows after an opt-out, §1.2 T8); START confirms with frequency, rates, HELP and STOP;
HELP gives brand, support contact, frequency, rates and STOP. Each fits one GSM-7 segment (160 characters),
which ``SmsProgram`` checks when it is made.

**Twilio may already answer.** On long codes and toll-free numbers Twilio handles the standard keywords
itself (and a Messaging Service with Advanced Opt-Out answers with the texts configured there), before our
webhook runs. Replying too would send a second confirmation, so set ``SmsProgram.provider_replies`` and
every ``reply_text`` is ``None``; the opt-out or opt-in must still be recorded. Twilio only acts on its own
keywords, so a natural-language revocation then goes unanswered, which the law allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import ValidationFailed
from core.sms import normalize_typography, sms_size

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# Revocations nobody writes by accident, matched as whole words anywhere in the message.
REVOCATION_PHRASES: tuple[tuple[str, ...], ...] = (
    ("UNSUBSCRIBE",),
    ("OPTOUT",),
    ("OPT", "OUT"),
    ("OPT", "ME", "OUT"),
    ("PLEASE", "STOP"),
    ("STOP", "TEXTING"),
    ("STOP", "MESSAGING"),
    ("STOP", "SENDING"),
    ("STOP", "CONTACTING"),
    ("REMOVE", "ME"),
    ("TAKE", "ME", "OFF"),
)

# In a reply this short, these words mean stop whatever surrounds them ("ok stop", "pls stop it").
SHORT_REPLY_WORDS = 3
SHORT_REPLY_OPT_OUTS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "REVOKE", "OPTOUT"})

GSM7_SINGLE_SEGMENT = 160
DEFAULT_FREQUENCY = "Msg frequency varies"

_NOT_A_WORD = re.compile(r"[\W_]+")


class KeywordKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class KeywordAction:
    """What an inbound text asks for, and the text to answer with (``None``: send nothing)."""

    kind: KeywordKind
    reply_text: str | None


@dataclass(frozen=True, slots=True)
class SmsProgram:
    """The facts the carrier-required replies quote.

    Attributes
    ----------
    brand_name : str
        Opens every reply (``"Fablewave: …"``).
    support_contact : str
        Where help is: a URL, an e-mail address or a toll-free number.
    frequency : str
        How often texts come, as disclosed at opt-in (``"Up to 4 msgs/week"``).
    provider_replies : bool
        Twilio (default keyword handling or Advanced Opt-Out) answers the keywords itself: we send nothing.

    Raises
    ------
    ValidationFailed
        When a value is empty or a reply would not fit one GSM-7 segment; ``details`` names each.
    """

    brand_name: str
    support_contact: str
    frequency: str = DEFAULT_FREQUENCY
    provider_replies: bool = False

    def __post_init__(self) -> None:
        problems = [
            {"path": name, "message": "must not be empty"}
            for name in ("brand_name", "support_contact", "frequency")
            if not getattr(self, name).strip()
        ]
        if not problems:
            problems = [
                {"path": name, "message": problem}
                for name, reply in _REPLIES.items()
                if (problem := _does_not_fit(reply(self)))
            ]
        if problems:
            raise ValidationFailed("the SMS keyword replies cannot be built from these values", details=problems)


def classify(text: str) -> KeywordKind:
    """The kind of an inbound text under the matching rule of the module docstring."""
    words = _words(text)
    if not words:
        return KeywordKind.OTHER
    whole = "".join(words)
    if whole in OPT_OUT_KEYWORDS or _first_word_in(words, OPT_OUT_KEYWORDS) or _has_revocation(words):
        return KeywordKind.OPT_OUT
    if whole in OPT_IN_KEYWORDS:
        return KeywordKind.OPT_IN
    if whole in HELP_KEYWORDS or words[0] in HELP_KEYWORDS:
        return KeywordKind.HELP
    return KeywordKind.OTHER


def keyword_action(text: str, program: SmsProgram) -> KeywordAction:
    """Classify ``text`` and pick the reply ``program`` gives for it (none for other, none if Twilio answers)."""
    kind = classify(text)
    reply = _REPLY_FOR.get(kind)
    if reply is None or program.provider_replies:
        return KeywordAction(kind, None)
    return KeywordAction(kind, reply(program))


def stop_reply(program: SmsProgram) -> str:
    """The opt-out confirmation: who, that nothing more will come, how to come back; no marketing."""
    return _plain(
        f"{program.brand_name}: You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    )


def start_reply(program: SmsProgram) -> str:
    """The opt-in confirmation: who, how often, that rates may apply, HELP and STOP."""
    return _plain(
        f"{program.brand_name}: You are subscribed to our texts. {_sentence(program.frequency)} "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out."
    )


def help_reply(program: SmsProgram) -> str:
    """The help answer: who, where to get help, how often, that rates may apply, STOP."""
    return _plain(
        f"{program.brand_name}: Help at {_sentence(program.support_contact)} {_sentence(program.frequency)} "
        "Msg & data rates may apply. Reply STOP to opt out."
    )


_REPLIES: dict[str, Callable[[SmsProgram], str]] = {
    "stop_reply": stop_reply,
    "start_reply": start_reply,
    "help_reply": help_reply,
}
_REPLY_FOR: dict[KeywordKind, Callable[[SmsProgram], str]] = {
    KeywordKind.OPT_OUT: stop_reply,
    KeywordKind.OPT_IN: start_reply,
    KeywordKind.HELP: help_reply,
}


def _words(text: str) -> list[str]:
    return [word for word in _NOT_A_WORD.split(text.upper()) if word]


def _first_word_in(words: list[str], keywords: frozenset[str]) -> bool:
    # Two words may spell one keyword: "opt out please", "stop all now".
    return words[0] in keywords or "".join(words[:2]) in keywords


def _has_revocation(words: list[str]) -> bool:
    if len(words) <= SHORT_REPLY_WORDS and not SHORT_REPLY_OPT_OUTS.isdisjoint(words):
        return True
    return any(
        tuple(words[start : start + len(phrase)]) == phrase
        for phrase in REVOCATION_PHRASES
        for start in range(len(words))
    )


def _sentence(text: str) -> str:
    return text.strip().rstrip(".") + "."


def _plain(text: str) -> str:
    # A curly apostrophe in a brand name would switch the reply to UCS-2 (70 characters a segment).
    return normalize_typography(" ".join(text.split()))


def _does_not_fit(reply: str) -> str | None:
    size = sms_size(reply)
    if size.encoding != "GSM-7":
        return f"has characters outside GSM-7: {reply!r}"
    if size.units > GSM7_SINGLE_SEGMENT:
        return f"is {size.units} characters, over one segment ({GSM7_SINGLE_SEGMENT}): {reply!r}"
    return None
