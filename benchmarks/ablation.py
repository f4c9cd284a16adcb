"""Does each part of the detection rule earn its place? Every variant scored on held-out real scenes and held-out
synthetic ones.

    python -m shipcam.benchmarks.ablation --loso runs/loso --labels labels/realdata.csv --out runs/ablation

Takes the fold models of a leave-one-scene-out run (``benchmarks.loso``:
``WORK/without_<scene>/best.keras``) and, for each rule variant in
``VARIANTS`` (or ``--rules``), scans with each fold's model

- the real scene it did not train on (ships found, false alarms per Mpx);
- held-out synthetic scenes in the 1.5 m open-sea conditions, and in the
  default mix of coasts and open water across the model's GSD range (ships
  of 30 m or more found, false alarms per Mpx).

A part earns its place when turning it off loses ships or adds false alarms
on both. The engine's outputs are cached by input, so the variants cost the
rule's own work, not the network's. Writes ``ablation.json`` and a table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

__all__ = ["CachedEngine", "run_ablation", "VARIANTS", "main"]


class CachedEngine:
    """An engine whose outputs are remembered by input bytes: the same tiles under another rule cost nothing."""

    def __init__(self, engine):
        self.engine, self.cache = engine, {}

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def run(self, x):
        key = hashlib.sha1(x.tobytes()).hexdigest() + str(x.shape)
        if key not in self.cache:
            self.cache[key] = self.engine.run(x)
        return {k: v.copy() for k, v in self.cache[key].items()}


def run_ablation(
    loso: str | Path,
    labels: str,
    out: str | Path,
    variants: dict[str, dict] | None = None,
    n_synthetic: int = 10,
    threads: int = 2,
) -> dict:
    from shipcam.benchmarks.open_sea import MIN_SHIP_M, OPEN_SEA_SEED
    from shipcam.runtime.detector import Detector
    from shipcam.runtime.scoring import score_scenes
    from shipcam.train.data.synthetic import SceneConfig
    from shipcam.train.engine import KerasEngine
    from shipcam.train.model import load_classifier, model_info
    from shipcam.train.realdata import load_training_scenes
    from shipcam.train.threshold import synthetic_labelled_scenes

    loso = Path(loso)
    variants = variants or VARIANTS
    result = json.loads((loso / "loso.json").read_text())
    scenes = load_training_scenes([str(Path(p)) for p in _scene_paths(loso, result)], labels)
    rows: dict[str, dict] = {
        v: {"real": [0, 0, 0, 0.0], "open_sea": [0, 0, 0, 0.0], "mix": [0, 0, 0, 0.0]} for v in variants
    }
    for held in scenes:
        model = load_classifier(loso / f"without_{held.path.stem}" / "best.keras", compile=False)
        info = model_info(model)
        det = Detector(KerasEngine(model, info=info, threads=threads))
        det.engine = CachedEngine(det.engine)
        lo, hi = det.gsd_range
        sets = {
            "real": [held],
            "open_sea": synthetic_labelled_scenes(
                n_synthetic,
                config=SceneConfig.open_sea(size=768, gsd=1.5, ship_fraction=0.9),
                seed=OPEN_SEA_SEED + 1,
                min_ship_m=MIN_SHIP_M,
            ),
            "mix": synthetic_labelled_scenes(
                n_synthetic, size=768, gsd=lo, gsd_range=(lo, hi), seed=OPEN_SEA_SEED + 2, min_ship_m=MIN_SHIP_M
            ),
        }
        base = det.rule
        for name, overrides in variants.items():
            fields = {k: v for k, v in overrides.items() if "." not in k}
            constants = {k: v for k, v in overrides.items() if "." in k}
            det.rule = dataclasses.replace(base, **fields)
            with _constants(constants):
                totals = {key: score_scenes(det, labelled)["total"] for key, labelled in sets.items()}
            for key, t in totals.items():
                r = rows[name][key]
                r[0] += t["found"]
                r[1] += t["ships"]
                r[2] += t["false_alarms"]
                r[3] += t["megapixels"]
            print(
                f"{held.path.stem} model, {name}: "
                + "; ".join(f"{k} {v[0]}/{v[1]}, {v[2]} FA" for k, v in rows[name].items()),
                flush=True,
            )
    table = {
        name: {
            key: {"found": v[0], "ships": v[1], "false_alarms": v[2], "fa_per_mpx": v[2] / v[3] if v[3] else 0.0}
            for key, v in sets_.items()
        }
        for name, sets_ in rows.items()
    }
    out = Path(out)
    from shipcam._utils.io import write_json, write_text

    write_json(out / "ablation.json", {"loso": str(loso), "variants": variants, "table": table})
    write_text(out / "ablation.md", to_markdown(table))
    return table


@contextlib.contextmanager
def _constants(values: dict):
    """Set named constants of the runtime (``"isolation.CONTRAST": 3.0``, ``"scan.CONFIRM_MARGIN": 1.0``) for one
    variant.
    """
    import importlib

    saved = []
    try:
        for dotted, value in values.items():
            module, name = dotted.rsplit(".", 1)
            m = importlib.import_module(f"shipcam.runtime.{module}")
            if not hasattr(m, name):
                raise ValueError(f"shipcam.runtime.{module} has no constant {name!r}")
            saved.append((m, name, getattr(m, name)))
            setattr(m, name, value)
        yield
    finally:
        for m, name, value in reversed(saved):
            setattr(m, name, value)


def _scene_paths(loso: Path, result: dict) -> list[str]:
    """The scenes of a LOSO run, from the folds' training lists (each fold's config names the others)."""
    paths = set()
    for fold in result["folds"]:
        config = json.loads((loso / f"without_{Path(fold['held_out']).stem}" / "config.json").read_text())
        paths |= set(config["scenes"])
    return sorted(paths)


def to_markdown(table: dict) -> str:
    lines = [
        "| variant | real, held out: found | FA/Mpx | open sea: found | FA/Mpx | coasts and open water: found | FA/Mpx "
        "|",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t in table.items():
        cells = []
        for key in ("real", "open_sea", "mix"):
            v = t[key]
            cells += [f"{v['found']}/{v['ships']}", f"{v['fa_per_mpx']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# Each field turned off or moved, and each named constant of the scan moved either way.
VARIANTS: dict[str, dict] = {
    "the rule as it is": {},
    "network alone": {"isolation": False, "confirm_views": "none"},
    "no isolation check": {"isolation": False},
    "no confirmation": {"confirm_views": "none"},
    "no isolation check, threshold 0.9": {"isolation": False, "threshold": 0.9},
    "no isolation check, threshold 0.97": {"isolation": False, "threshold": 0.97},
    "confirmed on d4": {"confirm_views": "d4"},
    "every tile on flip": {"views": "flip"},
    "nms 100 m": {"nms_radius_m": 100.0},
    "nms 250 m": {"nms_radius_m": 250.0},
    "max length 300 m": {"max_length_m": 300.0},
    "object contrast 3x": {"isolation.CONTRAST": 3.0},
    "object contrast 6x": {"isolation.CONTRAST": 6.0},
    "snap 30 m": {"isolation.SNAP_M": 30.0},
    "snap 120 m": {"isolation.SNAP_M": 120.0},
    "shortest ship 20 m": {"isolation.MIN_SHIP_M": 20.0},
    "shortest ship 60 m": {"isolation.MIN_SHIP_M": 60.0},
    "no fading core (fade 1.0)": {"isolation.FADE": 1.0},
    "fade 0.3": {"isolation.FADE": 0.3},
    "isolation vetoes only peaks under 3 logits over the threshold": {"isolation.TRUST_MARGIN": 3.0},
    "... under 4 logits": {"isolation.TRUST_MARGIN": 4.0},
    "... under 6 logits": {"isolation.TRUST_MARGIN": 6.0},
    "confirm every detection": {"scan.CONFIRM_MARGIN": 1e9},
    "confirm within 1 logit": {"scan.CONFIRM_MARGIN": 1.0},
    "confirmation crop 1x": {"scan._CONFIRM_CROP": 1.0},
    "confirmation crop 2x": {"scan._CONFIRM_CROP": 2.0},
}


def main(argv: list[str] | None = None) -> int:
    from shipcam.benchmarks.loso import parse_rules

    p = argparse.ArgumentParser(prog="python -m shipcam.benchmarks.ablation", description=__doc__.split("\n\n")[0])
    p.add_argument("--loso", required=True, help="a benchmarks.loso work folder")
    p.add_argument("--labels", required=True)
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--rules", help="named rule variants, as benchmarks.loso's --rules (default: VARIANTS)")
    p.add_argument("--synthetic", type=int, default=10, help="held-out synthetic scenes per set (default: 10)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    table = run_ablation(
        args.loso, args.labels, args.out, parse_rules(args.rules) if args.rules else None, args.synthetic, args.threads
    )
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
