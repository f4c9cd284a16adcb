"""Leave-one-scene-out: train on all labelled scenes but one, score the one left out, for each scene in turn.

The only honest real-scene number for a model that learns from real scenes:
no scene is scored by a model that trained on it. Each fold trains with
the demo's recipe (``shipcam.train.recipes``, with ``--train`` options over it) and
``--scenes`` set to the other scenes, then scans the held-out scene at the model's saved
threshold under each detection rule asked for (``--rules``), e.g. the
default and the network alone (``isolation=false``).

    python -m shipcam.benchmarks.loso ../shared/realdata --labels labels/realdata.csv --work runs/loso

Writes ``WORK/loso.json`` (per fold and rule: ships found, false alarms,
misses) and prints one table. A fold whose model exists is not trained again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

__all__ = ["run_loso", "parse_rules", "main"]


def parse_rules(text: str) -> dict[str, dict]:
    """``"default:;network alone:isolation=false,confirm_views=none"`` -> named ``DetectionRule`` overrides.

    Values are JSON (``false``, ``null``, ``2.5``) or, failing that, strings (``none``, ``flip``).
    """
    out: dict[str, dict] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, body = part.partition(":")
        rule = {}
        for item in filter(None, (i.strip() for i in body.split(","))):
            key, _, value = item.partition("=")
            try:
                rule[key.strip()] = json.loads(value)
            except ValueError:
                rule[key.strip()] = value.strip()
        out[name.strip()] = rule
    return out


def run_loso(
    scenes: list[str],
    labels: str,
    work: str | Path,
    train_options: dict,
    rules: dict[str, dict],
    threads: int = 2,
    open_sea: bool = True,
) -> dict:
    from shipcam.runtime.detector import Detector
    from shipcam.runtime.scoring import score_scenes
    from shipcam.train.engine import KerasEngine
    from shipcam.train.model import load_classifier, model_info
    from shipcam.train.realdata import load_training_scenes
    from shipcam.train.trainer import TrainConfig, train

    work = Path(work)
    labelled = load_training_scenes(scenes, labels)
    folds = []
    for held in labelled:
        name = held.path.stem
        run = work / f"without_{name}"
        others = [str(s.path) for s in labelled if s.path != held.path]
        t0 = time.perf_counter()
        if not (run / "metrics.json").exists():
            config = TrainConfig(run_dir=str(run), scenes=others, real_labels=str(labels), **train_options)
            train(config, resume=(run / "config.json").exists(), show_progress=False)
        model = load_classifier(run / "best.keras", compile=False)
        info = model_info(model)
        det = Detector(KerasEngine(model, info=info, threads=threads))
        base = det.rule
        rows = {}
        for rname, overrides in rules.items():
            det.rule = dataclasses.replace(base, **overrides)
            r = score_scenes(det, [held])
            scene = r["scenes"][0]
            missed = [
                lab.note
                for lab, hit in zip([lab for lab in held.labels if lab.label == "ship"], scene["match"].found)
                if not hit
            ]
            rows[rname] = {
                k: scene[k] for k in ("ships", "found", "false_alarms", "fa_per_mpx", "recall", "precision")
            } | {"missed": missed}
            print(
                f"{name} ({rname}): {scene['found']}/{scene['ships']} found, {scene['false_alarms']} false alarms "
                f"({scene['fa_per_mpx']:.2f}/Mpx)",
                flush=True,
            )
        det.rule = base
        fold = {
            "held_out": held.path.name,
            "trained_on": [Path(o).name for o in others],
            "threshold": det.threshold,
            "rules": rows,
            "metrics": json.loads((run / "metrics.json").read_text()),
        }
        if open_sea:
            from shipcam.benchmarks.open_sea import open_sea_report

            fold["open_sea"] = sea = open_sea_report(det, rules, n_images=48, n_scenes=10)
            print(
                f"{name} model on open sea: image AUC {sea['image_auc']:.3f}; "
                + "; ".join(
                    f"{k}: {v['found']}/{v['ships']}, {v['fa_per_mpx']:.2f} FA/Mpx" for k, v in sea["rules"].items()
                ),
                flush=True,
            )
        fold["seconds"] = time.perf_counter() - t0
        folds.append(fold)
    total = {}
    for rname in rules:
        ships = sum(f["rules"][rname]["ships"] for f in folds)
        found = sum(f["rules"][rname]["found"] for f in folds)
        fa = sum(f["rules"][rname]["false_alarms"] for f in folds)
        mpx = sum(s.image.shape[0] * s.image.shape[1] for s in labelled) / 1e6
        total[rname] = {
            "ships": ships,
            "found": found,
            "recall": found / ships if ships else float("nan"),
            "false_alarms": fa,
            "fa_per_mpx": fa / mpx,
        }
    result = {
        "scenes": [s.path.name for s in labelled],
        "train_options": train_options,
        "rules": rules,
        "folds": folds,
        "total": total,
    }
    from shipcam._utils.io import write_json

    write_json(work / "loso.json", result)
    return result


def scenes_recipe() -> dict:
    """The demo's recipe when it trains with labelled scenes, without the scenes themselves (each fold sets its own)."""
    from pathlib import Path

    from shipcam.train.recipes import AUTO, demo_recipe

    with_scenes = demo_recipe(AUTO, scenes=Path("."), labels=Path("."))
    return {k: v for k, v in with_scenes.items() if k not in ("scenes", "real_labels")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shipcam.benchmarks.loso", description=__doc__.split("\n\n")[0])
    p.add_argument("scenes", nargs="+", help="labelled scenes (files or folders)")
    p.add_argument("--labels", required=True)
    p.add_argument("--work", default="runs/loso")
    p.add_argument(
        "--rules",
        default="default:;network alone:isolation=false,confirm_views=none",
        help="named rule overrides, ';'-separated: NAME:key=value,key=value (default: %(default)s)",
    )
    p.add_argument(
        "--train",
        default="{}",
        help="TrainConfig options as JSON over the demo's recipe, e.g. '{\"mining_rounds\": 2}' (default: the demo's "
        "recipe as it is)",
    )
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    # the recipe of a demo with scenes (its synthetic share too: without scenes the demo draws twice as many)
    recipe = dict(scenes_recipe(), verbose=2)
    r = run_loso(
        args.scenes, args.labels, args.work, {**recipe, **json.loads(args.train)}, parse_rules(args.rules), args.threads
    )
    print("| rule | " + " | ".join(f"held out {f['held_out']}" for f in r["folds"]) + " | total |")
    print("|---|" + "---|" * (len(r["folds"]) + 1))
    for rname, t in r["total"].items():
        cells = [
            f"{f['rules'][rname]['found']}/{f['rules'][rname]['ships']}, {f['rules'][rname]['fa_per_mpx']:.2f} FA/Mpx"
            for f in r["folds"]
        ]
        print(
            f"| {rname} | "
            + " | ".join(cells)
            + f" | {t['found']}/{t['ships']} ({t['recall']:.0%}), {t['fa_per_mpx']:.2f} FA/Mpx |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
