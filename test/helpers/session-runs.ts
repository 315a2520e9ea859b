/** Counting ONNX Runtime session runs in tests, by wrapping the sessions themselves (not a pipeline's own bookkeeping). */
import type * as ort from "onnxruntime-node";

/** A counter of every run of `sessions` from now on (undefined entries are skipped). */
export function countRuns(sessions: readonly (ort.InferenceSession | undefined)[]): { readonly runs: number } {
  const counter = { runs: 0 };
  for (const s of sessions) {
    if (!s) continue;
    const session = s as ort.InferenceSession & { run: ort.InferenceSession["run"] };
    const run = session.run.bind(session);
    session.run = ((...args: Parameters<ort.InferenceSession["run"]>) => {
      counter.runs++;
      return run(...args);
    }) as ort.InferenceSession["run"];
  }
  return counter;
}
