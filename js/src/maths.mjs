// The maths of SPEC.md sections 3-5, in plain JavaScript: preprocessing, the CAM,
// bilinear resizing with half-pixel centres, and the peak detection rule.
// Maps are { data: Float32Array, h, w } (row-major). Arithmetic the Python
// runtime does in float32 is rounded with Math.fround at the same steps, so
// threshold comparisons land on the same cells.

const f32 = Math.fround;

/** A box holds the CAM above half a peak's height over the threshold (SPEC.md section 5, step 5). */
export const BOX_LEVEL = 0.5;

export function sigmoid(x) {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function logit(p) {
  if (!(p > 0 && p < 1)) throw new RangeError(`a probability threshold must be in (0, 1), received ${p}`);
  return Math.log(p / (1 - p));
}

/** RGB(A) bytes (h*w*channels) -> model input (h, w, 3) float32: x = v * scale + offset. */
export function preprocess(pixels, h, w, channels, scale, offset) {
  const out = new Float32Array(h * w * 3);
  const s = f32(scale);
  const o = f32(offset);
  for (let i = 0, j = 0; i < h * w; i++, j += channels) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = f32(f32(pixels[j + c] * s) + o);
  }
  return out;
}

/** cam[i, j] = features[i, j, :] . w + b for one image's features (h, w, C). */
export function classActivationMap(features, h, w, weights, bias) {
  const C = weights.length;
  const cam = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let acc = 0;
    const base = p * C;
    for (let c = 0; c < C; c++) acc += features[base + c] * weights[c];
    cam[p] = f32(acc + f32(bias));
  }
  return { data: cam, h, w };
}

function samplePositions(nIn, nOut) {
  const ratio = f32(nIn / nOut);
  const i0 = new Int32Array(nOut);
  const i1 = new Int32Array(nOut);
  const fr = new Float32Array(nOut);
  for (let k = 0; k < nOut; k++) {
    let pos = f32(f32(f32(k + 0.5) * ratio) - 0.5);
    pos = Math.min(Math.max(pos, 0), nIn - 1);
    const a = Math.floor(pos);
    i0[k] = a;
    i1[k] = Math.min(a + 1, nIn - 1);
    fr[k] = f32(pos - a);
  }
  return [i0, i1, fr];
}

/** Bilinear resize with half-pixel centres (tf.image.resize, antialias=False) of an (h, w, channels) array. */
export function resizeBilinear(data, h, w, outH, outW, channels = 1) {
  if (outH < 1 || outW < 1) throw new RangeError(`output size must be positive, received ${outH}x${outW}`);
  const [y0, y1, fy] = samplePositions(h, outH);
  const [x0, x1, fx] = samplePositions(w, outW);
  const rows = new Float32Array(outH * w * channels);
  for (let r = 0; r < outH; r++) {
    const a = f32(1 - fy[r]);
    for (let q = 0; q < w * channels; q++) {
      rows[r * w * channels + q] = f32(f32(data[y0[r] * w * channels + q] * a) + f32(data[y1[r] * w * channels + q] * fy[r]));
    }
  }
  const out = new Float32Array(outH * outW * channels);
  for (let r = 0; r < outH; r++) {
    for (let k = 0; k < outW; k++) {
      const b = f32(1 - fx[k]);
      for (let c = 0; c < channels; c++) {
        out[(r * outW + k) * channels + c] = f32(f32(rows[(r * w + x0[k]) * channels + c] * b) + f32(rows[(r * w + x1[k]) * channels + c] * fx[k]));
      }
    }
  }
  return out;
}

/** Taps (indices, weights; nOut x k, row-major) of the antialiased triangle kernel, as Python's runtime.resize._triangle_taps. */
function triangleTaps(nIn, nOut) {
  const scale = nIn / nOut;
  const support = Math.max(scale, 1.0);
  const k = Math.ceil(2 * support) + 2;
  const idx = new Int32Array(nOut * k);
  const wt = new Float32Array(nOut * k);
  for (let o = 0; o < nOut; o++) {
    const centre = (o + 0.5) * scale;
    const first = Math.floor(centre - support);
    let total = 0;
    const row = [];
    for (let t = 0; t < k; t++) {
      const i = first + t;
      const w = i < 0 || i >= nIn ? 0 : Math.max(1 - Math.abs(i + 0.5 - centre) / support, 0);
      row.push([i, w]);
      total += w;
    }
    row.forEach(([i, w], t) => {
      idx[o * k + t] = Math.min(Math.max(i, 0), nIn - 1);
      wt[o * k + t] = f32(w / total);
    });
  }
  return { idx, wt, k };
}

