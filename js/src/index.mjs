// shipcam for JavaScript: run a shipcam .onnx file and explain it (SPEC.md).
export { Detector, DEFAULT_GSD, DEFAULT_RULE, predictionRecord } from "./detector.mjs";
export { readMetadata, parseMetadata, onnxMetadataEntries, tfliteMetadataEntries, ModelFileError, FORMAT_VERSION } from "./metadata.mjs";
export { BOX_LEVEL, classActivationMap, resizeBilinear, resizeAntialiased, detect, detectInCam, findPeaks, preprocess, sigmoid, logit, VIEWS, applyView, undoView } from "./maths.mjs";
