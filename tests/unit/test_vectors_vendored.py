"""Every external vector a test reads is vendored in ``tests/vectors/``: none may skip.

CI runs on a clean clone where the project's ``../shared`` folder does not exist, so a test
that reads ``../shared/vectors`` (or skips when a vector file is missing) silently tests
nothing there. This guard scans the test sources and the vendored files' README.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
VECTORS = TESTS / "vectors"
THIS = Path(__file__).resolve()

# Spelled in pieces so that this file does not match itself.
_SHARED_PATH = re.compile(r"\.\./" + "shared" + r"|[\"']" + "shared" + r"[\"']\s*[/,)]")
_VECTOR_SKIP = re.compile(r"skip(if)?\([^)]*vector", re.IGNORECASE | re.DOTALL)


def _sources() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if path.resolve() != THIS)


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(TESTS)))
def test_no_test_reads_the_shared_folder(path: Path) -> None:
    text = path.read_text()
    assert not _SHARED_PATH.search(text), f"{path} refers to ../shared: vendor the file"
    assert not _VECTOR_SKIP.search(text), f"{path} skips for missing vectors: vendor them"


def _readme_rows() -> dict[str, str]:
    """``file -> sha256 prefix`` from the vendored files' README table."""
    rows: dict[str, str] = {}
    for line in (VECTORS / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and "/" in cells[0] and cells[3].startswith("`"):
            rows[cells[0]] = cells[3].strip("`").rstrip("…")
    return rows


def test_every_vendored_file_is_documented_with_its_checksum() -> None:
    files = {
        str(path.relative_to(VECTORS))
        for path in VECTORS.rglob("*")
        if path.is_file() and path.name != "README.md"
    }
    rows = _readme_rows()
    assert files == set(rows), "every vendored file needs a row in tests/vectors/README.md"
    for name, prefix in rows.items():
        digest = hashlib.sha256((VECTORS / name).read_bytes()).hexdigest()
        assert digest.startswith(prefix), f"{name} changed: update its row (origin, sha256)"
