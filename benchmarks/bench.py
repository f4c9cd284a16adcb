"""``shipcam bench``: CPU latency and quality of every way to get a ship probability and a heatmap.

Rows:
- ``keras_predict``   ``model.predict`` (what most users do), probability only
- ``keras_function``  the two-output model in a ``tf.function``, + CAM in numpy
- ``keras_gradcam``   Grad-CAM with a ``GradientTape`` on the feature layer (what
                      tf-keras-vis / the keras.io example do for a heatmap)
- one row per exported file, through ``shipcam.runtime.Detector``

Columns: file size, threads, input size, median and p90 engine latency, median
end-to-end latency (preprocess + inference + CAM + boxes), images/s at batch 1
and at ``--batch``, peak RSS of a fresh process that loads only the runtime and
the file, speed-up against ``keras_predict``, and quality against Keras on
held-out labelled scenes: decision agreement, AUC, CAM correlation.

Each thread count runs in its own worker process (TensorFlow fixes its thread
pools at start-up); medians and ratios are from one run of this command.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shipcam._utils.cpu import int8_features
from shipcam.benchmarks.timing import time_calls

__all__ = ["BenchConfig", "run_bench", "machine_info"]


@dataclass
class BenchConfig:
    model: str  # .keras
    export_dir: str | None = None  # folder with manifest.json; None skips the file rows
    sizes: list[int] = field(default_factory=lambda: [224])
    threads: list[int] = field(default_factory=lambda: [1, 2])
    batch: int = 8
    warmup: int = 3
    runs: int = 20
    quality_n: int = 64
    seed: int = 4242
    keras: bool = True
    files: list[str] | None = None  # restrict to these file names


def machine_info() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "onnxruntime", "ai_edge_litert", "tensorflow", "keras"):
        try:
            versions[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):  # not installed, or no __version__
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "int8_features": int8_features(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _stats(ms: np.ndarray) -> dict:
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}


def _peak_rss_mb(path: str, threads: int, size: int) -> float:
    """Peak RSS of a fresh process that imports only the runtime, loads ``path`` and predicts once."""
    code = (
        "import numpy as np\n"
        "from shipcam._utils.memory import peak_rss_mb\n"
        "from shipcam.runtime import Detector\n"
        f"d = Detector.load({path!r}, threads={threads})\n"
        f"d.predict(np.zeros(({size}, {size}, 3), np.uint8))\n"
        "print(peak_rss_mb())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")


def worker(cfg: BenchConfig, threads: int) -> list[dict]:
    """All rows for one thread count (run in its own process)."""
    from shipcam.export.parity import parity_set
    from shipcam.runtime import Detector
    from shipcam.runtime.cam import class_activation_map, resize_bilinear
    from shipcam.runtime.metrics import pearson, roc_auc

    rows: list[dict] = []
    manifest = json.loads((Path(cfg.export_dir) / "manifest.json").read_text()) if cfg.export_dir else {"files": []}
    files = [e for e in manifest["files"] if cfg.files is None or e["file"] in cfg.files]

    keras_model = two = None
    if cfg.keras:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from shipcam.train.model import head_weights, load_classifier, two_output_model

        keras_model = load_classifier(cfg.model)
        two = two_output_model(keras_model)
        w, b = head_weights(keras_model)
        fn = tf.function(lambda x: two(x, training=False), reduce_retracing=True)
        feat_layer_model = two

    for size in cfg.sizes:
        # Held-out labelled scenes for the quality columns; preprocessing is MobileNetV2/Xception's (x/127.5 - 1).
        ps = parity_set(cfg.quality_n, size, 1 / 127.5, -1.0, cfg.seed)
        raw = ((ps.images + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        x1 = ps.images[:1]
        xb = ps.images[: cfg.batch]
        ref_logits = ref_cams = None

        if keras_model is not None:
            fn(ps.images[:16])  # trace once, outside the timed loops
            ref = {k: [] for k in ("logits", "features")}
            for i in range(0, len(ps.images), 16):
                o = fn(ps.images[i : i + 16])
                ref["logits"].append(np.asarray(o["logits"])[:, 0])
                ref["features"].append(np.asarray(o["features"]))
            ref_logits = np.concatenate(ref["logits"])
            ref_cams = class_activation_map(np.concatenate(ref["features"]), w, b)
            base = {"threads": threads, "input": size, "size_mb": None, "auc": roc_auc(ps.labels, ref_logits)}

            t = time_calls(lambda: keras_model.predict(x1, verbose=0), cfg.warmup, cfg.runs)
            tb = time_calls(lambda: keras_model.predict(xb, verbose=0), 1, max(3, cfg.runs // 4))
            rows.append(
                {
                    "row": "keras_predict",
                    **base,
                    **_stats(t),
                    "e2e_median_ms": float(np.median(t)),
                    "ips_b1": 1e3 / np.median(t),
                    "ips_batch": cfg.batch * 1e3 / np.median(tb),
                    "cam": "none",
                    "agreement": 1.0,
                    "cam_corr": None,
                }
            )

            def keras_cam():
                o = fn(x1)
                resize_bilinear(class_activation_map(np.asarray(o["features"])[0], w, b), size, size)

            t = time_calls(lambda: fn(x1), cfg.warmup, cfg.runs)
            te = time_calls(keras_cam, cfg.warmup, cfg.runs)
            tb = time_calls(lambda: fn(xb), 1, max(3, cfg.runs // 4))
            rows.append(
                {
                    "row": "keras_function+cam",
                    **base,
                    **_stats(t),
                    "e2e_median_ms": float(np.median(te)),
                    "ips_b1": 1e3 / np.median(te),
                    "ips_batch": cfg.batch * 1e3 / np.median(tb),
                    "cam": "CAM",
                    "agreement": 1.0,
                    "cam_corr": 1.0,
                }
            )

            @tf.function(reduce_retracing=True)
            def gradcam(x):
                with tf.GradientTape() as tape:
                    o = feat_layer_model(x, training=False)
                    feats = o["features"]
                    tape.watch(feats)
                    logit = o["logits"][:, 0]
                grads = tape.gradient(logit, feats)
                weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
                return tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1)), logit

            def grad_e2e():
                cam, _ = gradcam(x1)
                resize_bilinear(np.asarray(cam)[0], size, size)

            t = time_calls(lambda: gradcam(x1), cfg.warmup, cfg.runs)
            te = time_calls(grad_e2e, cfg.warmup, cfg.runs)
            g = np.concatenate([np.asarray(gradcam(ps.images[i : i + 16])[0]) for i in range(0, len(ps.images), 16)])
            gc_corr = float(np.mean([pearson(a, c) for a, c in zip(g, ref_cams)]))
            rows.append(
                {
                    "row": "keras_gradcam",
                    **base,
                    **_stats(t),
                    "e2e_median_ms": float(np.median(te)),
                    "ips_b1": 1e3 / np.median(te),
                    "ips_batch": None,
                    "cam": "Grad-CAM",
                    "agreement": 1.0,
                    "cam_corr": gc_corr,
                }
            )

        for e in files:
            path = str(Path(cfg.export_dir) / e["file"])
            det = Detector.load(path, threads=threads)
            if det.engine.fixed_size is not None and det.engine.fixed_size != (size, size):
                continue
            t = time_calls(lambda: det.engine.run(x1), cfg.warmup, cfg.runs)
            te = time_calls(lambda: det.predict(raw[0]), cfg.warmup, cfg.runs)
            tb = time_calls(lambda: det.engine.run(xb), 1, max(3, cfg.runs // 4))
            preds = det.predict(raw)
            logits = np.array([p.logit for p in preds])
            row = {
                "row": e["file"],
                "format": e["format"],
                "threads": threads,
                "input": size,
                "size_mb": e["size_bytes"] / 1e6,
                **_stats(t),
                "e2e_median_ms": float(np.median(te)),
                "ips_b1": 1e3 / np.median(te),
                "ips_batch": cfg.batch * 1e3 / np.median(tb),
                "cam": "CAM",
                "auc": roc_auc(ps.labels, logits),
                "peak_rss_mb": _peak_rss_mb(path, threads, size),
            }
            if ref_logits is not None:
                row["agreement"] = float(np.mean((logits > 0) == (ref_logits > 0)))
                row["cam_corr"] = float(np.mean([pearson(p.cam, c) for p, c in zip(preds, ref_cams)]))
            rows.append(row)
    return rows


def run_bench(cfg: BenchConfig, out_dir: str | Path, show_progress: bool = True) -> dict:
    """Run every thread count in a worker process; write ``bench.json``, ``bench.md`` and ``bench.png``."""
    from shipcam._utils.io import write_json, write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for threads in cfg.threads:
        if show_progress:
            print(f"benchmarking with {threads} thread(s) ...", file=sys.stderr, flush=True)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(
            [sys.executable, "-m", "shipcam.benchmarks.bench", json.dumps(cfg.__dict__), str(threads)],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark worker ({threads} threads) failed:\n{proc.stderr[-3000:]}")
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    _speedups(rows)
    result = {
        "machine": machine_info(),
        "config": cfg.__dict__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
    }
    write_json(out_dir / "bench.json", result)
    write_text(out_dir / "bench.md", to_markdown(result))
    plot(result, out_dir / "bench.png")
    return result


def _speedups(rows: list[dict]) -> None:
    """Speed-up of each row's end-to-end latency over ``keras_predict``, and each int8 file's engine time over its own
    float file's.
    """
    ref = {(r["threads"], r["input"]): r["e2e_median_ms"] for r in rows if r["row"] == "keras_predict"}
    engine = {(r["row"], r["threads"], r["input"]): r["median_ms"] for r in rows}
    for r in rows:
        base = ref.get((r["threads"], r["input"]))
        r["speedup_vs_keras_predict"] = base / r["e2e_median_ms"] if base else None
        if "_int8." in r["row"]:  # best_int8.tflite against best_fp32.tflite, at the same threads and size
            own = engine.get((r["row"].replace("_int8.", "_fp32."), r["threads"], r["input"]))
            r["int8_speedup_vs_fp32"] = own / r["median_ms"] if own and r["median_ms"] else None


def _fmt(v, spec: str = ".2f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return format(v, spec)


def to_markdown(result: dict) -> str:
    m = result["machine"]
    feats = m.get("int8_features") or []
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "int8 features the OS reports: "
        f"{', '.join(feats) if feats else 'none (int8 files are smaller here, rarely faster)'}",
        "",
        "| row | threads | input | size MB | engine median ms | p90 ms | end-to-end ms | img/s b1 | img/s batch | peak "
        "RSS MB | × Keras predict | agreement | AUC | CAM corr |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['row']} | {r['threads']} | {r['input']} | {_fmt(r.get('size_mb'))} | {_fmt(r['median_ms'])} | "
            f"{_fmt(r['p90_ms'])} | "
            f"{_fmt(r['e2e_median_ms'])} | {_fmt(r.get('ips_b1'), '.1f')} | {_fmt(r.get('ips_batch'), '.1f')} | "
            f"{_fmt(r.get('peak_rss_mb'), '.0f')} | "
            f"{_fmt(r.get('speedup_vs_keras_predict'), '.1f')} | {_fmt(r.get('agreement'), '.3f')} | "
            f"{_fmt(r.get('auc'), '.3f')} | {_fmt(r.get('cam_corr'), '.3f')} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    from shipcam._utils.plotting import pyplot, save_png

    plt = pyplot()

    rows = result["rows"]
    keys = sorted({(r["input"], r["threads"]) for r in rows})
    fig, axes = plt.subplots(
        1, len(keys), figsize=(5.5 * len(keys), 0.45 * (len(rows) / max(1, len(keys))) + 1.8), squeeze=False
    )
    for ax, (size, threads) in zip(axes[0], keys):
        sel = [r for r in rows if r["input"] == size and r["threads"] == threads]
        names = [r["row"] for r in sel]
        vals = [r["e2e_median_ms"] for r in sel]
        colours = ["0.6" if n.startswith("keras") else ("C3" if "int8" in n else "C0") for n in names]
        ax.barh(names, vals, color=colours)
        ax.set_xscale("log")
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.1f}", va="center", fontsize=8)
        ax.invert_yaxis()
        ax.set(title=f"{size} px, {threads} thread(s): end-to-end ms (log)", xlabel="ms per image, batch 1")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)


if __name__ == "__main__":
    cfg = BenchConfig(**json.loads(sys.argv[1]))
    print(json.dumps(worker(cfg, int(sys.argv[2])), default=float))


def int8_lines(result: dict) -> list[str]:
    """One line per int8 file and thread count: its engine time against its own float file's on this CPU."""
    return [
        f"{r['row']}, {r['threads']} thread(s), {r['input']} px: {r['int8_speedup_vs_fp32']:.2f}x its fp32 file "
        f"({r['median_ms']:.2f} ms)"
        for r in result["rows"]
        if r.get("int8_speedup_vs_fp32")
    ]
