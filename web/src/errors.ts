/**
 * Server failures in words a person understands. The server answers in
 * OpenAI's shape, `{"error":{message,type,param,code}}`, with OVMS's message
 * texts (often wrapped in MediaPipe's "Mediapipe execution failed…" prefix);
 * this turns status + param + message into one sentence naming the form
 * field at fault, and never shows a raw JSON dump.
 */

/** The `error` object of an OpenAI-style error body; any part may be missing. */
export interface ServerError {
  readonly message?: string;
  readonly type?: string;
  readonly param?: string | null;
  readonly code?: string | null;
}

export interface HttpFailure {
  readonly status: number;
  readonly statusText?: string;
  /** The parsed error, or null when the body was not OpenAI's shape (a proxy's HTML page, say). */
  readonly error: ServerError | null;
  /** The Retry-After header as sent. */
  readonly retryAfter?: string | null;
  /** For "now" in an HTTP-date Retry-After; Date.now() when absent. */
  readonly now?: number;
  /** The x-should-retry header as sent: "false" marks a failure that waiting will not fix. */
  readonly shouldRetry?: string | null;
  /** The servable the request was about, to name it. */
  readonly model?: string;
}

export const NETWORK_DOWN = "Cannot reach the server: check that graphserve is running and that this page was opened from it.";

/** Request fields as the form labels them. */
const FIELD_LABELS: Readonly<Record<string, string>> = {
  model: "Model",
  prompt: "Prompt",
  negative_prompt: "Negative prompt",
  size: "Size",
  width: "Width",
  height: "Height",
  num_inference_steps: "Steps",
  guidance_scale: "Guidance scale",
  rng_seed: "Seed",
  n: "Images",
  num_images_per_prompt: "Images",
  strength: "Strength",
  image: "Source image",
  mask: "Mask",
};

/** The form's name for a request field (`image[0]` is the source image too). */
export function fieldLabel(param: string): string {
  return FIELD_LABELS[param.replace(/\[\d*\]$/, "")] ?? `"${param}"`;
}

/** Reads an OpenAI-style error out of a response body; null when it is not one. */
export function parseErrorBody(text: string): ServerError | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const error = (value as { error?: unknown }).error;
  // OVMS itself answers {"error":"<message>"}.
  if (typeof error === "string") return { message: error };
  if (typeof error !== "object" || error === null) return null;
  const e = error as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  return { message: str(e.message), type: str(e.type), param: str(e.param) ?? null, code: str(e.code) ?? null };
}

/**
 * Drops MediaPipe's status wrapping: graphserve puts what the calculator said
 * on the first line, before OVMS's text; OVMS's text alone has it after the
 * last "failed: ".
 */
export function cleanMessage(message: string): string {
  let m = message.trim();
  const wrapping = m.search(/\nMediapipe (?:execution|graph precondition) failed/);
  if (wrapping > 0) return m.slice(0, wrapping).trim();
  const node = m.lastIndexOf('" failed: ');
  if (m.startsWith("Mediapipe") && node !== -1) m = m.slice(node + '" failed: '.length);
  m = m.replace(/^Mediapipe graph precondition failed - (?:FAILED_PRECONDITION: )?/, "");
  return m.trim();
}

