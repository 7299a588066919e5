"""``pervasive demo warehouse``: paper 004's case study end to end on the embedded chain.

The command itself exits 1 unless the buyer's receipt opened the door and nothing else
did; the test also reads what the person at the door was told for each receipt.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pervasive.apps.salesorder import read_barcode_text
from pervasive.cli import app
from pervasive.domain import SaleReceipt

pytestmark = pytest.mark.slow


def test_the_demo_releases_the_sale_once_and_refuses_the_other_receipts(home: Path) -> None:
    chart = home / "chart.png"
    result = CliRunner(env={"COLUMNS": "200", "PERVASIVE_PASSWORD": "pw"}).invoke(
        app, ["--home", str(home), "demo", "warehouse", "--hold", "0.1", "--chart", str(chart)]
    )
    assert result.exit_code == 0, result.output
    assert "the door opened 1 time(s) for 4 receipts shown" in result.output
    assert "the seller received 50 ETH" in result.output
    assert "was bought by another account" in result.output  # paper Table 4, invalid set
    assert "was not signed by its buyer" in result.output  # tampered
    assert "a receipt opens the door only once" in result.output  # shown twice
    assert chart.read_bytes().startswith(b"\x89PNG")
    receipt = SaleReceipt.decode(read_barcode_text(home / "warehouse" / "run" / "receipt.png"))
    receipt.verify()
    assert receipt.encode() in result.output.replace("\n", "")
