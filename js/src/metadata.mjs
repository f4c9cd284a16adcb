// The shipcam metadata read from the model file itself (SPEC.md section 2): ONNX
// ModelProto.metadata_props and TFLite Model.metadata, with no protobuf or
// flatbuffers library. Checks what SPEC.md section 7 says a reader must refuse.

export const METADATA_KEY = "shipcam";
export const FORMAT_VERSION = 2;  // 2: gsd_range

export class ModelFileError extends Error {
  constructor(message) {
    super(message);
    this.name = "ModelFileError";
  }
}

// --- ONNX: protobuf, top-level fields only -----------------------------------

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new ModelFileError("truncated varint");
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
  }
}

function* fields(buf, start = 0, end = buf.length) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      yield { field, wire, value: v };
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const n = Number(len);
      if (pos + n > end) throw new ModelFileError("truncated length-delimited field");
      yield { field, wire, start: pos, end: pos + n };
      pos += n;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new ModelFileError(`unsupported protobuf wire type ${wire}`);
    }
  }
}

/** All ModelProto.metadata_props entries (field 14: {key = 1, value = 2}) of an ONNX file. */
export function onnxMetadataEntries(bytes) {
  const out = {};
  const dec = new TextDecoder();
  for (const f of fields(bytes)) {
    if (f.field !== 14 || f.wire !== 2) continue;
    let key = "";
    let value = "";
    for (const g of fields(bytes, f.start, f.end)) {
      if (g.wire !== 2) continue;
      if (g.field === 1) key = dec.decode(bytes.subarray(g.start, g.end));
      if (g.field === 2) value = dec.decode(bytes.subarray(g.start, g.end));
    }
    out[key] = value;
  }
  return out;
}

// --- TFLite: flatbuffer Model.metadata -> Model.buffers ------------------------
// table Model { version:0, operator_codes:1, subgraphs:2, description:3, buffers:4, metadata_buffer:5, metadata:6 }
// table Metadata { name:string (0); buffer:uint (1) }  table Buffer { data:[ubyte] (0); offset:ulong (1); size:ulong (2) }

class FlatBuffer {
  constructor(bytes) {
    this.b = bytes;
    this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u32(pos) { return this.v.getUint32(pos, true); }
  field(table, index) {
    const vtable = table - this.v.getInt32(table, true);
    const size = this.v.getUint16(vtable, true);
    const slot = 4 + 2 * index;
    if (slot >= size) return null;
    const off = this.v.getUint16(vtable + slot, true);
    return off ? table + off : null;
  }
  deref(pos) { return pos + this.u32(pos); }
  vector(table, index) {
    const pos = this.field(table, index);
    if (pos === null) return [0, 0];
    const vec = this.deref(pos);
    return [vec + 4, this.u32(vec)];
  }
  string(table, index) {
    const [start, n] = this.vector(table, index);
    return new TextDecoder().decode(this.b.subarray(start, start + n));
  }
}

/** All Model.metadata entries of a TFLite flatbuffer, by name, as bytes. */
export function tfliteMetadataEntries(bytes) {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== "TFL3") {
    throw new ModelFileError("not a TFLite flatbuffer (file identifier TFL3 missing)");
  }
  const fb = new FlatBuffer(bytes);
  const model = fb.deref(0);
  const [buffers, nBuffers] = fb.vector(model, 4);
  const [meta, nMeta] = fb.vector(model, 6);
  const out = {};
  for (let i = 0; i < nMeta; i++) {
    const entry = fb.deref(meta + 4 * i);
    const name = fb.string(entry, 0);
    const pos = fb.field(entry, 1);
    const index = pos === null ? 0 : fb.u32(pos);
    if (index >= nBuffers) throw new ModelFileError(`metadata ${name} points at buffer ${index} of ${nBuffers}`);
    const buf = fb.deref(buffers + 4 * index);
    let [start, n] = fb.vector(buf, 0);
    if (n === 0) {
      const offPos = fb.field(buf, 1);
      const sizePos = fb.field(buf, 2);
      if (offPos !== null && sizePos !== null) {
        start = Number(fb.v.getBigUint64(offPos, true));
        n = Number(fb.v.getBigUint64(sizePos, true));
      }
    }
    out[name] = bytes.subarray(start, start + n);
  }
  return out;
}

// --- the document -----------------------------------------------------------------

