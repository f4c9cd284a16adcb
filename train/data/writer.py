"""Write synthetic scenes to disk in the Airbus layout, so one loader serves both."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from shipcam._utils.progress import progress
from shipcam.errors import DatasetError
from shipcam.train.data.rle import rle_encode
from shipcam.train.data.sources import AIRBUS_CSV, AIRBUS_IMAGES
from shipcam.train.data.synthetic import SceneConfig, generate_scene

__all__ = ["write_synthetic_dataset", "dataset_gsd", "DATASET_INFO"]

DATASET_INFO = "shipcam_dataset.json"


def dataset_gsd(root: str | Path) -> float | None:
    """The metres/pixel a generated dataset was drawn at (its ``shipcam_dataset.json``); None for other data."""
    path = Path(root) / DATASET_INFO
    if not path.is_file():
        return None
    try:
        gsd = json.loads(path.read_text())["config"]["gsd"]
    except (ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: not a shipcam dataset description ({e})") from None
    return float(gsd)


def write_synthetic_dataset(
    root: str | Path,
    n: int,
    config: SceneConfig = SceneConfig(),
    seed: int = 0,
    image_format: str = "jpg",
    quality: int = 92,
    show_progress: bool = True,
) -> Path:
    """Generate ``n`` scenes under ``root`` (``train_v2/`` + CSV). Idempotent.

    The folder is built under ``root.part`` and renamed at the end: an
    interrupted run leaves no folder that looks complete, and a finished folder
    with the same settings is reused as is.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, received n={n}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', received {image_format!r}")
    from PIL import Image

    root = Path(root)
    info = {
        "generator": "shipcam.synthetic",
        "n": n,
        "seed": seed,
        "image_format": image_format,
        "config": config.to_dict(),
    }
    if (root / DATASET_INFO).is_file():
        if json.loads((root / DATASET_INFO).read_text()) == json.loads(json.dumps(info)):
            return root
        raise FileExistsError(f"{root} holds a different dataset; choose another folder or delete it")
    tmp = root.with_name(root.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / AIRBUS_IMAGES).mkdir(parents=True)

    rows = []
    for i in progress(range(n), total=n, desc="generating scenes", enabled=show_progress):
        scene = generate_scene(config, seed=seed, index=i)
        name = f"syn_{seed}_{i:06d}.{image_format}"
        kwargs = {"quality": quality} if image_format == "jpg" else {}
        Image.fromarray(scene.image).save(tmp / AIRBUS_IMAGES / name, **kwargs)
        rows += [(name, rle_encode(m)) for m in scene.masks] or [(name, "")]

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ImageId", "EncodedPixels"])
    w.writerows(rows)
    (tmp / AIRBUS_CSV).write_text(buf.getvalue())
    (tmp / DATASET_INFO).write_text(json.dumps(info, indent=2) + "\n")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(root)
    return root
