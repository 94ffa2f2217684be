"""The office's data, whole: an open export (`mailroom export`), a restore into an empty database
(`mailroom restore`) and a check of a database against an archive (`mailroom verify`).

The format is documented in docs/archive-format.md; `archive.tables` holds the one encoding that export and
verify share, so a checksum written by one is recomputed the same way by the other.
"""
