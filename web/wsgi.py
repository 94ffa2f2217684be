"""WSGI entry point for gunicorn: the app built from the environment."""

import os

from config import Settings
from web import create_app

# gunicorn started on its own (not by `mailroom run`): the SQLite WAL/SHM files and blobs it creates stay private.
os.umask(0o077)
app = create_app(Settings.from_env())
