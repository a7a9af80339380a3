"""Citizens' photos made safe to keep and show: decoded and re-encoded with Pillow (EXIF and its
GPS position dropped, anything that is not a picture refused), with a thumbnail for the desk."""

from __future__ import annotations

import asyncio
import io
import secrets
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from conversation.messages import UnusablePhoto

from .files import FileStore, thumbnail_key
from .models import utcnow
from .uow import Units
from .uploads import record

__all__ = ["PhotoKeeper", "clean", "thumbnail_key"]

try:  # HEIC/HEIF (iPhone photos) through the pillow-heif plugin, when it is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - the plugin is a declared dependency
    HEIF = False

FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO", *(("HEIF",) if HEIF else ())})
# A phone photo is 2-8 MB; a bigger upload is refused before it is read whole.
MAX_BYTES = 10 * 1024 * 1024
# Decoding is bounded by pixels too: a small file can claim a huge canvas (a "pixel bomb").
MAX_PIXELS = 50_000_000
LONGEST_SIDE = 2560  # enough to read a sign or a meter; keeps each kept photo under ~1 MB
THUMB_SIDE = 320
QUALITY = 85
TOO_MANY_PIXELS = "照片的像素太多了，请发送普通手机拍的照片。"


@dataclass(frozen=True)
class CleanPhoto:
    full: bytes
    thumb: bytes
    width: int
    height: int


def clean(data: bytes) -> CleanPhoto:
    """The photo as a fresh JPEG (and its thumbnail), or UnusablePhoto with a sentence."""
    if len(data) > MAX_BYTES:
        raise UnusablePhoto(f"照片太大了，请发送 {MAX_BYTES // 1024 // 1024} MB 以内的照片。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise UnusablePhoto(_not_supported(image.format))
            if image.width * image.height > MAX_PIXELS:
                raise UnusablePhoto(TOO_MANY_PIXELS)
            image.load()
    except UnusablePhoto:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnusablePhoto(TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise UnusablePhoto(_not_an_image()) from None
    except (OSError, ValueError, SyntaxError):  # truncated or damaged files
        raise UnusablePhoto("这张照片已损坏，打不开，请重新拍一张再发送。") from None
    # Turn it the way the camera held it, then keep only the pixels: no EXIF (so no GPS
    # position, no phone model), no ICC tricks, no comments.
    upright = _flat_rgb(ImageOps.exif_transpose(image))
    upright.thumbnail((LONGEST_SIDE, LONGEST_SIDE))
    full = _jpeg(upright)
    small = upright.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return CleanPhoto(full, _jpeg(small), upright.width, upright.height)


def _not_an_image() -> str:
    return "这不是一张能打开的照片，请发送 JPG、PNG 或 WebP 格式的照片。"


def _not_supported(found: str | None) -> str:
    if found in ("HEIF", "AVIF") and not HEIF:
        return "暂时打不开 HEIC 格式的照片，请在手机上选择以 JPG 格式发送。"
    return _not_an_image()


def _flat_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


class PhotoKeeper:
    """Cleans a photo and keeps it in the file store; its key is what the case refers to.

    With `units`, each photo is written in the ledger of uploads (storage/uploads.py) before its
    files, so that one no case takes is swept later (bot/backoffice/photo_sweep.py)."""

    def __init__(self, files: FileStore, units: Units | None = None) -> None:
        self.files = files
        self.units = units
        # Re-encoding is CPU work: a few at a time, off the event loop.
        self._workers = asyncio.Semaphore(2)

    async def keep(self, data: bytes, conversation: str = "") -> str:
        """The new photo's key; UnusablePhoto (with a sentence for the citizen) if it is not one.

        `conversation` (channel:sender) is the conversation that holds it until a case does."""
        async with self._workers:
            photo = await asyncio.to_thread(clean, data)
        key = f"photos/{secrets.token_urlsafe(18)}.jpg"
        if self.units is not None:
            async with self.units() as uow:
                await record(uow.session, key, conversation, utcnow())
                await uow.commit()
        await self.files.put(thumbnail_key(key), photo.thumb, "image/jpeg")
        await self.files.put(key, photo.full, "image/jpeg")
        return key
