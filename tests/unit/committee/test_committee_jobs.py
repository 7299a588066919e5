"""A member's background jobs: kept while they run, failures logged, cancelled at stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pervasive.committee import Jobs
from pervasive.errors import InvalidInput


async def test_a_user_error_is_one_warning_line_and_a_bug_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = Jobs("oracle 0xabc")

    async def refuse() -> None:
        raise InvalidInput("a report by an unregistered key")

    async def crash() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, logger="pervasive.committee.jobs"):
        await asyncio.gather(jobs.spawn(refuse()), jobs.spawn(crash()), return_exceptions=True)
        await asyncio.sleep(0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in warnings] == ["oracle 0xabc: a report by an unregistered key"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert len(jobs) == 0


async def test_cancel_ends_every_running_job() -> None:
    jobs = Jobs("notary 1")
    started = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = jobs.spawn(wait_forever())
    await started.wait()
    assert list(jobs) == [task]
    await jobs.cancel()
    assert task.cancelled() and len(jobs) == 0
