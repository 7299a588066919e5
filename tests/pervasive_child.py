"""A ``pervasive`` command run as a real child process that fault tests kill and restart.

Example::

    class World(PervasiveChild):
        def arguments(self) -> list[str]:
            return ["shadow", "run", "--port", str(self.port)]

    process = world.start(); await world.ready(process, starts=1)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["PervasiveChild"]


class PervasiveChild:
    """Starts ``python -m pervasive --home <home> <arguments()>`` with ``env``, logging to
    ``<home>/<log_name>``; subclasses (test worlds) give ``home``, ``env`` and the command."""

    home: Path
    env: dict[str, str]
    log_name = "child.log"

    def arguments(self) -> list[str]:
        """The command after ``--home <home>``."""
        raise NotImplementedError

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.home / self.log_name, "ab") as log:  # the child keeps its own copy
            return subprocess.Popen(
                [sys.executable, "-m", "pervasive", "--home", str(self.home), *self.arguments()],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return (self.home / self.log_name).read_text(errors="replace")

    async def ready(self, process: subprocess.Popen[bytes], starts: int) -> None:
        """Wait until the ``starts``-th run printed that it serves ("Ctrl-C stops it")."""
        try:
            async with asyncio.timeout(60):
                while self.log().count("Ctrl-C stops it") < starts:
                    assert process.poll() is None, f"exited with {process.returncode}"
                    await asyncio.sleep(0.05)
        except (TimeoutError, AssertionError) as exc:
            pytest.fail(f"{Path(self.log_name).stem} did not start: {exc}\n{self.log()[-4000:]}")
