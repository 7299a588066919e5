"""Receipt barcodes: PNG and SVG decode (zxing-cpp) to the very receipt; the book keeps them."""

from __future__ import annotations

import io

import cairosvg
import pytest
import zxingcpp
from PIL import Image

from pervasive.crypto import generate_private_key
from pervasive.domain import InvalidReceipt, SaleReceipt
from pervasive.web import ReceiptBook, receipt_png, receipt_svg
from pervasive.web.receipts import receipt_qr

ORDER = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"


def _decoded(image: Image.Image) -> SaleReceipt:
    on_white = Image.new("RGB", image.size, "white")
    on_white.paste(image, mask=image.getchannel("A") if image.mode == "RGBA" else None)
    [barcode] = zxingcpp.read_barcodes(on_white)
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    return SaleReceipt.decode(barcode.text)


@pytest.fixture
def receipt() -> SaleReceipt:
    key = generate_private_key()
    return SaleReceipt.sign(key, 31337, ORDER, key.address)


def test_png_decodes_to_the_same_valid_receipt(receipt: SaleReceipt) -> None:
    scanned = _decoded(Image.open(io.BytesIO(receipt_png(receipt))))
    assert scanned == receipt
    scanned.verify(chain_id=31337)


def test_svg_decodes_to_the_same_valid_receipt(receipt: SaleReceipt) -> None:
    svg = receipt_svg(receipt)
    assert svg.startswith(b"<?xml") and b"<title>Sale receipt: order " + ORDER.encode() in svg
    raster = cairosvg.svg2png(bytestring=svg)
    scanned = _decoded(Image.open(io.BytesIO(raster)))
    assert scanned == receipt


def test_the_qr_uses_the_compact_alphanumeric_mode(receipt: SaleReceipt) -> None:
    qr = receipt_qr(receipt)
    assert qr.mode == "alphanumeric"
    assert qr.version == 9  # 61x61 with its quiet zone at scale 1
    assert qr.symbol_size(scale=1) == (61, 61)


def test_receipt_book_keeps_verified_receipts_only(receipt: SaleReceipt) -> None:
    book = ReceiptBook(":memory:")
    book.put(receipt)
    book.put(receipt)  # once is enough; the same receipt again changes nothing
    assert book.get(31337, ORDER.lower(), receipt.buyer) == receipt
    assert book.get(1, ORDER, receipt.buyer) is None
    other = generate_private_key()
    forged = SaleReceipt(31337, ORDER, other.address, receipt.signature)
    with pytest.raises(InvalidReceipt, match="not signed by its buyer"):
        book.put(forged)
    assert book.get(31337, ORDER, other.address) is None
