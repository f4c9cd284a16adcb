// Decoding PNG and JPEG files in Node (pure JavaScript decoders), with errors that name the file.

import { readFile } from "node:fs/promises";

export class ImageError extends Error {
  constructor(message) {
    super(message);
    this.name = "ImageError";
  }
}

/** { data (RGBA bytes), width, height, channels: 4 } of a PNG or JPEG file. */
export async function readImage(path) {
  let bytes;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ImageError(`${path}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
  }
  try {
    if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50) {
      const { PNG } = await import("pngjs");
      const png = PNG.sync.read(bytes, { skipRescale: true });
      if (png.depth === 16) return { data: to8bit(png, path), width: png.width, height: png.height, channels: 4 };
      return { data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length), width: png.width, height: png.height, channels: 4 };
    }
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8) {
      const jpeg = (await import("jpeg-js")).default;
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return { data: img.data, width: img.width, height: img.height, channels: 4 };
    }
  } catch (e) {
    throw new ImageError(`${path}: cannot decode image (${e.message})`);
  }
  throw new ImageError(`${path}: not a PNG or JPEG file`);
}

/**
 * 16-bit PNG samples (RGBA, 0..65535) to 8 bits as SPEC.md section 3 says: a grey image is scaled
 * linearly from 0..4095 when its largest value fits in 12 bits (most sensors), else from 0..65535;
 * colour and grey+alpha images keep the high byte.
 */
function to8bit(png, path) {
  const src = png.data;
  const n = png.width * png.height;
  const out = new Uint8Array(4 * n);
  if (png.colorType === 0) {
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, src[4 * i]);
    const top = max <= 4095 ? 4095 : 65535;
    console.warn(`${path}: 16-bit grey image scaled to 8 bits from 0..${top}`);
    for (let i = 0; i < n; i++) {
      const v = Math.min(255, Math.max(0, Math.round((src[4 * i] * 255) / top)));
      out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = v;
      out[4 * i + 3] = 255;
    }
    return out;
  }
  for (let i = 0; i < 4 * n; i++) out[i] = src[i] >> 8;
  return out;
}
