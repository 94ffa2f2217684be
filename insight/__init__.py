"""What the office learns from its mail: search, analytics, reports and the dashboard."""
