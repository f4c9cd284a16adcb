"""The isolation check alone, on generated scenes: ``python -m shipcam.benchmarks.isolation_verdicts --scenes 150``.

No model: the verdict is asked at each drawn ship's centre (what a perfect
CAM peak would give) on open-sea and coastal scenes, and at random object
pixels of ship-free coastal scenes full of confusers (piers, breakwaters,
islands, city, wakes whose boat left the frame). It shows what a change to
the check costs or gains apart from any model: the share of ships kept, and
the share of non-ship objects let through. Prints a table; ``--json`` saves it.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


# Each row: the check's settings (isolation_at keywords), the history of the default; the last row is today's.
ROWS = {
    "fade off, 20 m": dict(fade=None, min_length_m=20.0, gap_look=False, streak_m=None, peak_contrast=4.0, min_elongation=None),
    "fade 0.5, 20 m": dict(fade=0.5, min_length_m=20.0, gap_look=False, streak_m=None, peak_contrast=4.0, min_elongation=None),
    "fade 0.5, 40 m": dict(fade=0.5, min_length_m=40.0, gap_look=False, streak_m=None, peak_contrast=4.0, min_elongation=None),
    "fade 0.5, 40 m, gap look": dict(fade=0.5, min_length_m=40.0, gap_look=True, streak_m=None, peak_contrast=4.0, min_elongation=None),
    "fade 0.5, 40 m, gap look, streaks 120 m": dict(fade=0.5, min_length_m=40.0, gap_look=True, streak_m=120.0, peak_contrast=4.0, min_elongation=None),
    "... and objects peaking at 8x the floor": dict(fade=0.5, min_length_m=40.0, gap_look=True, streak_m=120.0, peak_contrast=8.0, min_elongation=None),
    "... and blobs passed over, elongation 1.6 (default)": dict(fade=0.5, min_length_m=40.0, gap_look=True, streak_m=120.0, peak_contrast=8.0, min_elongation=1.6),
}


def verdict_shares(n: int, coast: float, check: dict, size: int = 320, gsd: float = 3.0, seed: int = 7) -> dict:
    """Share of ISOLATED / ATTACHED / EMPTY verdicts at the centres of every ship of ``n`` generated scenes.

    ``isolated_45m``: the ISOLATED share among hulls of 45 m or more, what the real labels call a ship.
    """
    from shipcam.runtime.isolation import Isolation, isolation_at, noise_floor
    from shipcam.train.data.synthetic import SceneConfig, generate_scene
    from shipcam.train.threshold import is_labelled_ship

    cfg = SceneConfig(size=size, gsd=gsd, ship_fraction=1.0, coast_prob=coast)
    counts = {k.value: 0 for k in Isolation}
    big = big_kept = 0
    for i in range(n):
        scene = generate_scene(cfg, seed=seed, index=i)
        floor = noise_floor(scene.image, gsd)
        for m in scene.masks:
            ys, xs = np.nonzero(m)
            kind = isolation_at(scene.image, xs.mean(), ys.mean(), gsd, floor, **check).kind
            counts[kind.value] += 1
            if is_labelled_ship(m, gsd):
                big += 1
                big_kept += kind is Isolation.ISOLATED
    total = sum(counts.values())
    return {"ships": total, **{k: v / total for k, v in counts.items()}, "ships_45m": big, "isolated_45m": big_kept / max(big, 1)}


def confusers_isolated(n: int, check: dict, size: int = 320, gsd: float = 3.0, seed: int = 11, per_scene: int = 5) -> dict:
    """Share of random object pixels of ship-free coastal scenes whose verdict is ISOLATED (would-be false alarms)."""
    from shipcam.runtime.isolation import Isolation, isolation_at, local_std, noise_floor
    from shipcam.train.data.synthetic import SceneConfig, generate_scene

    cfg = SceneConfig(size=size, gsd=gsd, ship_fraction=0.0, coast_prob=0.6, confuser_prob=0.9)
    rng = np.random.default_rng(0)
    isolated = total = 0
    for i in range(n):
        image = generate_scene(cfg, seed=seed, index=i).image
        floor = noise_floor(image, gsd)
        ys, xs = np.nonzero(local_std(image) > 4 * floor)
        for j in rng.choice(len(ys), min(per_scene, len(ys)), replace=False) if len(ys) else []:
            isolated += isolation_at(image, xs[j], ys[j], gsd, floor, **check).kind is Isolation.ISOLATED
            total += 1
    return {"points": total, "isolated": isolated / max(total, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=150, help="scenes per row (320 px at 3 m/px)")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), help="these rows only (default: all)")
    p.add_argument("--json", help="write the table here")
    args = p.parse_args(argv)
    rows = []
    for name in args.rows or list(ROWS):
        check = ROWS[name]
        sea, coast = verdict_shares(args.scenes, 0.0, check), verdict_shares(args.scenes, 1.0, check)
        neg = confusers_isolated(args.scenes, check)
        rows.append({"check": name, **check, "open_sea": sea, "coastal": coast, "confusers": neg})
        print(f"{name:26s} ships kept: open sea {sea['isolated']:.1%} of {sea['ships']} ({sea['isolated_45m']:.1%} of {sea['ships_45m']} >= 45 m),"
              f" coastal {coast['isolated']:.1%} of {coast['ships']} ({coast['isolated_45m']:.1%} of {coast['ships_45m']} >= 45 m)"
              f" | confuser pixels let through {neg['isolated']:.1%} of {neg['points']}", flush=True)
    if args.json:
        from shipcam._utils.io import write_json

        write_json(args.json, rows)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
