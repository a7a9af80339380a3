"""Photos made for the tests: a JPEG carrying a GPS position, PNG, WebP, HEIC, and bad files."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (800, 600)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "Citizen Phone X"  # Model
    exif[0x0112] = 6  # Orientation: turned 90°, to be applied before EXIF is dropped
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (36.0, 4.0, 30.0), 3: "E", 4: (120.0, 22.0, 5.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def encoded(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    image = Image.new(mode, size, (10, 120, 200, 128)[: len(mode)])
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def pixel_bomb() -> bytes:
    """A few kilobytes that claim 100 million pixels."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    return out.getvalue()
