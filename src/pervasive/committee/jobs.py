"""Background jobs of a committee member: fire and forget, but never silently.

A member (a notary, an oracle node) reacts to a message or a tick by starting a job
(evaluate a challenge, fetch a source, submit an answer) without waiting for it.
:class:`Jobs` keeps a reference to each running job (asyncio keeps only weak ones, so
an unreferenced task can vanish mid-flight), logs how a job failed (a
:class:`~pervasive.errors.UserError` as one warning line, anything else with its
traceback) and cancels what still runs when the member stops.

Example::

    jobs = Jobs(f"oracle {address[:10]}")
    jobs.spawn(self._fetch(query))
    ...
    await jobs.cancel()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any

from pervasive.errors import PervasiveError, UserError

__all__ = ["Jobs"]

_log = logging.getLogger(__name__)


class Jobs:
    """The running background jobs of one member, named ``owner`` in the logs."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``job`` in the background; its failure is logged, never lost.

        Example: ``jobs.spawn(self._submit_due())``.
        """
        task = asyncio.create_task(job)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, UserError):
            _log.warning("%s: %s", self.owner, error)
        elif error is not None:
            _log.error("%s: a task failed", self.owner, exc_info=error)

    def __iter__(self) -> Iterator[asyncio.Task[None]]:
        return iter(list(self._running))

    def __len__(self) -> int:
        return len(self._running)

    async def cancel(self) -> None:
        """Cancel every running job and wait until each has ended.

        Example: ``await jobs.cancel()`` when the member stops.
        """
        running = list(self._running)
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, PervasiveError):
                await task
