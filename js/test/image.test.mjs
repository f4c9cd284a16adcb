// Image decoding as SPEC.md section 3 says, on 16-bit PNG files written here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PNG } from "pngjs";
import { readImage } from "../src/image.mjs";

function png16(values, colorType, channels) {
  const png = new PNG({ width: values.length, height: 1, bitDepth: 16, colorType, inputColorType: colorType, inputHasAlpha: colorType === 6 || colorType === 4 });
  png.data = new Uint16Array(values.flatMap((v) => Array(channels).fill(v)));
  const path = join(mkdtempSync(join(tmpdir(), "shipcam-")), "a.png");
  writeFileSync(path, PNG.sync.write(png, { bitDepth: 16, colorType, inputColorType: colorType, inputHasAlpha: colorType === 6 || colorType === 4 }));
  return path;
}

test("a 16-bit grey image is scaled from 0..4095 when it fits in 12 bits, else from 0..65535", async () => {
  const twelve = [0, 1000, 2047, 4095];
  let img = await readImage(png16(twelve, 0, 1));
  assert.deepEqual([...img.data].filter((_, i) => i % 4 === 0), twelve.map((u) => Math.round((u * 255) / 4095)));
  const sixteen = [0, 5000, 40000, 65535];
  img = await readImage(png16(sixteen, 0, 1));
  assert.deepEqual([...img.data].filter((_, i) => i % 4 === 0), sixteen.map((u) => Math.round((u * 255) / 65535)));
});

test("a 16-bit colour image keeps the high byte", async () => {
  const values = [0, 1000, 40000, 65535];
  const img = await readImage(png16(values, 6, 4));
  assert.deepEqual([...img.data].filter((_, i) => i % 4 === 0), values.map((u) => u >> 8));
});
