"""Intake: adapters that turn outside input into persisted messages (email, web form, CWC, scans)."""
