"""``report.html``: one page a person can read, written from the demo's run folder.

Self-contained (images inlined as base64), so it can be opened, mailed or
screenshotted without the folder next to it.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from shipcam._utils.io import write_text

__all__ = ["write_report"]

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#1d2430;background:#fbfcfd}
h1{margin-bottom:.1em}h2{margin-top:1.8em;border-bottom:1px solid #dde3ea;padding-bottom:.2em}
.sub{color:#5b6675;margin-top:0}table{border-collapse:collapse;font-size:13px;margin:.6em 0}
th,td{border:1px solid #dde3ea;padding:3px 8px;text-align:right}th{background:#eef2f6}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #dde3ea;border-radius:4px}.grid{display:grid;grid-template-columns:repeat(4,1fr);
gap:8px}
.grid figure{margin:0}.grid figcaption{font-size:12px;color:#5b6675}.note{background:#eef5ff;
border-left:3px solid #3b7ddd;padding:.5em .8em;margin:.8em 0}
.kpi{display:flex;gap:1em;flex-wrap:wrap}.kpi div{background:#fff;border:1px solid #dde3ea;border-radius:6px;
padding:.5em 1em}.kpi b{display:block;font-size:22px}
.bad{color:#b3261e}.ok{color:#1e7b34}
"""


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p class='bad'>missing: {html.escape(str(path))}</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _f(v, spec=".3f"):
    if v is None:
        return "–"
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return html.escape(str(v))