const REQUIRED = ["format_version", "cam_weights", "cam_bias", "feature_channels", "pooling", "backbone", "input_scale", "input_offset", "input_size", "feature_stride", "threshold"];

function base64ToBytes(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new ModelFileError("cam_weights is not base64");
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)); // atob: Node >= 16 and browsers
}

/**
 * Parse and check the metadata JSON (SPEC.md sections 3 and 7). Returns the document with
 * `camWeights` (Float32Array) added.
 */
export function parseMetadata(text, source = "model") {
  let d;
  try {
    d = JSON.parse(typeof text === "string" ? text : new TextDecoder().decode(text));
  } catch (e) {
    throw new ModelFileError(`${source}: unreadable shipcam metadata (${e.message})`);
  }
  const bad = (why) => new ModelFileError(`${source}: shipcam metadata breaks the format (SPEC.md): ${why}`);
  if (d === null || typeof d !== "object" || Array.isArray(d)) throw bad("not a JSON object");
  if (Number.isInteger(d.format_version) && d.format_version > FORMAT_VERSION) {
    throw new ModelFileError(`${source}: metadata format ${d.format_version} is newer than this reader (${FORMAT_VERSION}); upgrade shipcam`);
  }
  for (const k of REQUIRED) if (!(k in d)) throw bad(`missing required key '${k}'`);
  const isInt = (v) => Number.isInteger(v);
  if (!isInt(d.feature_channels) || d.feature_channels < 1) throw bad(`feature_channels must be an integer >= 1, received ${d.feature_channels}`);
  if (!isInt(d.feature_stride) || d.feature_stride < 1) throw bad(`feature_stride must be an integer >= 1, received ${d.feature_stride}`);
  if (!["max", "avg"].includes(d.pooling)) throw bad(`pooling must be max or avg, received ${d.pooling}`);
  if (typeof d.input_scale !== "number" || !(d.input_scale > 0)) throw bad(`input_scale must be > 0, received ${d.input_scale}`);
  if (typeof d.input_offset !== "number") throw bad(`input_offset must be a number, received ${d.input_offset}`);
  if (!(d.input_size === null || (isInt(d.input_size) && d.input_size >= 1))) throw bad(`input_size must be null or an integer >= 1, received ${d.input_size}`);
  if (typeof d.threshold !== "number" || !(d.threshold > 0 && d.threshold < 1)) throw bad(`threshold must be in (0, 1), received ${d.threshold}`);
  if (typeof d.cam_bias !== "number") throw bad(`cam_bias must be a number, received ${d.cam_bias}`);
  if (d.gsd !== undefined && d.gsd !== null && !(typeof d.gsd === "number" && d.gsd > 0)) throw bad(`gsd must be null or > 0, received ${d.gsd}`);
  if (d.gsd_range !== undefined && d.gsd_range !== null) {
    const ok = Array.isArray(d.gsd_range) && d.gsd_range.length === 2 && d.gsd_range.every((v) => typeof v === "number" && v > 0);
    if (!ok) throw bad(`gsd_range must be null or [min, max] metres/pixel > 0, received ${JSON.stringify(d.gsd_range)}`);
  }
  if (typeof d.cam_weights !== "string") throw bad("cam_weights must be a base64 string");
  const raw = base64ToBytes(d.cam_weights);
  if (raw.length !== 4 * d.feature_channels) {
    throw new ModelFileError(`${source}: cam_weights holds ${raw.length} bytes; ${d.feature_channels} float32 channels need ${4 * d.feature_channels}`);
  }
  const camWeights = new Float32Array(d.feature_channels);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let i = 0; i < camWeights.length; i++) camWeights[i] = view.getFloat32(4 * i, true);
  return { ...d, camWeights };
}

/** The metadata of a model file's bytes, by its name's suffix (.onnx or .tflite). */
export function readMetadata(bytes, name = "model.onnx") {
  let entries;
  try {
    entries = /\.tflite$|\.lite$/i.test(name) ? tfliteMetadataEntries(bytes) : onnxMetadataEntries(bytes);
  } catch (e) {
    throw new ModelFileError(`${name}: not a readable model file (${e.message}); truncated or another format?`);
  }
  if (!(METADATA_KEY in entries)) {
    throw new ModelFileError(`${name}: no shipcam metadata (found ${Object.keys(entries).join(", ") || "none"}); export it with \`shipcam export\``);
  }
  return parseMetadata(entries[METADATA_KEY], name);
}
