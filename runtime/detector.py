"""``Detector``: an exported shipcam file -> probability, CAM and boxes per image.

One forward pass gives both outputs; the CAM is the dense head applied to the
feature map before pooling (``features @ w + b``), so explaining costs a
matrix-vector product, not a backward pass. Whole scenes (``Detector.scan``)
are tiled, stitched and confirmed in ``runtime.scan``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from shipcam.errors import ImageError, ShipcamError
from shipcam.runtime.boxes import Box
from shipcam.runtime.cam import class_activation_map
from shipcam.runtime.detections import Detection, DetectionRule, detect
from shipcam.runtime.engines import Engine, open_engine
from shipcam.runtime.image import check_array, read_image
from shipcam.runtime.manifest import check_against_manifest
from shipcam.runtime.maths import sigmoid
from shipcam.runtime.resize import resize_antialiased, resize_bilinear
from shipcam.runtime.scan import ScanResult, scan_scene
from shipcam.runtime.views import Views, apply_view, undo_view

__all__ = ["Detector", "Prediction", "ScanResult", "DEFAULT_GSD"]

DEFAULT_GSD = 3.0  # metres/pixel assumed for files exported before the GSD was recorded (PlanetScope)


@dataclass
class Prediction:
    probability: float
    logit: float
    cam: np.ndarray  # (h, w) at feature resolution, logit units
    image_size: tuple[int, int]  # (H, W) of the image explained
    detections: list[Detection]
    timings_ms: dict[str, float]
    is_ship: bool
    _cam_image: np.ndarray | None = field(default=None, repr=False)

    @property
    def cam_image(self) -> np.ndarray:
        """The CAM upsampled (bilinear) to the image, logit units; computed on first use."""
        if self._cam_image is None:
            self._cam_image = resize_bilinear(self.cam, *self.image_size)
        return self._cam_image

    @property
    def boxes(self) -> list[Box]:
        return [d.box for d in self.detections]

    def to_dict(self) -> dict:
        """JSON-friendly summary (maps left out)."""
        return {
            "probability": round(self.probability, 6),
            "logit": round(self.logit, 6),
            "is_ship": self.is_ship,
            "boxes": [d.to_dict() for d in self.detections],
            "cam_shape": list(self.cam.shape),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


class Detector:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.metadata = engine.metadata
        m = self.metadata
        self._scale, self._offset = np.float32(m.input_scale), np.float32(m.input_offset)
        self._w, self._b = m.cam_weights.astype(np.float32), np.float32(m.cam_bias)
        self.rule = DetectionRule(threshold=float(m.threshold))
        # the model's nominal metres/pixel: images of unknown GSD are taken as this
        self.gsd = float(m.gsd) if m.gsd else DEFAULT_GSD
        self.gsd_range = m.gsd_bounds or (self.gsd, self.gsd)  # images inside it run as they are

    def working_gsd(self, gsd: float | None) -> float:
        """The metres/pixel an image of ``gsd`` is run at: its own inside the model's range, else the nearer bound.

        Within 1% of a bound counts as inside: a 1% size change is below what the model can tell.
        """
        if gsd is None:
            return self.gsd
        if not gsd > 0:
            raise ValueError(f"gsd must be positive metres/pixel, received {gsd}")
        lo, hi = self.gsd_range
        return gsd if lo * 0.99 <= gsd <= hi * 1.01 else min(max(gsd, lo), hi)

    @property
    def threshold(self) -> float:
        """The decision threshold on the probability (the rule's; set ``rule`` to change it)."""
        return self.rule.threshold

    # --- construction -----------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        engine: str = "auto",
        threads: int | None = None,
        manifest: str | os.PathLike | None = None,
    ) -> "Detector":
        """Open an exported ``.onnx`` / ``.tflite`` file; with ``manifest``, refuse it unless its sha256 matches."""
        path = Path(path)
        if manifest is not None:
            check_against_manifest(path, manifest)
        return cls(open_engine(path, engine, threads))

    @property
    def threads(self) -> int:
        return self.engine.threads

    # --- prediction -------------------------------------------------------------

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8/float RGB in 0..255 -> the model's input, exactly as training did."""
        return images.astype(np.float32, copy=False) * self._scale + self._offset

    def predict(self, image_or_batch, boxes: bool = True, gsd: float | None = None) -> Prediction | list[Prediction]:
        """One image (H, W, 3), a batch (N, H, W, 3), a path, or a list of those.

        Returns one ``Prediction`` for a single image, a list otherwise. With
        ``rule.views`` each image's logit and CAM are averaged over its views.
        With ``gsd`` (the images' metres/pixel) outside the model's range, each
        image is first resampled to the nearer bound, as ``scan`` does; boxes
        and ``cam_image`` come back in the image's own pixels.
        """
        single, images = self._as_images(image_or_batch)
        work = self.working_gsd(gsd)
        factor = 1.0 if gsd is None else gsd / work
        if factor != 1.0:
            sizes = [im.shape[:2] for im in images]
            images = [
                resize_antialiased(im, max(1, round(im.shape[0] * factor)), max(1, round(im.shape[1] * factor)))
                for im in images
            ]
        # Same-size images go through the engine together.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.shape[:2], []).append(i)
        out: list[Prediction | None] = [None] * len(images)
        for idx in groups.values():
            for i, pred in zip(idx, self._predict_same_size(np.stack([images[i] for i in idx]), boxes, gsd=work)):
                out[i] = pred
        results = [p for p in out if p is not None]
        if factor != 1.0:
            for p, size in zip(results, sizes):
                p.detections = [d.scaled(1.0 / factor) for d in p.detections]
                p.image_size = size
        return results[0] if single else results

    def _predict_same_size(
        self, batch: np.ndarray, with_boxes: bool, views: Views | None = None, gsd: float | None = None
    ) -> list[Prediction]:
        """Same-size images (at ``gsd`` m/px, default the model's) through the engine, once per view of ``views``
        (default ``rule.views``), averaged in logit units.
        """
        views = self.rule.views if views is None else views
        transforms = views.transforms
        if len(transforms) == 1:
            return self._predict_view(batch, with_boxes, gsd)
        n, H, W = batch.shape[:3]
        logits, cams, timings = self._view_sums(batch, transforms)
        out = []
        for i in range(n):
            c0 = time.perf_counter()
            lg, cam = float(logits[i] / len(transforms)), cams[i] / np.float32(len(transforms))
            p = float(sigmoid(lg))
            found = self.detect_in_cam(cam, (H, W), gsd) if with_boxes and p >= self.threshold else []
            timings[i]["cam"] += (time.perf_counter() - c0) * 1e3
            out.append(
                Prediction(
                    probability=p,
                    logit=lg,
                    cam=cam,
                    image_size=(H, W),
                    detections=found,
                    timings_ms=timings[i],
                    is_ship=p >= self.threshold,
                )
            )
        return out

    def _view_sums(self, batch: np.ndarray, transforms) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]]]:
        """Sums over ``transforms`` ((quarter turns, mirrored) pairs) of each image's logit and CAM, turned back, and of
        its timings.
        """
        fixed = self.engine.fixed_size
        if any(k % 2 for k, _ in transforms) and fixed is not None and fixed[0] != fixed[1]:
            raise ShipcamError(
                "views rot4 and d4 turn images by 90 degrees, which needs a square input; this model's fixed input is "
                f"{fixed[0]}x{fixed[1]}: use views 'flip' or 'none' (views {self.rule.views.value!r}, confirm_views "
                f"{self.rule.confirm_views.value!r})"
            )
        n = len(batch)
        logits, cams = np.zeros(n), None
        timings = [dict.fromkeys(("preprocess", "inference", "cam"), 0.0) for _ in range(n)]
        for k, mirrored in transforms:
            preds = self._predict_view(np.ascontiguousarray(apply_view(batch, k, mirrored)), with_boxes=False)
            cam = undo_view(np.stack([p.cam for p in preds]), k, mirrored)
            cams = cam if cams is None else cams + cam
            logits += [p.logit for p in preds]
            for t, p in zip(timings, preds):
                for key, ms in p.timings_ms.items():
                    t[key] += ms
        return logits, cams, timings

    def _predict_view(self, batch: np.ndarray, with_boxes: bool, gsd: float | None = None) -> list[Prediction]:
        n, H, W = batch.shape[:3]
        least = self.metadata.feature_stride
        if self.engine.fixed_size is None and (H < least or W < least):
            # Refused, not padded: a ship in a few pixels is below what the model resolves.
            raise ImageError(f"image is {W}x{H} px; this model needs at least {least}x{least} (its feature stride)")
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
            found = self.detect_in_cam(cams[i], (H, W), gsd) if with_boxes and p >= self.threshold else []
            c1 = time.perf_counter()
            preds.append(
                Prediction(
                    probability=p,
                    logit=float(logits[i]),
                    cam=cams[i],
                    image_size=(H, W),
                    detections=found,
                    is_ship=p >= self.threshold,
                    timings_ms={
                        "preprocess": (t1 - t0) * 1e3 / n,
                        "inference": (t2 - t1) * 1e3 / n,
                        "cam": cam_shared_ms + (c1 - c0) * 1e3,  # projection, upsampling and boxes
                    },
                )
            )
        return preds

    def detect_in_cam(self, cam: np.ndarray, image_size: tuple[int, int], gsd: float | None = None) -> list[Detection]:
        """The scan's peak rule on one image's CAM (upsampled 4x: a quarter-cell grid), the image at ``gsd`` m/px
        (default the model's).

        An image called a ship always gets at least its strongest peak, even
        when no single cell clears the threshold (max pooling can reach it
        from several channels peaking at different places).
        """
        H, W = image_size
        gsd = gsd or self.gsd
        gh, gw = min(H, cam.shape[0] * 4), min(W, cam.shape[1] * 4)
        grid = resize_bilinear(cam, gh, gw)
        cell = (H / gh, W / gw)
        found = detect(grid, cell, gsd, self.rule, (H, W))
        return found or detect(grid, cell, gsd, self.rule, (H, W), min_score=float(grid.max()))[:1]

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

    def scan(
        self,
        scene,
        tile: int | None = None,
        overlap: float = 0.25,
        batch: int = 8,
        progress: bool = False,
        gsd: float | None = None,
        min_score: float | None = None,
    ) -> ScanResult:
        """Detect ships in an image far larger than the training size.

        ``gsd`` is the scene's metres/pixel: inside the model's GSD range the
        scene runs as it is; outside, it is first resampled to the nearer
        bound, so the model sees ships at sizes it learned. Overlapping square tiles (default: twice the
        training size) run in batches; each tile's CAM goes into a scene
        heatmap kept at a cell of ``stride / 4`` pixels (memory stays
        bounded: a 20,000 px scene needs a 2,500 x 2,500 float map).
        Detections are the heatmap's peaks (``detections.detect``), in scene
        pixels; ``min_score`` (logit units) overrides the threshold, e.g. to
        sweep a precision-recall curve from one scan. ``rule.views`` averages
        each tile's CAM over its turned and mirrored views (``runtime.views``).
        ``rule.confirm_views`` then runs its other views on a crop centred on
        each detection that passed the isolation check and lies within
        ``scan.CONFIRM_MARGIN`` logits of the threshold, averaged with the
        first pass there (``heatmap`` holds that map in the middle of each
        crop), and a detection stays if it still clears the threshold near
        its peak.

        ``scene`` is an (H, W, 3) array, an image path, or a ``WindowedScene``
        (``runtime.scene.open_raster`` for GeoTIFF/JP2): that one is read tile
        by tile, resampled window by window, and never held whole.
        """
        return scan_scene(
            self, scene, tile=tile, overlap=overlap, batch=batch, progress=progress, gsd=gsd, min_score=min_score
        )
