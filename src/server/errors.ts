/**
 * HTTP errors in OpenAI's shape, `{"error":{"message","type","param","code"}}`,
 * carrying OVMS's message texts so logs and substring checks written against
 * OVMS keep matching. Calculators throw `HttpError` to choose the status.
 */
/** The body every error response carries (what OpenAI SDKs parse). */
export interface OpenAIErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
    readonly code: string | null;
  };
}

export interface HttpErrorOptions {
  /** OpenAI's error type; defaults to `invalid_request_error` below 500, `server_error` from 500. */
  readonly type?: string;
  /** The request field at fault, e.g. `"prompt"` or `"image[0]"`. */
  readonly param?: string | null;
  /** A machine-readable code, e.g. `"model_not_found"`. */
  readonly code?: string | null;
  /** Extra response headers (e.g. `Retry-After`, `Allow`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

/**
 * An error with an HTTP status. Thrown by a calculator (in `process`) it sets
 * the response's status, `param` and `code`; the server also uses it for its
 * own request errors.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, message: string, options: HttpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    this.status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
    this.type = options.type ?? (this.status >= 500 ? "server_error" : "invalid_request_error");
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** OVMS's message texts (src/http_server.cpp / status.cpp), reused verbatim. */
export const OVMS = {
  jsonInvalid: "The file is not valid json - Cannot parse JSON body",
  jsonNotObject: "The file is not valid json - JSON body must be an object",
  modelMissing: "The file is not valid json - model field is missing in JSON body",
  modelNotString: "The file is not valid json - model field is not a string",
  multipartInvalid: "Request of multipart type but failed to parse",
  graphNotFound: "Mediapipe graph definition with requested name is not found",
  graphRetired: "Mediapipe is retired",
  graphNotLoaded: "Mediapipe is not loaded yet",
  unauthorized: "Unauthorized request due to invalid or missing api-key",
  notReady: "Server is not ready",
  modelNotFound: "Model with requested name is not found",
  versionNotLoaded: "Model with requested version is not loaded yet",
  executionFailed: "Mediapipe execution failed. MP status",
  preconditionFailed: "Mediapipe graph precondition failed",
} as const;
