"""Settings from the environment, with embedded defaults."""

from config.settings import Settings

__all__ = ["Settings"]
