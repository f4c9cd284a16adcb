// Detector: a shipcam ONNX file run with ONNX Runtime (onnxruntime-node in Node,
// onnxruntime-web in the browser), the metadata read from the file itself, the
// CAM and boxes computed here (SPEC.md). Mirrors Python's shipcam.runtime.Detector.

import { readMetadata, ModelFileError } from "./metadata.mjs";
import { VIEWS, applyView, classActivationMap, detectInCam, preprocess, resizeAntialiased, resizeBilinear, sigmoid, undoView } from "./maths.mjs";

export const DEFAULT_GSD = 3.0;
// The rule's defaults for predict (SPEC.md section 5); tests hold them to the conformance vectors' `rule` block,
// which conformance/make_vectors.py writes from Python's DetectionRule.
export const DEFAULT_RULE = { nms_radius_m: 150, max_length_m: 400, views: "none" };

const now = () => (globalThis.performance ? performance.now() : Date.now());

async function loadBytes(pathOrUrl) {
  if (pathOrUrl instanceof Uint8Array) return pathOrUrl;
  if (pathOrUrl instanceof ArrayBuffer) return new Uint8Array(pathOrUrl);
  const isUrl = /^(https?|blob|data):/.test(String(pathOrUrl)) || typeof window !== "undefined";
  if (isUrl) {
    const res = await fetch(pathOrUrl);
    if (!res.ok) throw new ModelFileError(`${pathOrUrl}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const { readFile } = await import("node:fs/promises");
  try {
    return new Uint8Array(await readFile(pathOrUrl));
  } catch (e) {
    throw new ModelFileError(`${pathOrUrl}: ${e.code === "ENOENT" ? "no such model file" : e.message}`);
  }
}

async function defaultOrt() {
  if (typeof window === "undefined") return import("onnxruntime-node");
  throw new Error("in the browser, pass { ort } (the onnxruntime-web module) to Detector.load");
}

// One forward pass -> { logits: Float32Array, features: Float32Array, dims: [1, h, w, C] }, by engine.

/** An .onnx file on ONNX Runtime (node or web). */
class OrtSession {
  static async create(ort, bytes, name, threads) {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    requireOutputs(name, session.outputNames);
    return new OrtSession(ort, session);
  }

  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
    this.fixedSize = null;
  }

  async run(x, h, w) {
    const out = await this.session.run({ [this.session.inputNames[0]]: new this.ort.Tensor("float32", x, [1, h, w, 3]) });
    return { logits: out.logits.data, features: out.features.data, dims: out.features.dims };
  }
}

/**
 * A .tflite file on LiteRT.js (@litertjs/core, browsers only: it loads its WebAssembly through the DOM).
 * Outputs are addressed by the signature's names, never by position; the input size is the file's own
 * (LiteRT.js cannot resize inputs, which the Python runtime does), so other sizes are refused.
 */
class LiteRtSession {
  static async create(litert, bytes, name) {
    const model = await litert.loadAndCompile(bytes, { accelerator: "wasm" });
    const signature = model.signatures.serving_default || Object.values(model.signatures)[0] || model;
    requireOutputs(name, signature.getOutputDetails().map((d) => d.name));
    const input = signature.getInputDetails()[0];
    return new LiteRtSession(litert, signature, input.name, Array.from(input.shape));
  }

  constructor(litert, signature, inputName, inputShape) {
    this.litert = litert;
    this.signature = signature;
    this.inputName = inputName;
    const [, h, w] = inputShape;
    this.fixedSize = h > 0 && w > 0 ? [h, w] : null;
  }

  async run(x, h, w) {
    const input = new this.litert.Tensor(x, [1, h, w, 3]);
    try {
      const out = await this.signature.run({ [this.inputName]: input });
      try {
        return { logits: out.logits.toTypedArray(), features: out.features.toTypedArray(), dims: Array.from(out.features.type.layout.dimensions) };
      } finally {
        for (const t of Object.values(out)) t.delete();
      }
    } finally {
      input.delete();
    }
  }
}

function requireOutputs(name, names) {
  for (const out of ["logits", "features"]) {
    if (!names.includes(out)) {
      throw new ModelFileError(`${name}: lacks output '${out}'; found ${names.join(", ")} (export with \`shipcam export\`)`);
    }
  }
}

