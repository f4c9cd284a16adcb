// Types for the shipcam JavaScript runtime (SPEC.md).

export interface Metadata {
  format_version: number;
  cam_weights: string;
  camWeights: Float32Array;
  cam_bias: number;
  feature_channels: number;
  pooling: "max" | "avg";
  backbone: string;
  input_scale: number;
  input_offset: number;
  input_size: number | null;
  feature_stride: number;
  threshold: number;
  train_size?: number | null;
  gsd?: number | null;
  /** [min, max] metres/pixel the model was trained across (format_version 2); images inside it run as they are. */
  gsd_range?: [number, number] | null;
  alpha?: number | null;
  channel_order?: "RGB";
  class_name?: string;
  quantization?: "float32" | "float16" | "int8";
  source_sha256?: string;
  shipcam_version?: string;
  extra?: Record<string, unknown>;
}

export type Views = "none" | "flip" | "rot4" | "d4";

export interface Rule {
  threshold: number;
  nms_radius_m: number;
  max_length_m: number;
  fraction: number;
  /** test-time views averaged in logit units (SPEC.md section 6; default "none") */
  views: Views;
}

export interface Box {
  x: number; y: number; x0: number; y0: number; x1: number; y1: number;
  score: number; probability: number;
}

export interface Map2D { data: Float32Array; h: number; w: number }

export interface ImageData8 {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels?: 3 | 4;
}

export interface Prediction {
  probability: number;
  logit: number;
  isShip: boolean;
  cam: Map2D;
  imageSize: [number, number];
  boxes: Box[];
  timings_ms: { preprocess: number; inference: number; cam: number };
}

export interface LoadOptions {
  threads?: number;
  /** an onnxruntime module (node or web), for .onnx files */
  ort?: unknown;
  /** the @litertjs/core module after loadLiteRt(), for .tflite files (browsers only; fixed input size) */
  litert?: unknown;
  name?: string;
  threshold?: number;
}

export declare const DEFAULT_GSD: number;
export declare const DEFAULT_RULE: Omit<Rule, "threshold">;
export declare const FORMAT_VERSION: number;

export declare class ModelFileError extends Error {}

export declare class Detector {
  static load(pathOrUrl: string | Uint8Array | ArrayBuffer, options?: LoadOptions): Promise<Detector>;
  readonly metadata: Metadata;
  readonly engine: "onnxruntime" | "litert.js";
  readonly gsd: number;
  readonly threads: number;
  rule: Rule;
  readonly threshold: number;
  /** `gsd`: the image's metres/pixel; outside the model's range the image is resampled to the nearer bound first. */
  predict(image: ImageData8, options?: { gsd?: number }): Promise<Prediction>;
  /** The metres/pixel an image of `gsd` runs at: its own inside the model's range, else the nearer bound. */
  workingGsd(gsd?: number | null): number;
  readonly gsdRange: [number, number];
  camImage(prediction: Prediction): Float32Array;
}

export declare function predictionRecord(file: string, p: Prediction): {
  file: string; probability: number; logit: number; is_ship: boolean; boxes: Box[];
  cam_shape: [number, number]; timings_ms: Record<string, number>;
};
export declare function readMetadata(bytes: Uint8Array, name?: string): Metadata;
export declare function parseMetadata(text: string | Uint8Array, source?: string): Metadata;
export declare function onnxMetadataEntries(bytes: Uint8Array): Record<string, string>;
export declare function tfliteMetadataEntries(bytes: Uint8Array): Record<string, Uint8Array>;
export declare function classActivationMap(features: ArrayLike<number>, h: number, w: number, weights: Float32Array, bias: number): Map2D;
/** A box holds the CAM above this share of a peak's height over the threshold (SPEC.md section 5). */
export declare const BOX_LEVEL: number;
export declare function resizeAntialiased(data: ArrayLike<number>, h: number, w: number, outH: number, outW: number, channels?: number): Float32Array;
export declare function resizeBilinear(data: ArrayLike<number>, h: number, w: number, outH: number, outW: number, channels?: number): Float32Array;
export declare function findPeaks(heat: Map2D, minScore: number, radiusCells: number): [number, number, number][];
export declare function detect(heat: Map2D, cell: [number, number], gsd: number, rule: Rule, imageSize: [number, number], minScore?: number | null): Box[];
export declare function detectInCam(cam: Map2D, imageSize: [number, number], gsd: number, rule: Rule): Box[];
export declare function preprocess(pixels: ArrayLike<number>, h: number, w: number, channels: number, scale: number, offset: number): Float32Array;
export declare function sigmoid(x: number): number;
export declare const VIEWS: Record<Views, [number, boolean][]>;
export declare function applyView<T extends ArrayLike<number>>(data: T, h: number, w: number, channels: number, turns: number, mirrored: boolean): { data: T; h: number; w: number };
export declare function undoView<T extends ArrayLike<number>>(data: T, h: number, w: number, channels: number, turns: number, mirrored: boolean): { data: T; h: number; w: number };
export declare function logit(p: number): number;
