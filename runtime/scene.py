"""Scenes too large to hold: GeoTIFF and JPEG 2000 read window by window through rasterio.

``Detector.scan`` needs from a scene only its shape and 2-D slices
(``scene[y0:y1, x0:x1]``): tiles, the isolation check's windows and the
downlink's chips. A ``WindowedScene`` gives exactly that, reading each slice
from the file when asked, so a 20,000 x 20,000 px product is scanned with
memory for a batch of tiles, the stride/4 heatmap and one overview. A scene
at another GSD than the model's is resampled window by window
(``ResampledScene``), each window read with a margin so the antialiasing
filter sees what it would see in the whole scene.

rasterio is imported on first use (``pip install "shipcam[geo]"``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from shipcam.errors import ImageError
from shipcam.runtime.resize import block_mean, resize_antialiased, resize_bilinear

__all__ = ["WindowedScene", "ArrayScene", "RasterScene", "ResampledScene", "open_raster", "WINDOWED_SUFFIXES"]

WINDOWED_SUFFIXES = (".tif", ".tiff", ".jp2")
# GDAL caches decoded blocks up to 5% of the machine's RAM by default (1.2 GB on 24 GB), which a 400 Mpx
# scene fills. Tiles go row by row, so a band of blocks across the scene is enough.
GDAL_CACHE_MB = 64


class WindowedScene:
    """An (H, W, 3) uint8 scene that reads what is sliced from it. Subclasses implement ``_read``."""

    shape: tuple[int, int, int]
    ndim = 3
    dtype = np.dtype(np.uint8)

    def __getitem__(self, key) -> np.ndarray:
        if not (
            isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) and k.step in (None, 1) for k in key)
        ):
            raise TypeError(f"a windowed scene takes two unit-step slices, scene[y0:y1, x0:x1]; received {key!r}")
        H, W = self.shape[:2]
        y0, y1, _ = key[0].indices(H)
        x0, x1, _ = key[1].indices(W)
        return self._read(y0, max(y0, y1), x0, max(x0, x1))

    def _read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        raise NotImplementedError

    def overview(self, h: int, w: int) -> np.ndarray:
        """The whole scene at (h, w) px, averaged (for an overlay)."""
        raise NotImplementedError


class ArrayScene(WindowedScene):
    """A decoded (H, W, 3) uint8 array seen through windows: resampled window by window, never whole."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = array.shape

    def _read(self, y0, y1, x0, x1):
        return self.array[y0:y1, x0:x1]

    def overview(self, h, w):
        n = max(1, min(self.shape[0] // h, self.shape[1] // w))
        return resize_bilinear(block_mean(self.array, n), h, w).round().astype(np.uint8)


class RasterScene(WindowedScene):
    """A GeoTIFF / JP2 opened with rasterio; bands 1-3 as RGB (one band: grey replicated).

    8-bit files are read as they are; 16-bit ones are scaled to 8 bits from
    0..4095 when the file says 12 bits (NBITS) and from 0..65535 otherwise.
    """

    def __init__(self, path: str | os.PathLike, cache_mb: int = GDAL_CACHE_MB):
        try:
            import rasterio
        except ImportError:
            raise ImportError(
                'scanning GeoTIFF/JP2 window by window needs rasterio: pip install "shipcam[geo]"'
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise ImageError(f"{self.path}: no such file")
        self._env = rasterio.Env(GDAL_CACHEMAX=int(cache_mb) * 2**20)
        self._env.__enter__()
        try:
            self._ds = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as e:
            self._env.__exit__(None, None, None)
            raise ImageError(f"{self.path}: cannot open as a raster ({e})") from None
        ds = self._ds
        if ds.count not in (1, 3, 4):
            raise ImageError(
                f"{self.path}: {ds.count} bands; expected 1 (grey), 3 (RGB) or 4 (RGB + alpha/NIR, the 4th dropped)"
            )
        if ds.dtypes[0] not in ("uint8", "uint16"):
            raise ImageError(f"{self.path}: {ds.dtypes[0]} pixels are not supported; expected 8- or 16-bit")
        self._bands = [1, 1, 1] if ds.count == 1 else [1, 2, 3]
        # a band tag in GDAL
        bits = int(ds.tags(1, ns="IMAGE_STRUCTURE").get("NBITS", 16)) if ds.dtypes[0] == "uint16" else 8
        self._scale = None if bits == 8 else 255.0 / (4095.0 if bits <= 12 else 65535.0)
        self.shape = (ds.height, ds.width, 3)
        if ds.height == 0 or ds.width == 0:
            raise ImageError(f"{self.path}: image has zero size ({ds.width}x{ds.height})")
        self.transform, self.crs = ds.transform, ds.crs

    def _to8(self, a: np.ndarray) -> np.ndarray:
        a = np.moveaxis(a, 0, -1)
        if self._scale is not None:
            a = np.clip(a.astype(np.float32) * np.float32(self._scale), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(a)

    def _read(self, y0, y1, x0, x1):
        from rasterio.windows import Window

        try:
            return self._to8(self._ds.read(self._bands, window=Window(x0, y0, x1 - x0, y1 - y0)))
        except Exception as e:  # rasterio raises its own errors for damaged blocks; name the file and window
            if type(e).__module__.split(".")[0] != "rasterio":
                raise
            raise ImageError(f"{self.path}: cannot read window x {x0}..{x1}, y {y0}..{y1} ({e})") from None

    def overview(self, h, w):
        from rasterio.enums import Resampling

        return self._to8(self._ds.read(self._bands, out_shape=(3, h, w), resampling=Resampling.average))

    def close(self) -> None:
        self._ds.close()
        self._env.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ResampledScene(WindowedScene):
    """``source`` seen ``factor`` times larger (antialiased like ``resize_antialiased``, float32), one window at a time.

    Each window is read from the source with a margin of the filter's reach,
    resampled, and cut; pixel centres stay aligned to within rounding of the
    window's origin (a fraction of a pixel), so detections match the
    whole-scene resample to about a pixel.
    """

    def __init__(self, source: WindowedScene, factor: float):
        if not factor > 0:
            raise ValueError(f"resample factor must be positive, received {factor}")
        self.source, self.factor = source, float(factor)
        self.dtype = np.dtype(np.float32)  # as resize_antialiased gives the in-memory scan
        H, W = source.shape[:2]
        self.shape = (max(1, round(H * factor)), max(1, round(W * factor)), 3)
        self._margin = int(math.ceil(2 / min(factor, 1.0))) + 2  # source pixels the triangle filter reaches

    def _read(self, y0, y1, x0, x1):
        f, m = self.factor, self._margin
        H, W = self.source.shape[:2]
        sy0, sx0 = max(0, int(math.floor(y0 / f)) - m), max(0, int(math.floor(x0 / f)) - m)
        sy1, sx1 = min(H, int(math.ceil(y1 / f)) + m), min(W, int(math.ceil(x1 / f)) + m)
        src = self.source[sy0:sy1, sx0:sx1]
        big = resize_antialiased(src, max(1, round((sy1 - sy0) * f)), max(1, round((sx1 - sx0) * f)))
        oy, ox = round(sy0 * f), round(sx0 * f)
        out = big[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        if out.shape[:2] != (y1 - y0, x1 - x0):  # rounding at the far edge: repeat the last row/column
            out = np.pad(out, ((0, y1 - y0 - out.shape[0]), (0, x1 - x0 - out.shape[1]), (0, 0)), mode="edge")
        return out

    def overview(self, h, w):
        return self.source.overview(h, w)


def open_raster(path: str | os.PathLike) -> RasterScene:
    """A GeoTIFF / JP2 for window-by-window reading (raises ``ImageError`` naming the file)."""
    return RasterScene(path)
