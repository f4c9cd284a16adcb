"""Reading images into (H, W, 3) uint8 RGB arrays, with errors that name the file.

Policies (the same for training and inference, so the model sees one thing):

- grayscale is replicated to RGB and palette images expanded, silently;
- RGBA / LA: the alpha channel is dropped with a warning (satellite PNGs use
  it for no-data); transparent pixels keep their colour values;
- 16-bit single-channel images are scaled linearly to 0..255 from 0..4095 when
  their maximum fits in 12 bits (most sensors) and from 0..65535 otherwise,
  with a warning naming the scale;
- images larger than ``max_pixels`` are refused (decompression-bomb guard).

Pillow is imported on first use: the runtime does not need it for arrays.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from shipcam.errors import ImageError

__all__ = ["read_image", "image_size", "check_array", "IMAGE_SUFFIXES", "MAX_PIXELS"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
MAX_PIXELS = 40_000 * 40_000  # a 12 m/px ... 0.3 m/px scene tile; beyond this is a bomb


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError('reading image files needs Pillow: pip install "shipcam[image]"') from None
    return Image


@contextlib.contextmanager
def _opened(path: str | os.PathLike, max_pixels: int) -> Iterator:
    """Pillow's lazy image of ``path``; every way of failing to open or decode it becomes one ``ImageError``."""
    Image = _pil()
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    _raise_pillow_limit(Image, max_pixels)
    try:
        with Image.open(path) as im:
            yield im
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's ways of saying "corrupt"
        raise ImageError(f"{path}: cannot decode image ({e})") from None


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` fully into an (H, W, 3) uint8 array or raise ``ImageError``."""
    with _opened(path, max_pixels) as im:
        w, h = im.size
        if w == 0 or h == 0:
            raise ImageError(f"{path}: image has zero size ({w}x{h})")
        if w * h > max_pixels:
            raise ImageError(f"{path}: {w}x{h} pixels exceeds the limit of {max_pixels} (decompression-bomb guard)")
        im.load()  # decode now: truncated files fail here, not later
        return _to_rgb8(im, Path(path))


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    with _opened(path, MAX_PIXELS) as im:
        return im.size


_limit_lock = threading.Lock()


def _raise_pillow_limit(Image, max_pixels: int) -> None:
    """Let Pillow open up to ``max_pixels``; our own check above refuses larger images before decoding.

    The limit is Pillow's global. Setting it per call and restoring it raced
    between threads sharing a Detector; raising it once, monotonically,
    under a lock cannot.
    """
    with _limit_lock:
        if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _to_rgb8(im, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 4095.0 if a.max() <= 4095 else 65535.0
        warnings.warn(f"{path}: {mode} image scaled to 8 bits from 0..{top:.0f}", stacklevel=3)
        a = np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported; save as 8- or 16-bit")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        warnings.warn(f"{path}: {mode} image, alpha channel dropped", stacklevel=3)
    if mode == "CMYK":
        raise ImageError(f"{path}: CMYK images are not supported; convert to RGB")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def check_array(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate an in-memory image: (H, W, 3), finite; returns it as float32 or uint8 unchanged."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ImageError(f"{name}: expected an (H, W, 3) RGB array, received shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageError(f"{name}: image has zero size {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ImageError(f"{name}: array contains NaN or inf")
    if a.dtype.kind not in "uif":
        raise ImageError(f"{name}: unsupported dtype {a.dtype}")
    return a
