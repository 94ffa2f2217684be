"""WSGI entry point for gunicorn: the app built from the environment."""

from config import Settings
from web import create_app

app = create_app(Settings.from_env())
