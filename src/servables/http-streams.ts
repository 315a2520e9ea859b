/**
 * Where a servable's graph meets HTTP, as in OVMS: the request packet goes on
 * the graph input stream tagged HTTP_REQUEST_PAYLOAD, and the first packet on
 * the output stream tagged HTTP_RESPONSE_PAYLOAD is the response. A graph
 * without both cannot answer a request, so it is refused when it loads.
 */
import type { ValidatedGraph } from "../graph/validated.js";

export const REQUEST_TAG = "HTTP_REQUEST_PAYLOAD";
export const RESPONSE_TAG = "HTTP_RESPONSE_PAYLOAD";

export interface HttpStreams {
  readonly input: string;
  readonly output: string;
}

/** The graph's request and response stream names; throws, naming what is missing, when it cannot serve HTTP. */
export function httpStreams(graph: ValidatedGraph): HttpStreams {
  const input = graph.inputStreams.find((p) => p.tag === REQUEST_TAG)?.name;
  const output = graph.outputStreams.find((p) => p.tag === RESPONSE_TAG)?.name;
  if (input !== undefined && output !== undefined) return { input, output };
  const missing = [
    ...(input === undefined ? [`an input_stream tagged ${REQUEST_TAG} (input_stream: "${REQUEST_TAG}:input")`] : []),
    ...(output === undefined ? [`an output_stream tagged ${RESPONSE_TAG} (output_stream: "${RESPONSE_TAG}:output")`] : []),
  ];
  throw new Error(`the graph cannot serve HTTP: a servable's graph needs ${missing.join(" and ")}; graphs/echo/graph.pbtxt is the smallest one that does`);
}
