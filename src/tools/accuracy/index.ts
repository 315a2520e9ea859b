/** `graphserve accuracy`: determinism, CLIP score and reference similarity over the OpenAI Images API. */
export { ACCURACY_USAGE, accuracyCommand, formatReport, reportJson, type AccuracyIo } from "./command.js";
export { runAccuracy, parsePrompts, decodeRgb, MAX_PROMPTS, type AccuracyOptions, type AccuracyReport, type PromptResult, type AccuracySummary, type ReferenceResult } from "./run.js";
export { ClipScorer, clipScoreOf, clipPixels, preprocessingFrom, type ClipPreprocessing } from "./clip.js";
export { psnr, ssim, ssimGray, mse, luminance, gaussianKernel1d, type RawImage, type SsimOptions } from "./metrics.js";
export { makeTinyClip } from "../../backends/onnx/tiny/make-tiny-clip.js";
