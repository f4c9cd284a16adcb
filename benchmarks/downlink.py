"""Downlink filter on labelled scenes:
``python -m shipcam.benchmarks.downlink MODEL SCENE... --labels L --budgets-kb 10 30``.

For each budget: the bytes sent (chips + manifest) over the bytes of the
scene files and of their pixels, and the labelled ships whose detection made
it into the budget (a ship counts as sent when a sent detection is within
the eval-scenes radius of it). One scan per scene; the budgets only change
which chips go. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from shipcam.evaluation.scenes import open_detector
from shipcam.runtime.downlink import CHIP_FORMATS, plan_downlink
from shipcam.runtime.labels import match_detections
from shipcam.runtime.scoring import load_scenes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("scenes", nargs="+")
    p.add_argument("--labels", required=True)
    p.add_argument("--budgets-kb", type=float, nargs="+", default=[10.0, 30.0])
    p.add_argument("--chip-size", type=int, default=96)
    p.add_argument("--chip-format", choices=CHIP_FORMATS, default="jpeg")
    p.add_argument("--chip-quality", type=int, default=90)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    det = open_detector(args.model, args.threads)
    scenes, failed = load_scenes(args.scenes, args.labels)
    scans = [(s, det.scan(s.image, gsd=s.gsd).detections) for s in scenes]
    file_bytes = sum(Path(s.path).stat().st_size for s, _ in scans)
    raw_bytes = sum(s.image.size for s, _ in scans)
    n_ships = sum(lab.label == "ship" for s, _ in scans for lab in s.labels)
    rows = []
    for budget in [None, *args.budgets_kb]:
        sent = found = chips = detections = 0
        for s, dets in scans:
            plan = plan_downlink(
                s.image,
                dets,
                s.path.stem,
                None if budget is None else int(budget * 1000),
                args.chip_size,
                args.chip_format,
                args.chip_quality,
            )
            pts = np.array([[c.detection.x, c.detection.y] for c in plan.chips]).reshape(-1, 2)
            m = match_detections(pts, np.array([c.detection.score for c in plan.chips]), s.labels, s.gsd)
            sent, found, chips, detections = (
                sent + plan.nbytes,
                found + int(m.found.sum()),
                chips + len(plan.chips),
                detections + len(dets),
            )
        rows.append(
            {
                "budget_kb_per_scene": budget,
                "chips": chips,
                "detections": detections,
                "bytes": sent,
                "fraction_of_files": sent / file_bytes,
                "fraction_of_pixels": sent / raw_bytes,
                "ships": n_ships,
                "ships_sent": found,
                "recall": found / n_ships if n_ships else float("nan"),
            }
        )
    print(
        f"{args.model}: {len(scans)} scenes, {file_bytes / 1e6:.2f} MB of files, {raw_bytes / 1e6:.1f} MB of pixels, "
        f"{n_ships} labelled ships; chips {args.chip_size} px {args.chip_format}"
    )
    print(
        "| budget per scene | chips sent / detections | kB sent | of the files | of the pixels | ships sent (recall) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        b = "none (all)" if r["budget_kb_per_scene"] is None else f"{r['budget_kb_per_scene']:g} kB"
        print(
            f"| {b} | {r['chips']} / {r['detections']} | {r['bytes'] / 1000:.1f} | {100 * r['fraction_of_files']:.2f}% "
            f"| {100 * r['fraction_of_pixels']:.3f}% | {r['ships_sent']}/{r['ships']} ({r['recall']:.0%}) |"
        )
    out = {
        "model": args.model,
        "engine": det.engine.name,
        "threads": args.threads,
        "chip_size": args.chip_size,
        "format": args.chip_format,
        "quality": args.chip_quality,
        "threshold": det.threshold,
        "rows": rows,
        "failed": failed,
    }
    print(json.dumps(out))
    if args.json:
        from shipcam._utils.io import write_json

        write_json(args.json, out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
