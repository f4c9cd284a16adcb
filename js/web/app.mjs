// The page: pick or drop an image (and optionally a model), run it in the browser, draw the CAM and boxes.
// ?model=URL&image=URL&threshold=P&views=V load those at start (the headless test uses them); results also go,
// as JSON, into <pre id="result"> with data-state="done" or "error".

import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { Detector, predictionRecord } from "../src/index.mjs";

const params = new URLSearchParams(location.search);
// Threads need cross-origin isolation (COOP/COEP headers), which a plain static server does not give.
const THREADS = self.crossOriginIsolated ? Number(params.get("threads") || 1) : 1;
ort.env.wasm.wasmPaths = new URL("../node_modules/onnxruntime-web/dist/", import.meta.url).href;
ort.env.wasm.numThreads = THREADS;

const $ = (id) => document.getElementById(id);
let detector = null;
let lastImage = null;

function status(text) { $("status").textContent = text; }

function fail(e) {
  $("error").textContent = String(e.message || e);
  $("result").textContent = JSON.stringify({ error: String(e.message || e) });
  $("result").dataset.state = "error";
}

let litert = null;
async function liteRt() { // LiteRT.js for .tflite files, loaded on first use (its WebAssembly is ~10 MB)
  if (!litert) {
    const mod = await import("../node_modules/@litertjs/core/dist/index.js");
    await mod.loadLiteRt(new URL("../node_modules/@litertjs/core/wasm/", import.meta.url).href);
    litert = mod;
  }
  return litert;
}

async function loadModel(source, name) {
  const t0 = performance.now();
  const engines = /\.tflite$/i.test(name) ? { litert: await liteRt() } : { ort };
  detector = await Detector.load(source, { ...engines, name, threads: THREADS, threshold: params.has("threshold") ? Number(params.get("threshold")) : undefined });
  const ms = performance.now() - t0;
  status(`model ${name} loaded in ${ms.toFixed(0)} ms (${detector.engine})`);
  const m = detector.metadata;
  const rows = Object.entries(m).filter(([k]) => !["cam_weights", "camWeights", "extra"].includes(k));
  $("meta").innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td>${v === null ? "null" : v}</td></tr>`).join("");
  $("threshold").value = detector.threshold;
  return ms;
}

async function decode(blob) {
  const bitmap = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const { data, width, height } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { data, width, height, channels: 4, bitmap };
}

function colour(v) { // dark blue -> cyan -> yellow -> red, as the Python overlays
  const stops = [[0, 0, 89], [0, 115, 255], [26, 230, 230], [255, 242, 51], [255, 115, 0], [204, 0, 0]];
  const x = Math.min(Math.max(v, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return stops[i].map((a, k) => a * (1 - f) + stops[i + 1][k] * f);
}

function draw(image, p) {
  const canvas = $("view");
  const scale = Math.max(1, Math.floor(512 / Math.max(image.width, image.height)));
  canvas.width = image.width * scale;
  canvas.height = image.height * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const camImg = detector.camImage(p);
  let lo = Infinity, hi = -Infinity;
  for (const v of camImg) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const out = new ImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    const v = hi - lo > 1e-12 ? (camImg[i] - lo) / (hi - lo) : 0;
    const a = 0.45 * Math.min(Math.max(v, 0.15), 1);
    const c = colour(v);
    for (let k = 0; k < 3; k++) out.data[4 * i + k] = image.data[4 * i + k] * (1 - a) + c[k] * a;
    out.data[4 * i + 3] = 255;
  }
  const tmp = new OffscreenCanvas(image.width, image.height);
  tmp.getContext("2d").putImageData(out, 0, 0);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  for (const b of p.boxes) ctx.strokeRect(b.x0 * scale, b.y0 * scale, (b.x1 - b.x0) * scale, (b.y1 - b.y0) * scale);
}

async function run(blob, name) {
  if (!detector) return;
  $("error").textContent = "";
  const t0 = performance.now();
  const image = await decode(blob);
  const decodeMs = performance.now() - t0;
  lastImage = { blob, name };
  if ($("threshold").value) detector.rule = { ...detector.rule, threshold: Number($("threshold").value) };
  detector.rule = { ...detector.rule, views: $("views").value };
  const p = await detector.predict(image);
  const timings = { decode: decodeMs, ...p.timings_ms };
  const t1 = performance.now();
  draw(image, p);
  timings.draw = performance.now() - t1;
  $("prob").innerHTML = `<span class="${p.isShip ? "ship" : "noship"}">P(ship) = ${p.probability.toFixed(3)}</span>`;
  $("timings").innerHTML = Object.entries(timings).map(([k, v]) => `<tr><th>${k}</th><td>${v.toFixed(2)}</td></tr>`).join("");
  $("boxes").innerHTML = "<tr><th>x</th><th>y</th><th>box</th><th>p</th></tr>" + p.boxes.map((b) => `<tr><td>${b.x.toFixed(1)}</td><td>${b.y.toFixed(1)}</td><td>${b.x0.toFixed(0)},${b.y0.toFixed(0)}–${b.x1.toFixed(0)},${b.y1.toFixed(0)}</td><td>${b.probability.toFixed(3)}</td></tr>`).join("");
  const record = { ...predictionRecord(name, p), engine: detector.engine, threads: THREADS, cam: Array.from(p.cam.data), timings_ms: timings };
  if (params.has("bench")) record.bench = await bench(image, Number(params.get("bench")));
  $("result").textContent = JSON.stringify(record);
  $("result").dataset.state = "done";
  status(`${name}: ${image.width}x${image.height} px`);
}

// ?bench=N: N more predictions of the same image, per-stage medians in wall time (benchmarks/js_latency.py).
async function bench(image, runs) {
  const stages = { preprocess: [], inference: [], cam: [], total: [] };
  for (let i = 0; i < runs + 3; i++) {
    const t0 = performance.now();
    const p = await detector.predict(image);
    if (i < 3) continue; // warm-up
    stages.total.push(performance.now() - t0);
    for (const k of ["preprocess", "inference", "cam"]) stages[k].push(p.timings_ms[k]);
  }
  const median = (v) => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  return { runs, threads: THREADS, cross_origin_isolated: self.crossOriginIsolated, median_ms: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, median(v)])) };
}

$("image").addEventListener("change", (e) => e.target.files[0] && run(e.target.files[0], e.target.files[0].name).catch(fail));
$("model").addEventListener("change", async (e) => {
  const f = e.target.files[0];
  if (!f) return;
  try {
    await loadModel(new Uint8Array(await f.arrayBuffer()), f.name);
    if (lastImage) await run(lastImage.blob, lastImage.name);
  } catch (err) { fail(err); }
});
for (const id of ["threshold", "views"]) $(id).addEventListener("change", () => lastImage && run(lastImage.blob, lastImage.name).catch(fail));
if (params.has("views")) $("views").value = params.get("views");
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const f = e.dataTransfer.files[0];
  if (f && /\.(onnx|tflite)$/i.test(f.name)) f.arrayBuffer().then((b) => loadModel(new Uint8Array(b), f.name)).catch(fail);
  else if (f) run(f, f.name).catch(fail);
});

(async () => {
  try {
    await loadModel(params.get("model") || "../../tests/fixtures/tiny_fp32.onnx", (params.get("model") || "tiny_fp32.onnx").split("/").pop());
    const imageUrl = params.get("image") || "../../conformance/images/ship_64.png";
    const res = await fetch(imageUrl);
    await run(await res.blob(), imageUrl.split("/").pop());
  } catch (e) { fail(e); }
})();
