/**
 * The playground's settings and the Images API requests made from them:
 * the JSON body of `/v3/images/generations` and the text parts of the
 * multipart `/v3/images/edits`. Checks only what the form itself can know
 * (a number is a number); the model's limits are the server's to enforce.
 */

export type Mode = "generate" | "edit";

export interface ImageSettings {
  readonly mode: Mode;
  readonly model: string;
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly width: number;
  readonly height: number;
  readonly steps: number;
  readonly guidanceScale: number;
  /** null: the server draws one (and says which). */
  readonly seed: number | null;
  readonly n: number;
  /** Edits only (null for generations): 0 < strength ≤ 1. */
  readonly strength: number | null;
}

/** The form's values as typed (input.value strings). */
export interface SettingsInput {
  readonly mode: Mode;
  readonly model: string;
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly width: string;
  readonly height: string;
  readonly steps: string;
  readonly guidanceScale: string;
  readonly seed: string;
  readonly n: string;
  readonly strength: string;
}

/** A mistake in the form: which field (its key in SettingsInput) and what to say. */
export interface SettingsProblem {
  readonly field: keyof SettingsInput;
  readonly message: string;
}

/** Partial images asked for while streaming (OpenAI allows 0-3). */
export const MAX_PARTIAL_IMAGES = 3;

const WHOLE = /^\s*\d+\s*$/;
const DECIMAL = /^\s*(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\s*$/i;

/** Reads and checks the form; the first problem found, in form order, if any. */
export function parseSettings(input: SettingsInput): { ok: true; settings: ImageSettings } | { ok: false; problem: SettingsProblem } {
  const fail = (field: keyof SettingsInput, message: string) => ({ ok: false as const, problem: { field, message } });
  if (input.model === "") return fail("model", "Model: there is no model to choose: the server lists none, or its list could not be loaded");
  if (input.prompt.trim() === "") return fail("prompt", "Prompt: enter a prompt");
  const positive = (field: "width" | "height" | "steps" | "n", label: string): number | SettingsProblem => {
    const v = input[field];
    if (!WHOLE.test(v) || Number(v) < 1) return { field, message: `${label} must be a whole number greater than 0` };
    return Number(v);
  };
  const width = positive("width", "Width");
  if (typeof width !== "number") return { ok: false, problem: width };
  const height = positive("height", "Height");
  if (typeof height !== "number") return { ok: false, problem: height };
  const steps = positive("steps", "Steps");
  if (typeof steps !== "number") return { ok: false, problem: steps };
  if (!DECIMAL.test(input.guidanceScale)) return fail("guidanceScale", "Guidance scale must be a number, 0 or more");
  const guidanceScale = Number(input.guidanceScale);
  let seed: number | null = null;
  if (input.seed.trim() !== "") {
    if (!WHOLE.test(input.seed) || !Number.isSafeInteger(Number(input.seed)))
      return fail("seed", "Seed must be a whole number from 0 to 9007199254740991, or empty for a random one");
    seed = Number(input.seed);
  }
  const n = positive("n", "Images");
  if (typeof n !== "number") return { ok: false, problem: n };
  let strength: number | null = null;
  if (input.mode === "edit") {
    strength = Number(input.strength);
    // 0 would change nothing; the server refuses it.
    if (!DECIMAL.test(input.strength) || !(strength > 0 && strength <= 1))
      return fail("strength", "Strength must be a number greater than 0 and at most 1 (e.g. 0.75)");
  }
  return {
    ok: true,
    settings: {
      mode: input.mode, model: input.model, prompt: input.prompt, negativePrompt: input.negativePrompt,
      width, height, steps, guidanceScale, seed, n, strength,
    },
  };
}

/**
 * Settings back into form text, for "Reuse settings": the mode stays as the
 * user has it, and a generation (which has no strength) leaves Strength alone.
 */
export function reuseInput(s: ImageSettings): Partial<SettingsInput> {
  const values: Partial<SettingsInput> = {
    model: s.model, prompt: s.prompt, negativePrompt: s.negativePrompt,
    width: String(s.width), height: String(s.height), steps: String(s.steps),
    guidanceScale: String(s.guidanceScale), seed: s.seed === null ? "" : String(s.seed),
    n: String(s.n),
  };
  return s.strength === null ? values : { ...values, strength: String(s.strength) };
}

type FormField = keyof SettingsInput | "image" | "mask";

/** Request fields by the form field that sets them (`size` is Width and Height: Width gets the focus). */
const FIELD_OF_PARAM: Readonly<Record<string, FormField>> = {
  model: "model", prompt: "prompt", negative_prompt: "negativePrompt", size: "width", width: "width", height: "height",
  num_inference_steps: "steps", guidance_scale: "guidanceScale", rng_seed: "seed", n: "n", num_images_per_prompt: "n",
  strength: "strength", image: "image", mask: "mask",
};

/** The form field a request field belongs to (the server's `param`, `image[0]` included), for focusing it; null when none does. */
export function fieldOfParam(param: string): FormField | null {
  return FIELD_OF_PARAM[param.replace(/\[\d*\]$/, "")] ?? null;
}

/** Whether to ask for a stream: a graph that cannot stream refuses `stream` (400, param "stream"). */
export interface RequestShape {
  readonly stream: boolean;
}

/** The request fields both endpoints share, streaming with per-step progress unless told not to. */
function commonFields(s: ImageSettings, shape: RequestShape): Record<string, string | number | boolean> {
  const fields: Record<string, string | number | boolean> = {
    model: s.model,
    prompt: s.prompt,
    size: `${s.width}x${s.height}`,
    n: s.n,
    num_inference_steps: s.steps,
    guidance_scale: s.guidanceScale,
    response_format: "b64_json",
  };
  if (shape.stream) {
    fields.stream = true;
    fields.stream_progress = true;
    // A preview after the last step would only repeat the final image.
    fields.partial_images = Math.min(MAX_PARTIAL_IMAGES, s.steps - 1);
  }
  if (s.negativePrompt.trim() !== "") fields.negative_prompt = s.negativePrompt;
  if (s.seed !== null) fields.rng_seed = s.seed;
  return fields;
}

/** The JSON body of POST /v3/images/generations. */
export function generationBody(s: ImageSettings, shape: RequestShape = { stream: true }): Record<string, string | number | boolean> {
  return commonFields(s, shape);
}

/** The text parts of POST /v3/images/edits, in order; the image and mask files are added beside them. */
export function editFields(s: ImageSettings, shape: RequestShape = { stream: true }): Array<[string, string]> {
  const fields = { ...commonFields(s, shape), strength: s.strength ?? 1 };
  return Object.entries(fields).map(([k, v]) => [k, String(v)]);
}

/** A file name for a result: model, seed and position, so a download says how to make it again. */
export function resultFileName(model: string, seed: number | null, imageIndex: number, format: string): string {
  const safeModel = model.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "") || "image";
  const ext = format === "jpeg" ? "jpg" : format.replace(/[^a-z0-9]/g, "") || "png";
  return `${safeModel}-seed${seed ?? "unknown"}-${imageIndex + 1}.${ext}`;
}

/** Rounds a source image's size down to the multiple of 8 the pipelines need (at least 8). */
export function editSizeFor(width: number, height: number): { width: number; height: number } {
  const down = (v: number) => Math.max(8, Math.floor(v / 8) * 8);
  return { width: down(width), height: down(height) };
}
