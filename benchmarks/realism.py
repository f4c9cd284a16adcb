"""How close is the generator to real scenes? Colour and texture of the water, texture of the whole scene, ship sizes.

    python -m shipcam.benchmarks.realism ../shared/realdata --labels labels/realdata.csv --out runs/realism

For each real scene and for generated scenes (the default mix and the 1.5 m
open-sea mix, each at 3 m/px so every row is on the same grid):

- **water**: pixels whose local standard deviation (5 x 5) is within 3x the
  scene's noise floor and that are darker than 150: their mean RGB, the
  spread of that colour across the scene, and their local std (the water's
  own texture: swell, ripples, sensor noise);
- **texture**: percentiles of the local std over the whole scene (calm
  water at the bottom, cities and hulls at the top) and the share of
  pixels over 8x the floor ("busy" pixels: land, hulls, wakes, whitecaps);
- **ships**: the lengths in metres (the labels, or the drawn masks).

Writes ``realism.json`` and ``realism.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

__all__ = ["image_stats", "run_realism", "main"]


def image_stats(image: np.ndarray, gsd: float) -> dict:
    """Colour and texture statistics of one RGB image (see the module docstring)."""
    from shipcam.runtime.isolation import local_std, noise_floor

    std = local_std(image)
    floor = max(noise_floor(image, gsd), 0.5)
    water = (std <= 3 * floor) & (image.mean(axis=2) < 150)
    px = image[water].astype(np.float64)
    return {
        "water_share": float(water.mean()),
        "water_rgb": [round(float(v), 1) for v in px.mean(axis=0)] if px.size else None,
        "water_rgb_spread": [round(float(v), 1) for v in px.std(axis=0)] if px.size else None,
        "water_local_std": round(float(np.median(std[water])), 2) if water.any() else None,
        "local_std_p10_p50_p90": [round(float(v), 2) for v in np.percentile(std, [10, 50, 90])],
        "busy_share": float((std > 8 * floor).mean()),
        "noise_floor": round(floor, 2),
    }


def _mean_rows(rows: list[dict]) -> dict:
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if r[k] is not None]
        if not vals:
            out[k] = None
        elif isinstance(vals[0], list):
            out[k] = [round(float(v), 2) for v in np.mean(vals, axis=0)]
        else:
            out[k] = round(float(np.mean(vals)), 3)
    return out


def run_realism(
    scenes: list[str], labels: str, out: str | Path, n: int = 24, size: int = 768, seed: int = 4242
) -> dict:
    from shipcam._utils.io import write_json, write_text
    from shipcam.runtime.resize import resize_antialiased
    from shipcam.runtime.scoring import load_scenes
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    real, _ = load_scenes(scenes, labels)
    rows = []
    for s in real:
        lengths = [lab.length_m for lab in s.labels if lab.label == "ship"]
        rows.append({"source": s.path.name, **image_stats(s.image, s.gsd), "ship_lengths_m": _lengths(lengths)})
    for name, cfg in (
        ("generator: default mix", SceneConfig(size=size, gsd=3.0)),
        ("generator: 1.5 m open sea, at 3 m", SceneConfig.open_sea(size=2 * size, gsd=1.5)),
    ):
        stats, lengths = [], []
        for i in range(n):
            scene = generate_scene(cfg, seed=seed, index=i)
            image = scene.image
            if cfg.gsd != 3.0:
                k = cfg.gsd / 3.0
                image = resize_antialiased(image, round(image.shape[0] * k), round(image.shape[1] * k))
            stats.append(image_stats(image, 3.0))
            for m in scene.masks:
                yy, xx = np.nonzero(m)
                lengths.append(math.hypot(np.ptp(xx) + 1, np.ptp(yy) + 1) * cfg.gsd)
        rows.append(
            {
                "source": f"{name} ({n} scenes of {cfg.size} px)",
                **_mean_rows(stats),
                "ship_lengths_m": _lengths(lengths),
            }
        )
    out = Path(out)
    write_json(out / "realism.json", {"rows": rows})
    write_text(out / "realism.md", to_markdown(rows))
    return {"rows": rows}


def _lengths(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"n": len(values), "p10_p50_p90": [round(float(v)) for v in np.percentile(values, [10, 50, 90])]}


def to_markdown(rows: list[dict]) -> str:
    head = (
        "| source | water share | water RGB | its spread | water local std | local std p10/p50/p90 | busy share "
        "| "
        "ship lengths p10/p50/p90 m (n) |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        sl = r["ship_lengths_m"]
        lines.append(
            f"| {r['source']} | {r['water_share']:.2f} | {r['water_rgb']} | {r['water_rgb_spread']} | "
            f"{r['water_local_std']} | "
            f"{r['local_std_p10_p50_p90']} | {r['busy_share']:.3f} | "
            f"{(str(sl['p10_p50_p90']) + ' (' + str(sl['n']) + ')') if sl else '-'} |"
        )
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shipcam.benchmarks.realism", description=__doc__.split("\n\n")[0])
    p.add_argument("scenes", nargs="+")
    p.add_argument("--labels", required=True)
    p.add_argument("--out", default="runs/realism")
    p.add_argument("-n", type=int, default=24, help="generated scenes per mix (default: 24)")
    args = p.parse_args(argv)
    r = run_realism(args.scenes, args.labels, args.out, args.n)
    print(to_markdown(r["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
