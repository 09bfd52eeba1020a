"""What ``nudge demo`` adds to the product for a newcomer: simulated outcomes from a documented ground truth,
sent back through the real endpoints, and the one-page HTML report of the run."""
