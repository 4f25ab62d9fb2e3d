"""A/B experiments: lifecycle, assignment, serving, event logging, KPIs."""