/** Seconds to wait from a Retry-After value (seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(value: string | null | undefined, now = Date.now()): number | null {
  if (value == null || value.trim() === "") return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

const capitalized = (s: string) => (s === "" ? s : s[0].toUpperCase() + s.slice(1));

/** Known server messages, said plainly. Returns null when none matches. */
function rephrase(message: string, param: string | null): string | null {
  let m: RegExpMatchArray | null;
  if ((m = message.match(/requested resolution (\d+x\d+) exceeds maxResolution: (\d+x\d+)/)))
    return `Size ${m[1]} is larger than this model allows (max ${m[2]})`;
  if ((m = message.match(/image size (\d+x\d+) exceeds max_resolution (\d+x\d+)/)))
    return `The source image (${m[1]}) is larger than this model allows (max ${m[2]}): choose a smaller image or set Width and Height`;
  if ((m = message.match(/size (\d+x\d+) is not supported by this model: width and height must be multiples of (\d+)/)))
    return `Size ${m[1]} is not supported: Width and Height must be multiples of ${m[2]}`;
  if ((m = message.match(/size (\d+x\d+) is not supported by this model, which was exported for (.+?) only/)))
    return `Size ${m[1]} is not supported: this model only makes ${m[2]}`;
  if ((m = message.match(/num_inference_steps is greater than maxNumInferenceSteps: (\d+)/)))
    return `Steps: this model allows at most ${m[1]}`;
  if ((m = message.match(/num_images_per_prompt\/n is greater than maxNumImagesPerPrompt: (\d+)/)))
    return `Images: this model makes at most ${m[1]} per request`;
  if (/^strength is (?:greater|less) than/.test(message)) return "Strength must be greater than 0 and at most 1";
  if (/^prompt field is missing|^Invalid 'prompt': empty string/.test(message)) return "Prompt: enter a prompt";
  if ((m = message.match(/^Invalid '(\w+)': string too long\. Expected a string with maximum length (\d+)/)))
    return `${fieldLabel(m[1])}: at most ${m[2]} characters`;
  if (/must be higher than 0$/.test(message) && param !== null) return `${fieldLabel(param)} must be greater than 0`;
  if ((m = message.match(/^(\S+) field is not a (int|int64|size_t|float|string)$/)))
    return `${fieldLabel(m[1])} must be ${m[2] === "float" ? "a number" : m[2] === "string" ? "text" : "a whole number"}`;
  if ((m = message.match(/^Unhandled parameter: (\S+)/)))
    return `This server does not accept ${fieldLabel(m[1])} (is it an older graphserve?)`;
  if ((m = message.match(/^(Text-to-image|Image-to-image|Inpainting) pipeline is not available for this model/)))
    return `This model cannot do ${m[1].toLowerCase()}${m[1] === "Inpainting" ? " (editing with a mask): clear the mask to edit the whole image" : ""}`;
  if ((m = message.match(/^Request body is larger than the server's limit of (\d+) bytes/)))
    return `The upload is too large: the server accepts at most ${formatBytes(Number(m[1]))}`;
  if (/Image parsing failed|could not be decoded|unsupported image/i.test(message) && (param === null || param.startsWith("image")))
    return `Source image: the server could not read it as an image (${message})`;
  return null;
}

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(1)} KB`;
  return `${n} bytes`;
}

/**
 * Why a servable failed to load, from the server's message: what follows
 * "failed to load" when it says so; none when it only says "not loaded"
 * (an older server that gives no reason).
 */
function loadFailureReason(message: string): string {
  const m = /failed to load\b[:.,]?\s*(.*)$/is.exec(message);
  const reason = (m === null ? message : m[1]).trim().replace(/\.$/, "");
  if (reason === "" || /^Mediapipe is not loaded yet$/.test(reason)) return "the server gave no reason; its log has it";
  return reason;
}

/** One readable sentence for a failed HTTP request. */
export function describeHttpFailure(f: HttpFailure): string {
  const raw = f.error?.message ?? "";
  const message = cleanMessage(raw);
  const param = f.error?.param ?? null;
  const wait = retryAfterSeconds(f.retryAfter, f.now);
  const again = wait === null ? "try again in a moment" : `try again in ${wait} s`;
  const known = rephrase(message, param);
  switch (f.status) {
    case 401:
      return "The API key is missing or wrong: enter the server's key in the API key field";
    case 403:
      return `The server refused this request${message === "" ? "" : `: ${message}`}`;
    case 404:
      if (param === "model" || f.error?.code === "model_not_found") return "The selected model is not served here (any more): pick another model or reload the page";
      return `Not found${message === "" ? "" : `: ${message}`}`;
    case 413:
      return known ?? `The upload is too large for the server${message === "" ? "" : ` (${message})`}`;
    case 429:
      return `The server is busy (every generation slot and queue place is taken): ${again}`;
    case 503: {
      const subject = f.model === undefined || f.model === "" ? "The model" : f.model;
      if (f.shouldRetry?.trim().toLowerCase() === "false" || /fail/i.test(f.error?.code ?? "")) return `${subject} failed to load: ${loadFailureReason(message)}`;
      if (/not loaded yet/.test(message)) return `${subject} is still loading: ${again}`;
      return `The server is not ready: ${again}`;
    }
    default:
      break;
  }
  if (known !== null) return known;
  if (f.status === 412) return `This model cannot do that${message === "" ? "" : `: ${message}`}`;
  if (f.status >= 500) {
    return message === ""
      ? `The server failed (${f.status}${f.statusText ? ` ${f.statusText}` : ""}): try again, and check the server's log if it keeps failing`
      : `The server failed: ${message}`;
  }
  if (message === "") return `The server refused the request (${f.status}${f.statusText ? ` ${f.statusText}` : ""})`;
  if (param !== null && f.status === 400) return `${fieldLabel(param)}: ${message}`;
  return capitalized(message);
}

/** An `error` event in the middle of a stream (its status is gone; the body is the same shape). */
export function describeStreamError(data: string): string {
  const error = parseErrorBody(data);
  if (error === null) return "The generation failed: the server sent an error it did not explain";
  const message = cleanMessage(error.message ?? "");
  const known = rephrase(message, error.param ?? null);
  if (known !== null) return known;
  return message === "" ? "The generation failed" : `The generation failed: ${message}`;
}
