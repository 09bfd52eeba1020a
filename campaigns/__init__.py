"""Campaigns: the lifecycle that joins the domains, plan → draft → check → approve → send → measure."""
