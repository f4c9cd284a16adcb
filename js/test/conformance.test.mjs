// The JavaScript runtime against conformance/vectors.json (SPEC.md section 8): the same vectors
// the Python runtime is checked against in tests/test_conformance.py.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Detector, readMetadata, parseMetadata, ModelFileError, FORMAT_VERSION, DEFAULT_RULE, BOX_LEVEL, resizeBilinear, detectInCam, tfliteMetadataEntries } from "../src/index.mjs";
import { readImage } from "../src/image.mjs";

const HERE = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "conformance");
const V = JSON.parse(readFileSync(join(HERE, "vectors.json"), "utf8"));
const T = V.tolerances;

for (const [model, expected] of Object.entries(V.metadata)) {
  test(`metadata read from ${model} is the vectors'`, () => {
    const got = readMetadata(new Uint8Array(readFileSync(join(HERE, model))), model);
    const { camWeights, ...doc } = got;
    assert.deepEqual(doc, expected);
    assert.equal(camWeights.length, expected.feature_channels);
  });
}

test("paths in the vectors are relative to their folder (SPEC.md section 8)", () => {
  const paths = new Set([...Object.keys(V.metadata), ...V.cases.map((c) => c.model), ...V.cases.map((c) => c.image)]);
  for (const p of paths) {
    assert.ok(!p.startsWith("/"), p);
    assert.ok(existsSync(join(HERE, p)), p);
  }
});

const detectors = {};
for (const c of V.cases.filter((c) => c.model.endsWith(".onnx"))) {
  test(`${c.model.split("/").pop()} ${c.image} at threshold ${c.threshold}, views ${c.views}${c.gsd ? `, ${c.gsd} m/px` : ""}`, async () => {
    detectors[c.model] ??= await Detector.load(join(HERE, c.model), { threads: 1 });
    const det = detectors[c.model];
    det.rule = { ...det.rule, ...V.rule, threshold: c.threshold, views: c.views };
    const p = await det.predict(await readImage(join(HERE, c.image)), { gsd: c.gsd });
    assert.ok(Math.abs(p.probability - c.probability) <= T.probability_abs, `probability ${p.probability} vs ${c.probability}`);
    assert.ok(Math.abs(p.logit - c.logit) <= T.logit_abs);
    assert.equal(p.isShip, c.is_ship);
    assert.deepEqual([p.cam.h, p.cam.w], c.cam_shape);
    const flat = c.cam.flat();
    const range = Math.max(...flat) - Math.min(...flat);
    const err = Math.max(...flat.map((v, i) => Math.abs(v - p.cam.data[i])));
    assert.ok(err <= T.cam_rel * Math.max(range, 1e-6), `CAM error ${err} over range ${range}`);
    assert.equal(p.boxes.length, c.boxes.length, "number of detections");
    p.boxes.forEach((b, i) => i === 0 || assert.ok(b.score <= p.boxes[i - 1].score, "strongest first"));
    p.boxes.forEach((b, i) => {
      for (const k of ["x", "y", "x0", "y0", "x1", "y1"]) assert.ok(Math.abs(b[k] - c.boxes[i][k]) <= T.box_abs_px, `${k}: ${b[k]} vs ${c.boxes[i][k]}`);
      assert.ok(Math.abs(b.score - c.boxes[i].score) <= T.logit_abs);
    });
  });
}

for (const c of V.resize_bilinear) {
  test(`bilinear resize ${c.in.length}x${c.in[0].length} -> ${c.out_shape.join("x")} is exact to the float32 bit, the height first (SPEC.md section 4)`, () => {
    const got = resizeBilinear(Float32Array.from(c.in.flat()), c.in.length, c.in[0].length, ...c.out_shape);
    assert.deepEqual(Array.from(got), Array.from(Float32Array.from(c.out.flat())));
  });
}

for (const c of V.detect_in_cam) {
  test(`detection rule on a given CAM: ${c.name} (SPEC.md section 5)`, () => {
    const cam = { data: Float32Array.from(c.cam.flat()), h: c.cam.length, w: c.cam[0].length };
    const got = detectInCam(cam, c.image_size, c.gsd, { ...V.rule, ...c.rule });
    assert.equal(got.length, c.boxes.length, "number of detections");
    got.forEach((b, i) => {
      for (const k of ["x", "y", "x0", "y0", "x1", "y1"]) assert.ok(Math.abs(b[k] - c.boxes[i][k]) <= T.box_abs_px, `${i} ${k}: ${b[k]} vs ${c.boxes[i][k]}`);
      assert.ok(Math.abs(b.score - c.boxes[i].score) <= T.logit_abs);
    });
  });
}

test("TFLite metadata at the field numbers of SPEC.md section 2 (Buffer.data and Buffer.offset/size)", () => {
  const layout = V.tflite_metadata_layout;
  const entries = tfliteMetadataEntries(new Uint8Array(Buffer.from(layout.file_base64, "base64")));
  const text = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, new TextDecoder().decode(v)]));
  assert.deepEqual(text, layout.entries);
});

