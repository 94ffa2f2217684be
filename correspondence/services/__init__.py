"""Service functions: one per use case, each takes a session and ids, flushes, never commits."""
