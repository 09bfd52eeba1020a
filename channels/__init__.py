"""Channels: e-mail and SMS sender ports with SendGrid, Twilio and local-outbox adapters (the Channels issue)."""
