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
      const png = PNG.sync.read(bytes);
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