export class Detector {
  /**
   * Open a .onnx file (a path in Node, a URL or bytes anywhere), or in a browser a .tflite file.
   * options: { threads = 1, ort (an onnxruntime module), litert (the @litertjs/core module, loaded:
   * loadLiteRt called; for .tflite), name (for bytes), threshold }
   */
  static async load(pathOrUrl, options = {}) {
    const name = options.name || (typeof pathOrUrl === "string" ? pathOrUrl : "model.onnx");
    const tflite = /\.tflite$/i.test(name);
    if (tflite && !options.litert) {
      throw new ModelFileError(`${name}: .tflite files run through LiteRT.js, which works in browsers only (pass { litert }); in Node use the .onnx export`);
    }
    const bytes = await loadBytes(pathOrUrl);
    const metadata = readMetadata(bytes, name);
    const threads = options.threads ?? 1;
    const session = tflite ? await LiteRtSession.create(options.litert, bytes, name) : await OrtSession.create(options.ort || (await defaultOrt()), bytes, name, threads);
    return new Detector(session, metadata, { name, threads, threshold: options.threshold, engine: tflite ? "litert.js" : "onnxruntime" });
  }

  constructor(session, metadata, { name, threads, threshold, engine }) {
    this.engine = engine;
    this.session = session;
    this.metadata = metadata;
    this.name = name;
    this.threads = threads;
    this.gsd = metadata.gsd || DEFAULT_GSD;
    this.gsdRange = metadata.gsd_range || [this.gsd, this.gsd];  // images inside it run as they are
    this.rule = { ...DEFAULT_RULE, threshold: threshold ?? metadata.threshold };
  }

  get threshold() {
    return this.rule.threshold;
  }

  /** The metres/pixel an image of `gsd` runs at: its own inside the model's range (1% either side), else the nearer bound. */
  workingGsd(gsd) {
    if (gsd === undefined || gsd === null) return this.gsd;
    if (!(gsd > 0)) throw new RangeError(`gsd must be positive metres/pixel, received ${gsd}`);
    const [lo, hi] = this.gsdRange;
    return lo * 0.99 <= gsd && gsd <= hi * 1.01 ? gsd : Math.min(Math.max(gsd, lo), hi);
  }

  /**
   * image: { data: Uint8Array|Uint8ClampedArray (RGB or RGBA bytes, row-major), width, height, channels = 4 }.
   * options: { gsd } the image's metres/pixel: outside the model's range it is first resampled to the nearer bound
   * (antialiased, as Python's), and boxes come back in the image's own pixels.
   * Returns { probability, logit, isShip, cam: {data, h, w}, boxes, timings_ms }.
   */
  async predict(image, { gsd } = {}) {
    const { width: W0, height: H0 } = image;
    const channels = image.channels || Math.round(image.data.length / (W0 * H0));
    if (!(channels === 3 || channels === 4) || image.data.length !== W0 * H0 * channels) {
      throw new RangeError(`expected ${W0}x${H0} RGB or RGBA bytes, received ${image.data.length} bytes`);
    }
    const work = this.workingGsd(gsd);
    const factor = gsd === undefined || gsd === null ? 1 : gsd / work;
    if (factor !== 1) {
      const H = Math.max(1, Math.round(H0 * factor));
      const W = Math.max(1, Math.round(W0 * factor));
      const rgb = new Float32Array(H0 * W0 * 3);
      for (let i = 0; i < H0 * W0; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = image.data[channels * i + c];
      const p = await this.#predictAt({ data: resizeAntialiased(rgb, H0, W0, H, W, 3), width: W, height: H, channels: 3 }, work);
      const s = (v) => v / factor;
      p.boxes = p.boxes.map((b) => ({ ...b, x: s(b.x), y: s(b.y), x0: s(b.x0), y0: s(b.y0), x1: s(b.x1), y1: s(b.y1) }));
      p.imageSize = [H0, W0];
      return p;
    }
    return this.#predictAt(image, work);
  }

  async #predictAt(image, gsd) {
    const { width: W, height: H } = image;
    const channels = image.channels || Math.round(image.data.length / (W * H));
    const m = this.metadata;
    if (m.input_size === null && (H < m.feature_stride || W < m.feature_stride)) {
      throw new RangeError(`image is ${W}x${H} px; this model needs at least ${m.feature_stride}x${m.feature_stride} (its feature stride)`);
    }
    const views = VIEWS[this.rule.views ?? "none"];
    if (!views) throw new RangeError(`rule.views must be one of ${Object.keys(VIEWS).join(", ")}, received ${this.rule.views}`);
    const fixed = this.session.fixedSize;
    if (fixed && fixed[0] !== fixed[1] && views.some(([k]) => k % 2)) {
      throw new RangeError(`views '${this.rule.views}' turn images by 90 degrees, which needs a square input; this model's fixed input is ${fixed[0]}x${fixed[1]}: use views 'flip' or 'none'`);
    }
    const t0 = now();
    const x = preprocess(image.data, H, W, channels, m.input_scale, m.input_offset);
    const t1 = now();
    const plain = await this.#forward(x, H, W);
    const others = views.slice(1);
    let logitSum = 0;
    let camSum = null;
    for (const [k, mirrored] of others) {  // each view of the image, as Python: turned before any resize
      const v = applyView(x, H, W, 3, k, mirrored);
      const out = await this.#forward(v.data, v.h, v.w);
      const cam = undoView(out.cam.data, out.cam.h, out.cam.w, 1, k, mirrored);
      logitSum += out.logit;
      camSum = camSum ? addF32(camSum, cam.data) : cam.data;
    }
    const t2 = now();
    const n = others.length + 1;
    const logitValue = n === 1 ? plain.logit : (logitSum + plain.logit) / n;
    const cam = n === 1 ? plain.cam : { ...plain.cam, data: addF32(camSum, plain.cam.data).map((v) => Math.fround(v / n)) };
    const probability = sigmoid(logitValue);
    const isShip = probability >= this.threshold;
    const boxes = isShip ? detectInCam(cam, [H, W], gsd, this.rule) : [];
    const t3 = now();
    return {
      probability,
      logit: logitValue,
      isShip,
      cam,
      imageSize: [H, W],
      boxes,
      timings_ms: { preprocess: t1 - t0, inference: t2 - t1, cam: t3 - t2 },
    };
  }