/** Antialiased resize (tf.image.resize(antialias=True); SPEC.md section 6) of an (h, w, channels) array: rows, then columns. */
export function resizeAntialiased(data, h, w, outH, outW, channels = 1) {
  if (outH < 1 || outW < 1) throw new RangeError(`output size must be positive, received ${outH}x${outW}`);
  const ty = triangleTaps(h, outH);
  const tx = triangleTaps(w, outW);
  const rows = new Float32Array(outH * w * channels);
  for (let r = 0; r < outH; r++) {
    for (let t = 0; t < ty.k; t++) {
      const wgt = ty.wt[r * ty.k + t];
      if (wgt === 0) continue;
      const src = ty.idx[r * ty.k + t] * w * channels;
      for (let q = 0; q < w * channels; q++) rows[r * w * channels + q] = f32(rows[r * w * channels + q] + f32(data[src + q] * wgt));
    }
  }
  const out = new Float32Array(outH * outW * channels);
  for (let r = 0; r < outH; r++) {
    for (let c = 0; c < outW; c++) {
      for (let t = 0; t < tx.k; t++) {
        const wgt = tx.wt[c * tx.k + t];
        if (wgt === 0) continue;
        const src = (r * w + tx.idx[c * tx.k + t]) * channels;
        for (let ch = 0; ch < channels; ch++) out[(r * outW + c) * channels + ch] = f32(out[(r * outW + c) * channels + ch] + f32(rows[src + ch] * wgt));
      }
    }
  }
  return out;
}

/** Local maxima scoring at least minScore, strongest first (ties in raster order), none within radius cells of a stronger one. */
export function findPeaks(heat, minScore, radiusCells) {
  const { data, h, w } = heat;
  const t = f32(minScore);
  const cand = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x];
      if (!(v >= t)) continue;
      let isMax = true;
      for (let dy = -1; dy <= 1 && isMax; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && data[yy * w + xx] > v) {
            isMax = false;
            break;
          }
        }
      }
      if (isMax) cand.push(y * w + x);
    }
  }
  cand.sort((a, b) => data[b] - data[a] || a - b);
  const r = Math.max(radiusCells, 0);
  const kept = [];
  for (const flat of cand) {
    const y = Math.floor(flat / w);
    const x = flat % w;
    if (kept.some(([ky, kx]) => Math.abs(ky - y) <= Math.floor(r) && Math.abs(kx - x) <= Math.floor(r) && (ky - y) ** 2 + (kx - x) ** 2 <= r * r)) continue;
    kept.push([y, x, data[flat]]);
  }
  return kept;
}

/** Cell extent [y0, x0, y1, x1] (inclusive) of the 4-connected cells >= level holding (y, x), inside the window. */
function grow(heat, y, x, level, hy, hx) {
  const { data, h, w } = heat;
  const wy0 = Math.max(0, y - hy);
  const wy1 = Math.min(h, y + hy + 1);
  const wx0 = Math.max(0, x - hx);
  const wx1 = Math.min(w, x + hx + 1);
  const lv = f32(level);
  const seen = new Set([y * w + x]);
  const stack = [[y, x]];
  let [ya, xa, yb, xb] = [y, x, y, x];
  while (stack.length) {
    const [cy, cx] = stack.pop();
    ya = Math.min(ya, cy); yb = Math.max(yb, cy); xa = Math.min(xa, cx); xb = Math.max(xb, cx);
    for (const [ny, nx] of [[cy + 1, cx], [cy - 1, cx], [cy, cx + 1], [cy, cx - 1]]) {
      if (ny < wy0 || ny >= wy1 || nx < wx0 || nx >= wx1) continue;
      const k = ny * w + nx;
      if (seen.has(k) || !(data[k] >= lv)) continue;
      seen.add(k);
      stack.push([ny, nx]);
    }
  }
  return [ya, xa, yb, xb];
}

/**
 * Detections in a map of CAM scores whose cells are cell = [cy, cx] image pixels at gsd m/px (SPEC.md section 5,
 * steps 3-6). rule: { threshold, nms_radius_m, max_length_m }; imageSize [H, W].
 */
