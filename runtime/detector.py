"""``Detector``: an exported shipcam file -> probability, CAM and boxes per image.

One forward pass gives both outputs; the CAM is the dense head applied to the
feature map before pooling (``features @ w + b``), so explaining costs a
matrix-vector product, not a backward pass.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from shipcam.errors import ImageError, ModelFileError
from shipcam.runtime.boxes import Box, boxes_from_cam, boxes_from_heatmap
from shipcam.runtime.cam import class_activation_map, resize_bilinear
from shipcam.runtime.engines import Engine, open_engine
from shipcam.runtime.image import check_array, read_image
from shipcam.runtime.metrics import sigmoid

__all__ = ["Detector", "Prediction", "ScanResult"]


@dataclass
class Prediction:
    probability: float
    logit: float
    cam: np.ndarray  # (h, w) at feature resolution, logit units
    image_size: tuple[int, int]  # (H, W) of the image explained
    boxes: list[Box]
    timings_ms: dict[str, float]
    is_ship: bool
    _cam_image: np.ndarray | None = field(default=None, repr=False)

    @property
    def cam_image(self) -> np.ndarray:
        """The CAM upsampled (bilinear) to the image, logit units; computed on first use."""
        if self._cam_image is None:
            self._cam_image = resize_bilinear(self.cam, *self.image_size)
        return self._cam_image

    def to_dict(self) -> dict:
        """JSON-friendly summary (maps left out)."""
        return {
            "probability": round(self.probability, 6),
            "logit": round(self.logit, 6),
            "is_ship": self.is_ship,
            "boxes": [b.to_dict() for b in self.boxes],
            "cam_shape": list(self.cam.shape),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


@dataclass
class ScanResult:
    boxes: list[Box]  # scene pixel coordinates
    heatmap: np.ndarray  # (ceil(H / cell), ceil(W / cell)) max CAM over tiles, logit units
    cell: int  # scene pixels per heatmap cell
    tiles: int
    positive_tiles: int
    seconds: float
    tile_probabilities: list[tuple[int, int, float]] = field(default_factory=list)  # (x, y, p)


class Detector:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.metadata = engine.metadata
        m = self.metadata
        self._scale, self._offset = np.float32(m.input_scale), np.float32(m.input_offset)
        self._w, self._b = m.cam_weights.astype(np.float32), np.float32(m.cam_bias)
        self.threshold = float(m.threshold)

    # --- construction -----------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike, engine: str = "auto", threads: int | None = None, manifest: str | os.PathLike | None = None) -> "Detector":
        """Open an exported ``.onnx`` / ``.tflite`` file; with ``manifest``, refuse it unless its sha256 matches."""
        path = Path(path)
        if manifest is not None:
            _check_manifest(path, Path(manifest))
        return cls(open_engine(path, engine, threads))

    @property
    def threads(self) -> int:
        return self.engine.threads

    # --- prediction -------------------------------------------------------------

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8/float RGB in 0..255 -> the model's input, exactly as training did."""
        return images.astype(np.float32, copy=False) * self._scale + self._offset

    def predict(self, image_or_batch, boxes: bool = True) -> Prediction | list[Prediction]:
        """One image (H, W, 3), a batch (N, H, W, 3), a path, or a list of those.

        Returns one ``Prediction`` for a single image, a list otherwise.
        """
        single, images = self._as_images(image_or_batch)
        # Same-size images go through the engine together.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        out: list[Prediction | None] = [None] * len(images)
        for idx in groups.values():
            for i, pred in zip(idx, self._predict_same_size(np.stack([images[i] for i in idx]), boxes)):
                out[i] = pred
        results = [p for p in out if p is not None]
        return results[0] if single else results

    def _predict_same_size(self, batch: np.ndarray, with_boxes: bool) -> list[Prediction]:
        n, H, W = batch.shape[:3]
        t0 = time.perf_counter()
        x = self.preprocess(batch)
        fixed = self.engine.fixed_size
        if fixed is not None and (H, W) != fixed:
            x = np.stack([resize_bilinear(im, *fixed) for im in x])
        t1 = time.perf_counter()
        out = self.engine.run(x)
        t2 = time.perf_counter()
        cams = class_activation_map(out["features"], self._w, self._b)
        logits = out["logits"][:, 0]
        cam_shared_ms = (time.perf_counter() - t2) * 1e3 / n
        preds = []
        for i in range(n):
            c0 = time.perf_counter()
            p = float(sigmoid(logits[i]))
            found = boxes_from_cam(cams[i], (H, W)) if with_boxes and p >= self.threshold else []
            c1 = time.perf_counter()
            preds.append(
                Prediction(
                    probability=p,
                    logit=float(logits[i]),
                    cam=cams[i],
                    image_size=(H, W),
                    boxes=found,
                    is_ship=p >= self.threshold,
                    timings_ms={
                        "preprocess": (t1 - t0) * 1e3 / n,
                        "inference": (t2 - t1) * 1e3 / n,
                        "cam": cam_shared_ms + (c1 - c0) * 1e3,  # projection, upsampling and boxes
                    },
                )
            )
        return preds

    def _as_images(self, obj) -> tuple[bool, list[np.ndarray]]:
        if isinstance(obj, (str, os.PathLike)):
            return True, [read_image(obj)]
        if isinstance(obj, np.ndarray):
            if obj.ndim == 3:
                return True, [check_array(obj)]
            if obj.ndim == 4:
                return False, [check_array(im, f"image {i}") for i, im in enumerate(obj)]
            raise ImageError(f"expected (H, W, 3) or (N, H, W, 3), received shape {obj.shape}")
        if isinstance(obj, Sequence):
            ims = []
            for i, o in enumerate(obj):
                if isinstance(o, (str, os.PathLike)):
                    ims.append(read_image(o))
                elif isinstance(o, np.ndarray) and o.ndim == 3:
                    ims.append(check_array(o, f"image {i}"))
                else:
                    raise ImageError(f"item {i}: expected a path or an (H, W, 3) array, received {type(o).__name__}")
            return False, ims
        raise TypeError(f"predict() takes an image array, a batch, a path or a list; received {type(obj).__name__}")

    # --- whole scenes ------------------------------------------------------------

    def scan(self, scene, tile: int | None = None, overlap: float = 0.25, batch: int = 8, progress: bool = False) -> ScanResult:
        """Detect ships in an image far larger than the training size.

        Overlapping square tiles (default: twice the training size) run in
        batches; each tile's CAM goes into a scene heatmap kept at a cell of
        ``stride / 4`` pixels (so memory stays bounded: a 20,000 px scene needs
        a 2,500 x 2,500 float map). Boxes come from the stitched heatmap with an
        absolute rule: connected regions whose CAM clears the decision threshold
        in logit units, so tile seams and per-tile normalisation play no part.
        """
        from shipcam._progress import progress as bar

        if isinstance(scene, (str, os.PathLike)):
            scene = read_image(scene)
        scene = check_array(scene, "scene")
        H, W = scene.shape[:2]
        m = self.metadata
        tile = int(tile or (self.engine.fixed_size or (2 * (m.train_size or 112),))[0])
        tile = min(tile, H, W) if self.engine.fixed_size is None else tile
        if tile < 32:
            raise ImageError(f"scene {W}x{H} is smaller than the smallest tile (32 px)")
        if not 0.0 <= overlap < 0.9:
            raise ValueError(f"overlap must be in [0, 0.9), received {overlap}")
        step = max(1, int(round(tile * (1 - overlap))))
        ys = _starts(H, tile, step)
        xs = _starts(W, tile, step)
        cell = max(1, m.feature_stride // 4)
        heat = np.full((-(-H // cell), -(-W // cell)), -np.inf, np.float32)
        positions = [(x, y) for y in ys for x in xs]
        tile_probs = []
        t0 = time.perf_counter()
        chunks = [positions[i : i + batch] for i in range(0, len(positions), batch)]
        for chunk in bar(chunks, total=len(chunks), desc="scanning tiles", enabled=progress):
            crops = np.stack([_crop(scene, x, y, tile) for x, y in chunk])
            for (x, y), pred in zip(chunk, self._predict_same_size(crops, with_boxes=False)):
                tile_probs.append((x, y, pred.probability))
                h_cells, w_cells = -(-tile // cell), -(-tile // cell)
                small = resize_bilinear(pred.cam, h_cells, w_cells)
                cy, cx = y // cell, x // cell
                region = heat[cy : cy + h_cells, cx : cx + w_cells]
                np.maximum(region, small[: region.shape[0], : region.shape[1]], out=region)
        heat[~np.isfinite(heat)] = float(np.min(heat[np.isfinite(heat)])) if np.isfinite(heat).any() else 0.0
        threshold_logit = float(np.log(self.threshold / (1 - self.threshold)))
        return ScanResult(
            boxes=boxes_from_heatmap(heat, cell, (H, W), threshold_logit),
            heatmap=heat,
            cell=cell,
            tiles=len(positions),
            positive_tiles=sum(p >= self.threshold for _, _, p in tile_probs),
            seconds=time.perf_counter() - t0,
            tile_probabilities=tile_probs,
        )


def _starts(n: int, tile: int, step: int) -> list[int]:
    """Tile origins covering 0..n with the last tile flush with the edge."""
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile + 1, step))
    if starts[-1] != n - tile:
        starts.append(n - tile)
    return starts


def _crop(scene: np.ndarray, x: int, y: int, tile: int) -> np.ndarray:
    crop = scene[y : y + tile, x : x + tile]
    if crop.shape[:2] != (tile, tile):  # scene smaller than a fixed tile: pad with edge pixels
        crop = np.pad(crop, ((0, tile - crop.shape[0]), (0, tile - crop.shape[1]), (0, 0)), mode="edge")
    return crop


def _check_manifest(path: Path, manifest: Path) -> None:
    import hashlib

    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelFileError(f"{manifest}: not a shipcam manifest ({e})") from None
    entry = next((e for e in files if e["file"] == path.name), None)
    if entry is None:
        raise ModelFileError(f"{path.name} is not listed in {manifest}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ModelFileError(f"{path}: sha256 does not match {manifest}; refusing a file that changed since export")
