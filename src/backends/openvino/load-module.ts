/**
 * Lazy loading of the optional OpenVINO GenAI JS binding.
 *
 * `openvino-genai-node` is ESM-only, declares Node ≥ 21 and downloads its
 * native runtime in a postinstall step, so graphserve never imports it
 * statically: the backend asks an injectable {@link OpenVinoLoader} for the
 * module (tests pass a fake one) and the default loader turns every import
 * failure into one BackendError that says what to install.
 *
 * The interfaces below are minimal local mirrors of the published types. They
 * mirror, with the same names, parameter order and return types:
 *   - openvino-genai-node@2026.4.0: types/index.d.ts (the factory functions),
 *     types/pipelines/{text2Image,image2Image,inpainting}Pipeline.d.ts,
 *     types/utils.d.ts (ImageGenerationConfig, ImageGenerationCallback,
 *     *PipelineProperties, Uint), types/perfMetrics.d.ts
 *     (ImageGenerationPerfMetrics, RawImageGenerationPerfMetrics, MeanStdPair);
 *   - openvino-node@2026.4.0: types/addon.d.ts (Tensor, element,
 *     elementTypeString, SupportedTypedArray, NodeAddon.Tensor).
 * Only the members graphserve uses are listed; each is a supertype of the
 * published declaration (the real module is assignable to these interfaces).
 */
import { BackendError } from "../types.js";

export const OPENVINO_GENAI_PACKAGE = "openvino-genai-node";
export const OPENVINO_NODE_PACKAGE = "openvino-node";
/** The version whose .d.ts files the interfaces below mirror. */
export const OPENVINO_GENAI_TYPES_VERSION = "2026.4.0";

// ---------------------------------------------------------------------------
// openvino-node@2026.4.0 types/addon.d.ts
// ---------------------------------------------------------------------------

/** `elementTypeString`. */
export type OvElementTypeString = "u8" | "u32" | "u16" | "u64" | "i8" | "i64" | "i32" | "i16" | "f64" | "f32" | "string";

/** `SupportedTypedArray`. */
export type OvSupportedTypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** `enum element` (declaration order: u8 = 0, u32, u16, u64, i8, i16, i32, i64, f32, f64, string). */
export const OV_ELEMENT_U8 = 0;

/** The instance side of `interface Tensor`. */
export interface OvTensor {
  /** Getter returns a copy of the tensor memory. */
  data: OvSupportedTypedArray;
  /** Returns the `element` enum value (a number at run time). */
  getElementType(): number;
  getData(): OvSupportedTypedArray;
  getShape(): number[];
  getSize(): number;
}

/** The construct signatures of `interface Tensor` (exposed as `NodeAddon.Tensor`). */
export interface OvTensorConstructor {
  new (type: OvElementTypeString, shape: number[]): OvTensor;
  /** Wraps (shares) `tensorData`: keep the array alive while the tensor is used. */
  new (type: OvElementTypeString, shape: number[], tensorData: OvSupportedTypedArray): OvTensor;
}

// ---------------------------------------------------------------------------
// openvino-genai-node@2026.4.0 types/utils.d.ts, types/perfMetrics.d.ts
// ---------------------------------------------------------------------------

/** `Uint`: number, or bigint when too large. */
export type OvUint = number | bigint;

/** `ImageGenerationConfig` (all fields optional). */
export interface OvImageGenerationConfig {
  prompt_2?: string;
  prompt_3?: string;
  negative_prompt?: string;
  negative_prompt_2?: string;
  negative_prompt_3?: string;
  num_images_per_prompt?: OvUint;
  rng_seed?: OvUint;
  guidance_scale?: number;
  height?: number;
  width?: number;
  num_inference_steps?: OvUint;
  max_sequence_length?: number;
  strength?: number;
}

/**
 * `ImageGenerationCallback`: called once per denoising step; `true` stops
 * early. Anything but a boolean (or a Promise of one) makes the 2026.4.0
 * binding fail the generate call.
 */
