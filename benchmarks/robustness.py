"""Real scenes, perturbed: does a model's recall and false-alarm rate hold when the picture changes?

``python -m shipcam.benchmarks.robustness MODEL SCENE... --labels L [--json OUT]``

Two labelled scenes are a small sample of what a detector will meet. Other
scenes differ in ways that can be simulated on these two: sun and exposure
(brightness, gamma), haze, a softer or noisier sensor, JPEG compression on
the downlink, another GSD, north not up, the black no-data margin a scene's
footprint leaves in its raster, and fair-weather cumulus. Each perturbation
is applied to the whole scene (labels moved with it where the geometry
changes) and the scene is scored as ``eval-scenes`` scores it, at the
file's threshold. A detector that generalises keeps its numbers on every
row; a row that collapses names a weakness the hidden scenes may share.
Score a model only on scenes it did not train on (``benchmarks.loso``'s
fold models: ``without_<scene>/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from shipcam.runtime.labels import SceneLabel
from shipcam.runtime.scoring import LabelledScene

__all__ = ["PERTURBATIONS", "perturb", "gaussian_blur"]


class Perturbed(NamedTuple):
    image: np.ndarray  # uint8 (H, W, 3)
    labels: list[SceneLabel]
    gsd: float


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W[, C]) image, edges repeated, float32."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    a = np.asarray(image, np.float32)
    pad = ((r, r), (0, 0)) + ((0, 0),) * (a.ndim - 2)
    p = np.pad(a, pad, mode="edge")
    a = sum(w * p[i : i + a.shape[0]] for i, w in enumerate(k))
    p = np.pad(a, ((0, 0), (r, r)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    return sum(w * p[:, i : i + a.shape[1]] for i, w in enumerate(k))


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _rescale(s: LabelledScene, gsd: float) -> Perturbed:
    """The scene resampled to ``gsd`` m/px (as another sensor or a resampled product would give it)."""
    from shipcam.runtime.resize import resize_antialiased

    f = s.gsd / gsd
    h, w = s.image.shape[:2]
    img = _u8(resize_antialiased(s.image, max(1, round(h * f)), max(1, round(w * f))))
    return Perturbed(img, [dataclasses.replace(lab, x=lab.x * f, y=lab.y * f) for lab in s.labels], gsd)


def _rot90(s: LabelledScene) -> Perturbed:
    """Rotated a quarter turn anticlockwise (np.rot90): pixel (x, y) moves to (y, W - 1 - x)."""
    w = s.image.shape[1]
    return Perturbed(
        np.ascontiguousarray(np.rot90(s.image)),
        [dataclasses.replace(lab, x=lab.y, y=w - 1 - lab.x) for lab in s.labels],
        s.gsd,
    )


def _no_data(s: LabelledScene, share: float) -> Perturbed:
    """Black fill added above and left (labels moved): a scene's footprint inside its north-up raster leaves such
    margins.
    """
    h, w = s.image.shape[:2]
    dy, dx = round(share * h), round(share * w)
    img = np.zeros((h + dy, w + dx) + s.image.shape[2:], np.uint8)
    img[dy:, dx:] = s.image
    return Perturbed(img, [dataclasses.replace(lab, x=lab.x + dx, y=lab.y + dy) for lab in s.labels], s.gsd)


def _cumulus(s: LabelledScene, cover: float, seed: int = 0) -> Perturbed:
    """Fair-weather cumulus: white puffs of 50-500 m over ``cover`` of the scene, opaque cores, soft edges.

    Ships under a puff are still counted: a cloudy scene hides them. What the row shows is whether the
    puffs over open water become false alarms (they are compact objects in calm water, as ships are).
    """
    h, w = s.image.shape[:2]
    coarse = gaussian_blur(np.random.default_rng(seed).normal(0, 1, (-(-h // 8), -(-w // 8))).astype(np.float32), 4.0)
    field = gaussian_blur(np.kron(coarse, np.ones((8, 8), np.float32))[:h, :w], 6.0)
    edge = np.quantile(field, 1 - cover)
    alpha = np.clip((field - edge) / (0.5 * field.std()), 0, 1)[..., None]  # 0 outside, 1 in the cores
    return Perturbed(_u8(s.image * (1 - alpha) + 255 * alpha), s.labels, s.gsd)


def _pixels(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[LabelledScene], Perturbed]:
    return lambda s: Perturbed(_u8(fn(s.image.astype(np.float32))), s.labels, s.gsd)


# name -> what it does to a scene. Strengths are what a different day or sensor gives, not extremes.
PERTURBATIONS: dict[str, Callable[[LabelledScene], Perturbed]] = {
    "none": lambda s: Perturbed(s.image, s.labels, s.gsd),
    "darker x0.7": _pixels(lambda a: a * 0.7),
    "brighter x1.3": _pixels(lambda a: a * 1.3),
    "gamma 0.8": _pixels(lambda a: 255 * (a / 255) ** 0.8),
    "gamma 1.25": _pixels(lambda a: 255 * (a / 255) ** 1.25),
    "haze 30%": _pixels(lambda a: 0.7 * a + 0.3 * np.array([190, 195, 205], np.float32)),
    "blur sigma 1 px": _pixels(lambda a: gaussian_blur(a, 1.0)),
    "noise sigma 4": _pixels(lambda a: a + np.random.default_rng(0).normal(0, 4, a.shape).astype(np.float32)),
    "JPEG q60": lambda s: Perturbed(_jpeg(s.image, 60), s.labels, s.gsd),
    "GSD 2.5 m": lambda s: _rescale(s, 2.5),
    "GSD 3.7 m": lambda s: _rescale(s, 3.7),
    "rot90": _rot90,
    "no-data margin": lambda s: _no_data(s, 0.25),  # a third of the raster black
    "cumulus 20%": lambda s: _cumulus(s, 0.2),
}


def perturb(scene: LabelledScene, name: str) -> LabelledScene:
    """``scene`` with the named perturbation applied (image, labels and GSD)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    p = PERTURBATIONS[name](scene)
    return LabelledScene(scene.path, p.image, p.labels, p.gsd)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="an exported .onnx/.tflite file or a .keras model")
    p.add_argument("scenes", nargs="+", help="labelled scene files or folders")
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", choices=list(PERTURBATIONS), help="these rows only (default: all)")
    p.add_argument(
        "--rule",
        default="",
        help="detection-rule settings over the file's, e.g. 'views=flip,isolation=false' "
        "(values as JSON, else strings)",
    )
    p.add_argument("--json", help="write the table here")
    a = p.parse_args(argv)

    from shipcam._utils.io import write_json
    from shipcam._utils.progress import progress
    from shipcam.evaluation.scenes import open_detector
    from shipcam.runtime.scoring import load_scenes, score_scenes

    scenes, failed = load_scenes(a.scenes, a.labels)
    det = open_detector(a.model, a.threads)
    from shipcam.benchmarks.loso import parse_rules

    det.rule = dataclasses.replace(det.rule, **parse_rules(f"rule:{a.rule}")["rule"])
    rows = []
    print(f"{a.model}: {det.rule}, {det.engine.describe().get('engine')} {a.threads} threads, {len(scenes)} scenes")
    print("| perturbation | found | false alarms | FA/Mpx | precision |\n|---|---:|---:|---:|---:|")
    for name in progress(a.only or list(PERTURBATIONS), desc="perturbations"):
        t = score_scenes(det, [perturb(s, name) for s in scenes])["total"]
        rows.append({"perturbation": name, **t})
        print(
            f"| {name} | {t['found']}/{t['ships']} ({t['recall']:.0%}) | {t['false_alarms']} | {t['fa_per_mpx']:.2f} | "
            f"{t['precision']:.2f} |",
            flush=True,
        )
    if a.json:
        write_json(
            a.json,
            {
                "model": str(a.model),
                "rule": vars(det.rule),
                "engine": det.engine.describe(),
                "threads": a.threads,
                "rows": rows,
            },
        )
    if failed:
        print(f"not scored: {', '.join(f['scene'] for f in failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
