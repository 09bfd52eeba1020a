"""Every guardrail rule, listed: compliance (e-mail, SMS), content, and prompt injection.

``RULES`` is the one list the checker runs, in this order; ``nudge check --rules`` prints it. Each
module holds its rules' small check functions and exports its tuple of ``Rule``s.
"""

from __future__ import annotations

from guardrails.rule import Rule
from guardrails.rules.content import CONTENT_RULES
from guardrails.rules.email import EMAIL_RULES
from guardrails.rules.injection import INJECTION_RULES
from guardrails.rules.sms import SMS_RULES

RULES: tuple[Rule, ...] = (*EMAIL_RULES, *SMS_RULES, *CONTENT_RULES, *INJECTION_RULES)
