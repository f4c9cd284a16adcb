#!/usr/bin/env node
// shipcam-js predict MODEL IMAGE... : one JSON line per image, the keys of `shipcam predict`'s predictions.jsonl.
// Unreadable images are reported on stderr and make the exit status 1, after the rest (as gzip and cp do).

import { Detector, VIEWS, predictionRecord } from "../src/index.mjs";
import { readImage } from "../src/image.mjs";

const USAGE = "usage: shipcam-js predict MODEL.onnx IMAGE... [--threads N] [--threshold P] [--views none|flip|rot4|d4] [--gsd M_PER_PX]";

async function main(argv) {
  const [command, ...rest] = argv;
  if (command !== "predict") {
    console.error(command ? `shipcam-js: unknown command '${command}'\n${USAGE}` : USAGE);
    return 2;
  }
  const opts = { threads: 1 };
  const rule = {};
  const positional = [];
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === "--threads") opts.threads = Number(rest[++i]);
    else if (rest[i] === "--threshold") opts.threshold = Number(rest[++i]);
    else if (rest[i] === "--views") rule.views = rest[++i];
    else if (rest[i] === "--gsd") opts.gsd = Number(rest[++i]);
    else positional.push(rest[i]);
  }
  if (opts.gsd !== undefined && !(opts.gsd > 0)) {
    console.error(`shipcam-js predict: error: --gsd must be a positive number of metres/pixel, received ${opts.gsd}`);
    return 2;
  }
  if (rule.views !== undefined && !(rule.views in VIEWS)) {
    console.error(`shipcam-js predict: error: --views must be one of ${Object.keys(VIEWS).join(", ")}, received ${rule.views}`);
    return 2;
  }
  const [model, ...images] = positional;
  if (!model || images.length === 0) {
    console.error(USAGE);
    return 2;
  }
  let det;
  try {
    det = await Detector.load(model, opts);
    det.rule = { ...det.rule, ...rule };
  } catch (e) {
    console.error(`shipcam-js predict: error: ${e.message}`);
    return 2;
  }
  let failed = 0;
  for (const file of images) {
    try {
      const p = await det.predict(await readImage(file), { gsd: opts.gsd });
      process.stdout.write(JSON.stringify(predictionRecord(file, p)) + "\n");
    } catch (e) {
      failed++;
      const message = e.message.includes(file) ? e.message : `${file}: ${e.message}`;
      process.stdout.write(JSON.stringify({ file, error: message }) + "\n");
      console.error(`skipping: ${message}`);
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
