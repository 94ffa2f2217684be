"""Casework: constituent cases, steps, privacy releases and reminders."""