def write_report(run: str | Path) -> Path:
    run = Path(run)
    metrics = json.loads((run / "train" / "metrics.json").read_text())
    config = json.loads((run / "train" / "config.json").read_text())
    lr = json.loads((run / "lr_find" / "lr_finder.json").read_text())
    manifest = (
        json.loads((run / "export" / "manifest.json").read_text())
        if (run / "export" / "manifest.json").exists()
        else None
    )
    evals = {p.parent.name: json.loads(p.read_text()) for p in sorted((run / "eval").glob("*/eval.json"))}
    bench = json.loads((run / "bench" / "bench.json").read_text()) if (run / "bench" / "bench.json").exists() else None
    sea = json.loads((run / "open_sea.json").read_text()) if (run / "open_sea.json").exists() else None

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>shipcam demo "
        f"report</title><style>{CSS}</style></head><body>"
    ]
    parts.append("<h1>shipcam demo report</h1>")
    data = "synthetic scenes and chips of the labelled real scenes" if config.get("scenes") else "synthetic scenes"
    start = "ImageNet backbone" if config.get("weights") else "from scratch"
    parts.append(
        f"<p class='sub'>{html.escape(config['backbone'])} (alpha {config['alpha']}) with global "
        f"{'max' if config['pooling'] == 'max' else 'average'} pooling and one dense logit, "
        f"trained on {metrics['n_train']} {config['size']} px images ({data}; {start}), "
        "exported to TFLite and ONNX with its Class Activation Map weights inside, run on a CPU with numpy.</p>"
    )
    parts.append("<div class='kpi'>")
    parts.append(f"<div>validation AUC<b>{_f(metrics['auc'])}</b></div>")
    parts.append(
        f"<div>accuracy<b>{_f(metrics['accuracy'])}</b>majority baseline {_f(metrics['majority_baseline'])}</div>"
    )
    if bench:
        best = min(
            (r for r in bench["rows"] if not r["row"].startswith("keras")),
            key=lambda r: r["e2e_median_ms"],
            default=None,
        )
        if best:
            parts.append(
                f"<div>fastest with CAM<b>{_f(best['e2e_median_ms'], '.1f')} ms</b>{html.escape(best['row'])}, "
                f"{best['threads']} thread(s)</div>"
            )
    if sea:
        d = sea["rules"]["default"]
        parts.append(
            f"<div>1.5 m open sea: image AUC<b>{_f(sea['image_auc'])}</b>{d['found']}/{d['ships']} ships found, "
            f"{_f(d['fa_per_mpx'], '.2f')} false alarms/Mpx</div>"
        )
    parts.append(
        f"<div>training time<b>{_f(metrics['train_seconds'] / 60, '.1f')} min</b>{os.cpu_count()} CPU cores</div></div>"
    )

    parts.append(
        "<h2>1. The data</h2><p>Synthetic scenes drawn across the model's range of ground sample distance: sea with "
        "swell, whitecaps and glint, clouds, coasts with piers, and ships with wakes. "
        "Yellow outlines are the ship masks. Only about a fifth of the images contain a ship, as in the Airbus data, "
        "so always saying "
        "“no ship” already scores the <b>majority baseline</b>; accuracy means something only above it.</p>"
    )
    parts.append(_img(run / "samples.png", "dataset sample"))

    s = lr.get("suggestion") or {}
    parts.append(
        "<h2>2. Learning-rate range test</h2><p>The rate grows exponentially each batch while the loss is recorded. It "
        "stops once the "
        f"smoothed loss diverges. Suggested rate: <b>{_f(s.get('steepest'), '.1e')}</b> (steepest descent), "
        f"{_f(s.get('min_over_10'), '.1e')} (minimum / 10).</p>"
    )
    parts.append(_img(run / "lr_find" / "lr_finder.png", "LR finder"))

    parts.append(
        "<h2>3. Training</h2><p>Loss, accuracy and AUC per epoch. The dotted line is the majority baseline. The model "
        "is the "
        f"epoch with the best validation AUC: precision {_f(metrics['precision'])}, recall {_f(metrics['recall'])}.</p>"
    )
    parts.append(_img(run / "train" / "curves.png", "training curves"))

    if manifest:
        rows = []
        for e in manifest["files"]:
            p = e["parity"]
            status = (
                "<span class='ok'>pass</span>"
                if e["passed"]
                else "<span class='bad'>" + html.escape("; ".join(e["problems"])) + "</span>"
            )
            rows.append(
                [
                    e["file"],
                    _f(e["size_bytes"] / 1e6, ".2f"),
                    _f(p["logits_rel_err"], ".1e"),
                    _f(p["decision_agreement"]),
                    _f(p.get("auc")),
                    _f(p.get("auc_drop"), "+.4f"),
                    _f(p["cam_corr_mean"]),
                    _f(p["cam_iou_mean"]),
                    status,
                ]
            )
        parts.append(
            "<h2>4. Export and parity with Keras</h2><p>Each file has two outputs, <code>logits</code> and the "
            "pre-pooling <code>features</code>, and carries "
            "its dense weights, preprocessing and threshold in its own metadata. Each is compared with Keras on "
            "held-out scenes. Errors are relative to the output's range. "
            "<b>CAM corr/IoU</b> ask whether the heatmap survived export: int8 can keep every decision and still lose "
            "the heatmap.</p>"
        )
        parts.append(
            _table(
                [
                    "file",
                    "MB",
                    "logit err",
                    "decision agreement",
                    "AUC",
                    "AUC drop vs Keras",
                    "CAM corr",
                    "CAM IoU@20%",
                    "parity",
                ],
                rows,
            )
        )

    if config.get("scenes"):
        parts.append(
            "<h2>Real scenes</h2><p>Half the training images were cut from the labelled real scenes "
            f"(<code>{html.escape(', '.join(config['scenes']))}</code>): windows around each ship at any angle and "
            "GSD, the ships laid on "
            "other water, negatives from everywhere else, then windows around the model's own false alarms. A model is "
            "never scored on a scene "
            "it trained on: <code>python -m shipcam.benchmarks.loso</code> trains on one scene and scores the other, "
            "both ways (BENCHMARKS.md, Real scenes).</p>"
        )
    if sea:
        rows = [
            [
                html.escape(k),
                f"{v['found']}/{v['ships']}",
                _f(v["recall"]),
                str(v["false_alarms"]),
                _f(v["fa_per_mpx"], ".2f"),
            ]
            for k, v in sea["rules"].items()
        ]
        parts.append(
            "<h2>1.5 m open sea</h2><p>Held-out synthetic images of the kind Airbus/SPOT imagery shows: swell, "
            "whitecaps, glint, haze and thin "
            f"cloud, shallows and sandbars. Image AUC {_f(sea['image_auc'])} over {sea['images']} images of 768 px "
            f"({sea['empty_called_ship']} of {sea['empty_images']} ship-free ones called ships); ships of 30 m or more "
            "in whole scenes:</p>"
        )
        parts.append(_table(["rule", "found", "recall", "false alarms", "per Mpx"], rows))

    if evals:
        rows = []
        for name, r in evals.items():
            c, loc = r["classification"], r.get("localisation", {})
            rows.append(
                [
                    html.escape(r["model"]),
                    _f(c["accuracy"]),
                    _f(c["majority_baseline"]),
                    _f(c["precision"]),
                    _f(c["recall"]),
                    _f(c["auc"]),
                    _f(loc.get("pointing_game")),
                    _f(loc.get("box_recall@0.3")),
                    _f(loc.get("box_recall@0.5")),
                ]
            )
        parts.append(
            "<h2>5. Evaluation on held-out scenes</h2><p><b>Pointing game</b>: how often the CAM's peak lands on a "
            "ship. <b>Box recall</b>: the fraction of ships "
            "covered by a CAM box (the region above 20% of the CAM's max) with IoU at least 0.3 or 0.5. These come "
            "from a classifier that never saw a box.</p>"
        )
        parts.append(
            _table(
                [
                    "model",
                    "accuracy",
                    "baseline",
                    "precision",
                    "recall",
                    "AUC",
                    "pointing game",
                    "box recall@0.3",
                    "box recall@0.5",
                ],
                rows,
            )
        )

    overlays = sorted((run / "overlays").glob("*.png"))
    if overlays:
        parts.append(
            "<h2>6. Where the model looks</h2><p>The CAM (features · w + b from the exported file, no gradients) over "
            "ship and no-ship scenes, with its boxes. "
            "One colour scale for all: blue is at or below the decision threshold (logit 0), red the strongest ship "
            "evidence. "
            "Boxes are drawn only when the probability clears the threshold.</p><div class='grid'>"
        )
        for p in overlays:
            parts.append(
                f"<figure>{_img(p, p.stem)}<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>"
            )
        parts.append("</div>")

    if bench:
        rows = [
            [
                html.escape(r["row"]),
                r["threads"],
                r["input"],
                _f(r.get("size_mb"), ".2f"),
                _f(r["median_ms"], ".2f"),
                _f(r["e2e_median_ms"], ".2f"),
                _f(r.get("ips_b1"), ".0f"),
                _f(r.get("speedup_vs_keras_predict"), ".1f"),
                _f(r.get("agreement")),
                _f(r.get("cam_corr")),
            ]
            for r in bench["rows"]
        ]
        m = bench["machine"]
        parts.append(
            f"<h2>7. Speed on this CPU</h2><p>{html.escape(m['cpu'])}, {m['cores']} cores. Median of timed runs after "
            "warm-up, batch 1. <b>End-to-end</b> includes "
            "preprocessing, the CAM and boxes (the Keras predict row gives a probability only). Grad-CAM needs a "
            "backward pass and CAM doesn't.</p>"
        )
        parts.append(
            _table(
                [
                    "row",
                    "threads",
                    "input",
                    "MB",
                    "engine ms",
                    "end-to-end ms",
                    "img/s",
                    "× Keras predict",
                    "agreement",
                    "CAM corr",
                ],
                rows,
            )
        )
        parts.append(_img(run / "bench" / "bench.png", "latency chart"))

    parts.append(
        "<p class='note'>Reproduce: <code>make demo</code>. Every number on this page comes from the files in this "
        "folder "
        "(<code>train/metrics.json</code>, <code>export/manifest.json</code>, <code>eval/*/eval.json</code>, "
        "<code>bench/bench.json</code>).</p>"
    )
    # Lets a headless browser (and the test) confirm every picture decoded, not just that the HTML parsed.
    parts.append(
        "<script>addEventListener('load',()=>{const i=[...document.images];"
        "document.body.dataset.images=i.length;document.body.dataset.imagesOk=i.every(x=>x.complete&&x.naturalWidth>0);});</script>"
    )
    parts.append("</body></html>")
    return write_text(run / "report.html", "\n".join(parts))