export function detect(heat, cell, gsd, rule, imageSize, minScore = null) {
  const [cy, cx] = cell;
  if (!(gsd > 0)) throw new RangeError(`gsd must be positive metres/pixel, received ${gsd}`);
  const t = minScore === null ? logit(rule.threshold) : minScore;
  const c = Math.sqrt(cy * cx);
  const peaks = findPeaks(heat, t, rule.nms_radius_m / gsd / c);
  const [H, W] = imageSize;
  const hy = Math.max(0, Math.trunc(rule.max_length_m / gsd / cy / 2 - 0.5));
  const hx = Math.max(0, Math.trunc(rule.max_length_m / gsd / cx / 2 - 0.5));
  return peaks.map(([y, x, s]) => {
    const level = t + BOX_LEVEL * (s - t);
    const [gy0, gx0, gy1, gx1] = grow(heat, y, x, level, hy, hx);
    return {
      x: Math.min((x + 0.5) * cx, W),
      y: Math.min((y + 0.5) * cy, H),
      x0: gx0 * cx,
      y0: gy0 * cy,
      x1: Math.min((gx1 + 1) * cx, W),
      y1: Math.min((gy1 + 1) * cy, H),
      score: s,
      probability: sigmoid(s),
    };
  });
}

/** predict's boxes (SPEC.md section 5): the rule on the CAM upsampled 4x, at least the strongest peak. */
export function detectInCam(cam, imageSize, gsd, rule) {
  const [H, W] = imageSize;
  const gh = Math.min(H, cam.h * 4);
  const gw = Math.min(W, cam.w * 4);
  const grid = { data: resizeBilinear(cam.data, cam.h, cam.w, gh, gw), h: gh, w: gw };
  const cell = [H / gh, W / gw];
  const found = detect(grid, cell, gsd, rule, imageSize);
  if (found.length) return found;
  let top = -Infinity;
  for (const v of grid.data) top = Math.max(top, v);
  return detect(grid, cell, gsd, rule, imageSize, top).slice(0, 1);
}

/** The views of each image (SPEC.md section 6): [quarter turns, mirrored] pairs, the image itself first. */
export const VIEWS = {
  none: [[0, false]],
  flip: [[0, false], [0, true]],
  rot4: [[0, false], [1, false], [2, false], [3, false]],
  d4: [0, 1, 2, 3].map((k) => [k, false]).concat([0, 1, 2, 3].map((k) => [k, true])),
};

/** An (h, w, channels) array turned `turns` quarter turns counter-clockwise (numpy's rot90 on axes 0-1) -> { data, h, w }. */
function turn(data, h, w, channels, turns) {
  const k = ((turns % 4) + 4) % 4;
  if (k === 0) return { data, h, w };
  const [oh, ow] = k === 2 ? [h, w] : [w, h];
  const out = new data.constructor(data.length);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      // the source pixel of out[i, j]: k = 1 in[j, w-1-i]; k = 2 in[h-1-i, w-1-j]; k = 3 in[h-1-j, i]
      const [y, x] = k === 1 ? [j, w - 1 - i] : k === 2 ? [h - 1 - i, w - 1 - j] : [h - 1 - j, i];
      const src = (y * w + x) * channels;
      const dst = (i * ow + j) * channels;
      for (let c = 0; c < channels; c++) out[dst + c] = data[src + c];
    }
  }
  return { data: out, h: oh, w: ow };
}

function mirror(data, h, w, channels) {
  const out = new data.constructor(data.length);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const src = (i * w + (w - 1 - j)) * channels;
      const dst = (i * w + j) * channels;
      for (let c = 0; c < channels; c++) out[dst + c] = data[src + c];
    }
  }
  return out;
}

/** A view of an (h, w, channels) array: mirrored left-right first (when asked), then turned -> { data, h, w }. */
export function applyView(data, h, w, channels, turns, mirrored) {
  return turn(mirrored ? mirror(data, h, w, channels) : data, h, w, channels, turns);
}

/** The inverse of applyView: a map computed on a view of an (h, w) image, back in the image's orientation. */
export function undoView(data, h, w, channels, turns, mirrored) {
  const back = turn(data, h, w, channels, -turns);
  return mirrored ? { ...back, data: mirror(back.data, back.h, back.w, channels) } : back;
}
