"""Machine learning: point-in-time features, churn, CLV and the decision engine (the Targeting issue)."""
