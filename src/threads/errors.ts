/** Errors across threads (structured cloning keeps only an Error's message). */

/**
 * An error crossing the thread boundary. Structured cloning keeps only the
 * message of an Error subclass, so its name, stack and own fields (an
 * HttpError's status and param, say) travel as a plain object.
 */
export interface SerializedError {
  readonly serializedError: true;
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly fields: Record<string, unknown>;
}

export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    try {
      structuredClone(value);
      fields[key] = value;
    } catch {
      // a field that cannot cross threads is dropped, not fatal
    }
  }
  return { serializedError: true, name: error.name, message: error.message, stack: error.stack, fields } satisfies SerializedError;
}

/** Rebuilds what serializeError sent: an Error with the original name, stack and fields. */
export function deserializeError(value: unknown): unknown {
  const s = value as SerializedError | undefined;
  if (typeof s !== "object" || s === null || s.serializedError !== true) return value;
  const error = Object.assign(new Error(s.message), s.fields);
  error.name = s.name;
  if (s.stack !== undefined) error.stack = s.stack;
  return error;
}
