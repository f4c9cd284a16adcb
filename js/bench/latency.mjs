#!/usr/bin/env node
// Latency of Detector.predict in Node (onnxruntime-node, 1 thread):
//   node js/bench/latency.mjs MODEL.onnx IMAGE.png [--runs 30] [--threads 1]
// Prints the median of each stage over --runs calls (after 3 warm-up calls) and a JSON line.
// Compare with Python: python -m shipcam.benchmarks.js_latency MODEL IMAGE (same file, same image).

import os from "node:os";
import { Detector } from "../src/index.mjs";
import { readImage } from "../src/image.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const [model, imagePath] = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
const runs = opt("--runs", 30);
const threads = opt("--threads", 1);

const det = await Detector.load(model, { threads });
const image = await readImage(imagePath);
for (let i = 0; i < 3; i++) await det.predict(image);
const stages = { preprocess: [], inference: [], cam: [], total: [] };
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const p = await det.predict(image);
  stages.total.push(performance.now() - t0);
  for (const k of ["preprocess", "inference", "cam"]) stages[k].push(p.timings_ms[k]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, median(v)]));
console.log(`${model} on ${imagePath} (${image.width}x${image.height}), node ${process.version}, onnxruntime-node, ${threads} thread(s), ${runs} runs, ${os.cpus()[0].model}`);
console.log("| stage | median ms |\n|---|---:|");
for (const [k, v] of Object.entries(row)) console.log(`| ${k} | ${v.toFixed(2)} |`);
console.log(JSON.stringify({ runtime: "node", model, image: imagePath, size: [image.height, image.width], threads, runs, median_ms: row }));
