/**
 * OCR task-level fidelity harness: rendered text samples, PaddleOCR preprocessing and decoding, and the
 * comparison of a pruned PP-OCR model against its original. See fidelity.ts.
 */
export {
  evaluateOcrFidelity,
  evaluateOcrTask,
  type OcrKind,
  type FidelityOptions,
  type OcrFidelity,
  type DetFidelity,
  type RecFidelity,
  type ClsFidelity,
  type LatencyReport,
  type OcrTaskResult,
} from './fidelity';
export {
  makeDetSamples,
  makeRecSamples,
  makeClsSamples,
  DET_SAMPLE_COUNT,
  type DetSample,
  type RecSample,
  type ClsSample,
  type DetLine,
  type SampleOptions,
} from './samples';
export { REC_TEXTS, CLS_TEXTS } from './corpus';
export { detInput, recInput, clsInput, detInputSize, resizeBilinear, type InputTensor } from './preprocess';
export { ctcGreedy, recCharacters, characterErrorRate, editDistance } from './ctc';
export { binarize, maskIoU, components, detCoverage, DET_THRESHOLD } from './det-metrics';
export { encodePng, savePng, mapToImage, rotate180, type RgbImage } from './image';
export { openSession, runSession, measureLatency, type ModelSource } from './session';
export { ocrAssetsDir, ocrModelPath, fixturesDir } from './paths';
