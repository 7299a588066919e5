"""Receipt barcodes: what the web app draws, the door's camera reads (zxing-cpp, segno).

The photo-like images are made the way a phone screen held to a camera looks: the code
scaled up, turned a few degrees, blurred, lit unevenly, with sensor noise, on a larger
background, saved as JPEG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from pervasive.apps.salesorder import (
    UnreadableImage,
    read_barcode_text,
    read_barcode_texts,
    render_png,
    render_svg,
    render_terminal,
)
from pervasive.crypto import PrivateKey
from pervasive.domain import SaleReceipt
from pervasive.errors import InvalidInput

ORDER = "0x3DD96E8772ae3e0a6A5E1B7BB4Bf3b6BF3B2C1Aa"  # after Table 2 of paper 004: 0x3dD96E8772


def a_receipt(secret: int = 7, chain_id: int = 31337, order: str = ORDER) -> SaleReceipt:
    key = PrivateKey((secret % (2**255 - 1) + 1).to_bytes(32, "big"))
    return SaleReceipt.sign(key, chain_id, order, key.address)


def photographed(png: bytes, *, angle: float = 7.0, scale: float = 2.3, seed: int = 1) -> bytes:
    """``png`` as a camera sees a phone screen: scaled, turned, blurred, noisy, JPEG."""
    rng = np.random.default_rng(seed)
    code = Image.open(io.BytesIO(png)).convert("L")
    code = code.resize((int(code.width * scale), int(code.height * scale)), Image.BILINEAR)
    code = code.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=235)
    frame = Image.new("L", (code.width + 320, code.height + 240), 190)
    frame.paste(code, (150, 90))
    pixels = np.asarray(frame).astype(np.float64)
    light = np.linspace(0.7, 1.0, pixels.shape[1])[None, :]  # a lamp on one side
    pixels = pixels * light * 0.8 + 30 + rng.normal(0, 14, pixels.shape)
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    noisy.filter(ImageFilter.GaussianBlur(1.1)).save(out, format="JPEG", quality=70)
    return out.getvalue()


def test_a_rendered_receipt_reads_back() -> None:
    text = a_receipt().encode()
    assert read_barcode_text(render_png(text)) == text
    assert SaleReceipt.decode(read_barcode_text(render_png(text, scale=2))) == a_receipt()


def test_a_photographed_receipt_reads_back(tmp_path: Path) -> None:
    text = a_receipt().encode()
    photo = tmp_path / "frame.jpg"
    photo.write_bytes(photographed(render_png(text)))
    assert read_barcode_text(photo) == text
    assert read_barcode_text(str(photo)) == text
    assert read_barcode_text(Image.open(photo)) == text


@settings(max_examples=15, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=2**200),
    chain_id=st.integers(min_value=1, max_value=2**64),
    angle=st.floats(min_value=-12, max_value=12),
    scale=st.floats(min_value=1.2, max_value=3.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_any_receipt_photographed_reads_back(
    secret: int, chain_id: int, angle: float, scale: float, seed: int
) -> None:
    text = a_receipt(secret, chain_id).encode()
    photo = photographed(render_png(text), angle=angle, scale=scale, seed=seed)
    assert read_barcode_text(photo) == text


def test_a_camera_frame_array_reads_back() -> None:
    text = a_receipt().encode()
    gray = np.asarray(Image.open(io.BytesIO(photographed(render_png(text)))).convert("L"))
    bgr = np.ascontiguousarray(np.stack([gray, gray, gray], axis=-1))
    assert read_barcode_text(gray) == text
    assert read_barcode_text(bgr) == text
    with pytest.raises(UnreadableImage, match="numpy array of 8-bit samples"):
        read_barcode_text(gray.astype(np.float32))  # type: ignore[arg-type]


def test_a_receipt_beside_another_code_is_the_one_read() -> None:
    text = a_receipt().encode()
    label, receipt = (
        Image.open(io.BytesIO(render_png(t))).convert("L") for t in ("SKU 4AA6-77", text)
    )
    frame = Image.new("L", (label.width + receipt.width + 40, receipt.height + 40), 255)
    frame.paste(label, (10, 20))
    frame.paste(receipt, (label.width + 30, 20))
    assert sorted(read_barcode_texts(frame)) == sorted(["SKU 4AA6-77", text])
    assert read_barcode_text(frame) == text


def test_two_receipts_in_view_are_refused() -> None:
    first, second = (
        Image.open(io.BytesIO(render_png(a_receipt(s).encode()))).convert("L") for s in (1, 2)
    )
    frame = Image.new("L", (first.width * 2 + 40, first.height + 40), 255)
    frame.paste(first, (10, 20))
    frame.paste(second, (first.width + 30, 20))
    with pytest.raises(UnreadableImage, match="2 different receipts are in view"):
        read_barcode_text(frame)


def test_images_without_a_receipt_say_why(tmp_path: Path) -> None:
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(blank, format="PNG")
    with pytest.raises(UnreadableImage, match="no QR code could be read"):
        read_barcode_text(blank.getvalue())
    with pytest.raises(UnreadableImage, match="not a picture this door can read"):
        read_barcode_text(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UnreadableImage, match="does not exist"):
        read_barcode_text(tmp_path / "missing.png")
    with pytest.raises(UnreadableImage, match="not a picture"):
        (tmp_path / "notes.txt").write_text("PVR1:1:...")
        read_barcode_text(tmp_path / "notes.txt")
    # a code that is no receipt is read (the door then says "not a sale receipt")
    assert read_barcode_text(render_png("HELLO")) == "HELLO"


def test_other_image_modes_are_read() -> None:
    text = a_receipt().encode()
    image = Image.open(io.BytesIO(render_png(text)))
    for mode in ("1", "L", "RGB", "RGBA", "P", "CMYK"):
        assert read_barcode_text(image.convert(mode)) == text, mode


def test_svg_and_terminal_renderings_draw_the_code() -> None:
    text = a_receipt().encode()
    svg = render_svg(text)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    drawn = render_terminal(text)
    lines = drawn.splitlines()
    assert len(lines) > 20 and {"█", "▀", "▄"} & set(drawn)
    with pytest.raises(InvalidInput, match="cannot draw this text"):
        render_png("x" * 8000)


def test_the_web_apps_receipt_reads_at_the_door() -> None:
    # what a buyer's screen shows (web/receipts.py), photographed at the door
    from pervasive.web.receipts import receipt_png

    receipt = a_receipt(11)
    assert read_barcode_text(photographed(receipt_png(receipt), angle=-5.0)) == receipt.encode()
