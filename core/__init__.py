"""Core: settings, database, ORM models, errors and clock. Imports nothing else of ours."""
