"""Guardrails: compliance, content and token-spend checks on every draft (the Guardrails issue)."""