  /** One forward pass of a preprocessed (h, w, 3) image, resized to the file's input size if it has one -> { logit, cam }. */
  async #forward(x, h, w) {
    const m = this.metadata;
    if (m.input_size !== null && (h !== m.input_size || w !== m.input_size)) {
      x = resizeBilinear(x, h, w, m.input_size, m.input_size, 3);
      [h, w] = [m.input_size, m.input_size];
    }
    const fixed = this.session.fixedSize;
    if (fixed && (h !== fixed[0] || w !== fixed[1])) {  // the Python runtime resizes the input tensor; LiteRT.js cannot
      throw new RangeError(`${this.name}: LiteRT.js runs this file at ${fixed[1]}x${fixed[0]} px only, received ${w}x${h}; use the .onnx export for other sizes`);
    }
    const out = await this.session.run(x, h, w);
    const [, fh, fw, C] = out.dims;
    if (C !== m.feature_channels) throw new ModelFileError(`${this.name}: features have ${C} channels, metadata says ${m.feature_channels}`);
    return { logit: out.logits[0], cam: classActivationMap(out.features, fh, fw, m.camWeights, m.cam_bias) };
  }

  /** The CAM at image size (bilinear, half-pixel centres), for overlays. */
  camImage(prediction) {
    const [H, W] = prediction.imageSize;
    return resizeBilinear(prediction.cam.data, prediction.cam.h, prediction.cam.w, H, W);
  }
}

/** a + b elementwise in float32, as numpy adds float32 maps. */
function addF32(a, b) {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.fround(a[i] + b[i]);
  return out;
}

const r = (v, d) => Math.round(v * 10 ** d) / 10 ** d;

/** The JSON line of `shipcam predict`'s predictions.jsonl: file, probability, logit, is_ship, boxes. */
export function predictionRecord(file, p) {
  return {
    file,
    probability: r(p.probability, 6),
    logit: r(p.logit, 6),
    is_ship: p.isShip,
    boxes: p.boxes.map((b) => ({ x: r(b.x, 2), y: r(b.y, 2), x0: r(b.x0, 2), y0: r(b.y0, 2), x1: r(b.x1, 2), y1: r(b.y1, 2), score: r(b.score, 4), probability: r(b.probability, 6) })),
    cam_shape: [p.cam.h, p.cam.w],
    timings_ms: Object.fromEntries(Object.entries(p.timings_ms).map(([k, v]) => [k, r(v, 3)])),
  };
}
