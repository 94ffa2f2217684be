"""Constituent records: identity, values, duplicates, segments and CSV imports."""
