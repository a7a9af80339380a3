"""Photos re-encoded before they are kept: EXIF (with GPS) gone, anything else refused kindly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from conversation.messages import UnusablePhoto
from storage.files import LocalFileStore
from storage.photos import MAX_BYTES, THUMB_SIDE, PhotoKeeper, clean, thumbnail_key
from tests.photo_samples import encoded, jpeg_with_gps, pixel_bomb


def test_a_jpeg_loses_its_exif_and_gps_and_is_turned_upright() -> None:
    source = jpeg_with_gps((800, 600))
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(0x8825)  # the sample has a position
    photo = clean(source)
    kept = Image.open(io.BytesIO(photo.full))
    assert kept.format == "JPEG"
    assert not kept.getexif()
    assert b"Exif" not in photo.full and b"Citizen Phone" not in photo.full
    assert kept.size == (600, 800)  # the Orientation tag was applied, then dropped
    thumb = Image.open(io.BytesIO(photo.thumb))
    assert max(thumb.size) == THUMB_SIDE and not thumb.getexif()


@pytest.mark.parametrize(
    ("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "RGB"), ("WEBP", "RGB"), ("HEIF", "RGB")]
)
def test_png_webp_and_heic_become_jpeg(fmt: str, mode: str) -> None:
    photo = clean(encoded(fmt, (64, 48), mode))
    kept = Image.open(io.BytesIO(photo.full))
    assert (kept.format, kept.mode, kept.size) == ("JPEG", "RGB", (64, 48))


@pytest.mark.parametrize(
    "data",
    [b"hello, this is a letter", b"%PDF-1.4 not a photo", encoded("GIF"), encoded("BMP")],
    ids=["text", "pdf", "gif", "bmp"],
)
def test_what_is_not_a_photo_is_refused_with_a_sentence(data: bytes) -> None:
    with pytest.raises(UnusablePhoto, match="JPG、PNG 或 WebP"):
        clean(data)


def test_a_damaged_photo_is_refused() -> None:
    with pytest.raises(UnusablePhoto, match="损坏"):
        clean(jpeg_with_gps()[:2000])


def test_too_big_and_too_many_pixels_are_refused() -> None:
    with pytest.raises(UnusablePhoto, match="太大"):
        clean(b"\xff\xd8" + b"0" * MAX_BYTES)
    bomb = pixel_bomb()
    assert len(bomb) < 100_000
    with pytest.raises(UnusablePhoto, match="像素"):
        clean(bomb)


async def test_a_kept_photo_and_its_thumbnail_are_in_the_store(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    key = await PhotoKeeper(store).keep(jpeg_with_gps())
    assert key.startswith("photos/") and key.endswith(".jpg")
    full, thumb = await store.get(key), await store.get(thumbnail_key(key))
    assert full is not None and thumb is not None
    assert full.content_type == thumb.content_type == "image/jpeg"
    assert len(thumb.data) < len(full.data)
    with pytest.raises(UnusablePhoto):
        await PhotoKeeper(store).keep(b"not a photo")
