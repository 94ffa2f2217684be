"""Effects: the work a use case asks for *after* its transaction commits.

A use case never enqueues a job itself (it cannot know whether its transaction will commit); it
returns the effects it wants, and one of the three boundaries — the web action helper
(`web.outcome`), the job wrapper (`workers.jobs.job`) and the CLI decorator (`workers.cli.use_case`) —
commits and then dispatches them (`workers.effects.dispatch`). An effect names a job from the table
in `workers.effects` and the ids it works on; nothing else (jobs take ids, never objects).

Use cases with effects return ``Done(value, effects)``; callers that compose use cases add the
effects up (``Done.effects``) and return them in turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Effect:
    """A job to queue after the commit: its name in `workers.effects.JOBS` and the ids it takes."""

    job: str
    ids: tuple[int, ...] = ()
    options: tuple[tuple[str, object], ...] = ()  # e.g. (("by_staff", True),): plain values only

    @classmethod
    def of(cls, job: str, *ids: int, **options: object) -> Effect:
        return cls(job, tuple(ids), tuple(sorted(options.items())))

    @property
    def object_id(self) -> int:
        """The single id of a one-object effect."""
        if len(self.ids) != 1:
            raise ValueError(f"effect {self.job!r} carries {len(self.ids)} ids, not one")
        return self.ids[0]


@dataclass(frozen=True)
class Done(Generic[T]):
    """A use case's result with the effects to dispatch after the commit."""

    value: T
    effects: tuple[Effect, ...] = field(default=())

    @classmethod
    def with_effects(cls, value: T, effects: Iterable[Effect]) -> Done[T]:
        return cls(value, tuple(effects))

    @classmethod
    def gather(cls, parts: Iterable[Done[T]]) -> Done[list[T]]:
        """Several use cases' results as one: their values in order, and all their effects."""
        done = list(parts)
        return Done([d.value for d in done], tuple(e for d in done for e in d.effects))


def effects_of(result: object) -> tuple[Effect, ...]:
    """The effects a boundary should dispatch for whatever a use case returned."""
    if isinstance(result, Done):
        return result.effects
    if isinstance(result, Effect):
        return (result,)
    if isinstance(result, (list, tuple)) and result and all(isinstance(e, Effect) for e in result):
        return tuple(result)
    return ()