test("the JavaScript rule's defaults are Python's DetectionRule (the vectors' rule block)", () => {
  for (const [k, v] of Object.entries(DEFAULT_RULE)) assert.equal(v, V.rule[k], `DEFAULT_RULE.${k}`);
  const scansOnly = ["isolation", "confirm_views"]; // predict has no scene to check, nothing to confirm
  for (const k of Object.keys(V.rule)) assert.ok(k in DEFAULT_RULE || k === "threshold" || scansOnly.includes(k), `Python's rule field ${k} is missing from DEFAULT_RULE`);
  assert.equal(BOX_LEVEL, V.box_level);
});

test("a reader refuses what SPEC.md section 7 says it must", async () => {
  const model = Object.keys(V.metadata)[0];
  const good = V.metadata[model];
  const bad = (change, pattern) => {
    const d = structuredClone(good);
    change(d);
    assert.throws(() => parseMetadata(JSON.stringify(d), "m.onnx"), (e) => e instanceof ModelFileError && pattern.test(e.message));
  };
  bad((d) => delete d.cam_bias, /m\.onnx: .*missing required key 'cam_bias'/);
  bad((d) => (d.pooling = "sum"), /pooling must be max or avg, received sum/);
  bad((d) => (d.format_version = FORMAT_VERSION + 1), /newer than this reader/);
  bad((d) => (d.gsd_range = [1.5]), /gsd_range must be null or \[min, max\]/);
  bad((d) => (d.gsd_range = [0, 3]), /gsd_range must be null or \[min, max\]/);
  bad((d) => (d.cam_weights = "AAAA"), /cam_weights holds 3 bytes; 1280 float32 channels need 5120/);
  bad((d) => (d.threshold = 1), /threshold must be in \(0, 1\)/);
  assert.throws(() => readMetadata(new Uint8Array([1, 2, 3]), "x.tflite"), /x\.tflite: not a readable model file/);
  // LiteRT.js needs a DOM (it loads its WebAssembly with a <script>): in Node a .tflite says where it runs.
  await assert.rejects(Detector.load(join(HERE, "..", "tests", "fixtures", "tiny_int8.tflite")), (e) => e instanceof ModelFileError && /\.tflite files run through LiteRT\.js, which works in browsers only/.test(e.message));
  const extra = { ...good, added_later: 1 };
  assert.equal(parseMetadata(JSON.stringify(extra)).feature_channels, good.feature_channels); // unknown keys ignored
});

test("shipcam-js predict prints predict's keys and exits 1 on an unreadable image", async () => {
  const { spawnSync } = await import("node:child_process");
  const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "shipcam-js.mjs");
  const c = V.cases.find((k) => k.model.endsWith(".onnx") && k.threshold === 0.2 && k.views === "none"); // the default rule
  // the image relative to the working directory: `file` is the path as given (SPEC.md section 5)
  const r = spawnSync(process.execPath, [bin, "predict", join(HERE, c.model), c.image, "missing.png", "--threshold", "0.2"], { encoding: "utf8", timeout: 60000, cwd: HERE });
  assert.equal(r.status, 1, r.stderr);
  const [line, bad] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(line).slice(0, 5), ["file", "probability", "logit", "is_ship", "boxes"]);
  assert.equal(line.file, c.image);
  assert.ok(line.boxes.length > 1); // the order below is not vacuous
  const decimals = { x: 2, y: 2, x0: 2, y0: 2, x1: 2, y1: 2, score: 4, probability: 6 };
  line.boxes.forEach((b, i) => {
    assert.deepEqual(Object.keys(b), Object.keys(decimals));
    for (const [k, d] of Object.entries(decimals)) assert.ok(Math.abs(b[k] * 10 ** d - Math.round(b[k] * 10 ** d)) < 1e-6, `${k} = ${b[k]} has more than ${d} decimals`);
    for (const k of ["x", "y", "x0", "y0", "x1", "y1"]) assert.ok(Math.abs(b[k] - c.boxes[i][k]) <= T.box_abs_px, `${k}: ${b[k]} vs ${c.boxes[i][k]}`);
    assert.ok(i === 0 || b.score <= line.boxes[i - 1].score, "strongest first");
  });
  for (const [k, d] of [["probability", 6], ["logit", 6]]) assert.ok(Math.abs(line[k] * 10 ** d - Math.round(line[k] * 10 ** d)) < 1e-6, k);
  assert.ok(Math.abs(line.probability - c.probability) <= 1e-6 + T.probability_abs);
  assert.equal(line.boxes.length, c.boxes.length);
  assert.match(bad.error, /missing\.png: no such file/);
  assert.match(r.stderr, /skipping: missing\.png: no such file/);
});
