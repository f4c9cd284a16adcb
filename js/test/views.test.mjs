// Test-time views in JavaScript against numpy's rot90 and fliplr, written out by hand.

import { test } from "node:test";
import assert from "node:assert/strict";

import { VIEWS, applyView, undoView } from "../src/index.mjs";

const m = Float32Array.from([0, 1, 2, 3, 4, 5]); // [[0, 1, 2], [3, 4, 5]]: 2 rows, 3 columns

test("a quarter turn and a mirror are numpy's rot90 and fliplr", () => {
  const quarter = applyView(m, 2, 3, 1, 1, false); // np.rot90(m) = [[2, 5], [1, 4], [0, 3]]
  assert.deepEqual([quarter.h, quarter.w, Array.from(quarter.data)], [3, 2, [2, 5, 1, 4, 0, 3]]);
  const half = applyView(m, 2, 3, 1, 2, false); // np.rot90(m, 2) = [[5, 4, 3], [2, 1, 0]]
  assert.deepEqual(Array.from(half.data), [5, 4, 3, 2, 1, 0]);
  const three = applyView(m, 2, 3, 1, 3, false); // np.rot90(m, 3) = [[3, 0], [4, 1], [5, 2]]
  assert.deepEqual(Array.from(three.data), [3, 0, 4, 1, 5, 2]);
  const mirrored = applyView(m, 2, 3, 1, 1, true); // np.rot90(np.fliplr(m)) = [[0, 3], [1, 4], [2, 5]]
  assert.deepEqual(Array.from(mirrored.data), [0, 3, 1, 4, 2, 5]);
});

test("the 8 views of d4 are distinct, keep each pixel's channels together, and are undone exactly", () => {
  const rgb = Float32Array.from({ length: 2 * 3 * 3 }, (_, i) => i); // 2 x 3 pixels, 3 channels
  const seen = new Set();
  for (const [k, mirrored] of VIEWS.d4) {
    const v = applyView(rgb, 2, 3, 3, k, mirrored);
    for (let p = 0; p < 6; p++) assert.equal(v.data[3 * p + 1] - v.data[3 * p], 1); // channels stay in order
    seen.add(Array.from(v.data).join(","));
    const back = undoView(v.data, v.h, v.w, 3, k, mirrored);
    assert.deepEqual([back.h, back.w, Array.from(back.data)], [2, 3, Array.from(rgb)]);
  }
  assert.equal(seen.size, 8);
  assert.deepEqual(VIEWS.flip, [[0, false], [0, true]]);
});
