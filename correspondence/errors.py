"""Domain errors; the web and CLI boundaries map them to answers for a person."""


class DomainError(Exception):
    """Base class of errors a person can act on."""


class NotFound(DomainError):
    """The object asked for does not exist."""


class PermissionDenied(DomainError):
    """The staffer may not do this."""


class ValidationFailed(DomainError):
    """Input was well-formed but not acceptable."""


class InvalidTransition(ValidationFailed):
    """A state machine refused a move from one state to another (the request was understood, and the
    object's state does not allow it: callers that report refused input report this too)."""
