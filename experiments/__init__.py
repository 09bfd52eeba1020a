"""Experiments: hashed assignment, holdouts and the statistics of A/B analysis (the Experiments issue)."""