export type OvImageGenerationCallback = (step: number, numSteps: number, latent: OvTensor) => boolean | Promise<boolean>;

/** `Text2ImageGenerateOptions` / `Image2ImageGenerateOptions` / `InpaintingGenerateOptions`. */
export type OvImageGenerateOptions = OvImageGenerationConfig & { callback?: OvImageGenerationCallback };

/** `Text2ImagePipelineProperties` etc.: an ov::AnyMap of device/compile properties. */
export type OvPipelineProperties = Record<string, unknown>;

/** `MeanStdPair`. */
export interface OvMeanStdPair {
  mean: number;
  std: number;
}

/** `RawImageGenerationPerfMetrics` (milliseconds). */
export interface OvRawImageGenerationPerfMetrics {
  unetInferenceDurations: number[];
  transformerInferenceDurations: number[];
  iterationDurations: number[];
}

/** `ImageGenerationPerfMetrics` (milliseconds). */
export interface OvImageGenerationPerfMetrics {
  getLoadTime(): number;
  getGenerateDuration(): number;
  getIterationDuration(): OvMeanStdPair;
  getUnetInferDuration(): OvMeanStdPair;
  getTransformerInferDuration(): OvMeanStdPair;
  getVaeEncoderInferDuration(): number;
  getVaeDecoderInferDuration(): number;
  getTextEncoderInferDuration(): { [key: string]: number };
  getInferenceDuration(): number;
  rawMetrics: OvRawImageGenerationPerfMetrics;
}

// ---------------------------------------------------------------------------
// openvino-genai-node@2026.4.0 types/pipelines/*.d.ts, types/index.d.ts
// ---------------------------------------------------------------------------

/** Members the three image pipeline classes share. */
export interface OvImagePipelineCommon {
  /** VAE-decodes a latent (e.g. inside the step callback) to a u8 `[N, H, W, 3]` tensor. */
  decode(latent: OvTensor): Promise<OvTensor>;
  getPerformanceMetrics(): OvImageGenerationPerfMetrics;
  getGenerationConfig(): OvImageGenerationConfig;
  setGenerationConfig(config: OvImageGenerationConfig): void;
}

/** `class Text2ImagePipeline`. Output: u8 `[N, H, W, 3]`. */
export interface OvText2ImagePipeline extends OvImagePipelineCommon {
  generate(prompt: string, options?: OvImageGenerateOptions): Promise<OvTensor>;
}

/** `class Image2ImagePipeline`; `image` is u8 NHWC `[1, H, W, 3]`. */
export interface OvImage2ImagePipeline extends OvImagePipelineCommon {
  generate(prompt: string, image: OvTensor, options?: OvImageGenerateOptions): Promise<OvTensor>;
}

/** `class InpaintingPipeline`; `image` and `mask` are u8 NHWC `[1, H, W, 3]`, white repaints. */
export interface OvInpaintingPipeline extends OvImagePipelineCommon {
  generate(prompt: string, image: OvTensor, mask: OvTensor, options?: OvImageGenerateOptions): Promise<OvTensor>;
}

/** The factory functions exported by `openvino-genai-node` (each constructs and awaits `init()`). */
export interface OpenVinoGenAiModule {
  Text2ImagePipeline(modelPath: string, device?: string, properties?: OvPipelineProperties): Promise<OvText2ImagePipeline>;
  Image2ImagePipeline(modelPath: string, device?: string, properties?: OvPipelineProperties): Promise<OvImage2ImagePipeline>;
  InpaintingPipeline(modelPath: string, device?: string, properties?: OvPipelineProperties): Promise<OvInpaintingPipeline>;
}

/** What the backend needs from the two packages. */
export interface OpenVinoBindings {
  readonly genai: OpenVinoGenAiModule;
  /** `addon.Tensor` from openvino-node (the same module instance genai uses). */
  readonly Tensor: OvTensorConstructor;
}

export type OpenVinoLoader = () => Promise<OpenVinoBindings>;

/** Imports a module by specifier (`(s) => import(s)` by default; tests inject failures). */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

/** The text of the BackendError raised when the binding cannot be imported. */
export function missingPackageMessage(detail?: string): string {
  const nodeMajor = Number(process.versions.node.split(".")[0]);
  const parts = [
    `The OpenVINO backend needs the npm package "${OPENVINO_GENAI_PACKAGE}", which could not be loaded.`,
    `It is an optional dependency of graphserve and is not installed by default.`,
    `It requires Node >= 21 (this is Node ${process.versions.node}${nodeMajor < 21 ? ", too old" : ""})` +
      ` and its install step downloads the OpenVINO runtime: run \`npm install ${OPENVINO_GENAI_PACKAGE}\`` +
      ` on a machine that can reach storage.openvinotoolkit.org.`,
    `ONNX models (model.onnx folders, backend "onnxruntime") work without it.`,
  ];
  if (detail) parts.push(`(import error: ${detail})`);
  return parts.join(" ");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null;
}

/** Checks the shape of what was imported and picks out the parts the backend uses. */
export function bindingsFromModules(genaiModule: unknown, ovModule: unknown): OpenVinoBindings {
  if (!isRecord(genaiModule)) throw new BackendError(missingPackageMessage(`${OPENVINO_GENAI_PACKAGE} did not load as a module`));
  for (const name of ["Text2ImagePipeline", "Image2ImagePipeline", "InpaintingPipeline"] as const) {
    if (typeof genaiModule[name] !== "function") {
      throw new BackendError(
        `${OPENVINO_GENAI_PACKAGE} has no ${name} function; graphserve is written against version ${OPENVINO_GENAI_TYPES_VERSION}.`,
      );
    }
  }
  // openvino-node is CommonJS: `addon` is a named export, and also a property of the default export.
  let addon: unknown = isRecord(ovModule) ? ovModule["addon"] : undefined;
  if (!isRecord(addon) && isRecord(ovModule) && isRecord(ovModule["default"])) addon = ovModule["default"]["addon"];
  if (!isRecord(addon) || typeof addon["Tensor"] !== "function") {
    throw new BackendError(`${OPENVINO_NODE_PACKAGE} has no addon.Tensor; graphserve is written against version ${OPENVINO_GENAI_TYPES_VERSION}.`);
  }
  return {
    genai: genaiModule as unknown as OpenVinoGenAiModule,
    Tensor: addon["Tensor"] as unknown as OvTensorConstructor,
  };
}

/**
 * A loader that imports both packages through `importModule`. Any import
 * failure (package absent, native runtime not downloaded, Node too old)
 * becomes a BackendError with {@link missingPackageMessage}.
 */
export function createOpenVinoLoader(importModule: ModuleImporter = (specifier) => import(specifier)): OpenVinoLoader {
  return async () => {
    let genaiModule: unknown;
    let ovModule: unknown;
    try {
      // openvino-genai-node's own import loads its native addon and openvino-node's.
      genaiModule = await importModule(OPENVINO_GENAI_PACKAGE);
      ovModule = await importModule(OPENVINO_NODE_PACKAGE);
    } catch (err) {
      const detail = err instanceof Error ? err.message.split("\n")[0] : String(err);
      throw new BackendError(missingPackageMessage(detail), { cause: err });
    }
    return bindingsFromModules(genaiModule, ovModule);
  };
}

export const defaultOpenVinoLoader: OpenVinoLoader = createOpenVinoLoader();

/** Runs `loader`, turning a non-BackendError failure into the "missing package" BackendError. */
export async function loadOpenVino(loader: OpenVinoLoader = defaultOpenVinoLoader): Promise<OpenVinoBindings> {
  try {
    return await loader();
  } catch (err) {
    if (err instanceof BackendError) throw err;
    const detail = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new BackendError(missingPackageMessage(detail), { cause: err });
  }
}
