/**
 * HttpInputCalculator: splits the server's HTTP_REQUEST_PAYLOAD packet into
 * the parts a graph wants, each on its own (optional) output:
 *
 *   JSON     the parsed JSON body (an object)       FIELDS   multipart text fields
 *   FILES    multipart file parts                   BODY     the raw body (Buffer)
 *   MODEL    the requested model name               URI      the request URI
 *   HEADERS  the request headers                    SIGNAL   aborted when the client leaves
 *
 * A part the request does not have is not sent (timestamp offset 0 keeps
 * downstream bounds moving). A request offering none of the body parts the
 * node wires (say, JSON only, for a multipart request) is refused with 415.
 */
import { Calculator, HttpError, type CalculatorContext, type CalculatorContract, type HttpRequestPayload, type NodeShape } from "../src/index.js";

export class HttpInputCalculator extends Calculator {
  static override readonly contract: CalculatorContract = {
    inputs: { HTTP_REQUEST_PAYLOAD: {} },
    outputs: {
      JSON: { optional: true },
      FIELDS: { optional: true },
      FILES: { optional: true },
      BODY: { optional: true },
      MODEL: { optional: true },
      URI: { optional: true },
      HEADERS: { optional: true },
      SIGNAL: { optional: true },
    },
    timestampOffset: 0,
    validate(node: NodeShape): string | undefined {
      return node.outputs.length === 0 ? "HttpInputCalculator needs at least one output stream (JSON, FIELDS, FILES, BODY, MODEL, URI, HEADERS or SIGNAL)." : undefined;
    },
  };

  /** Which outputs are wired, and what to say when the request has none of the body parts. */
  private wired = new Set<string>();
  private expected: string | undefined;

  override open(ctx: CalculatorContext): void {
    this.wired = new Set(ctx.outputs.ports.map((p) => p.tag));
    const wantsJson = this.wired.has("JSON");
    const wantsForm = this.wired.has("FIELDS") || this.wired.has("FILES");
    if (this.wired.has("BODY") || !(wantsJson || wantsForm)) return;
    this.expected = wantsJson && wantsForm ? "a JSON or multipart/form-data body" : wantsJson ? "a JSON body (Content-Type: application/json)" : "a multipart/form-data body";
  }

  override process(ctx: CalculatorContext): void {
    const req = ctx.inputs.value<HttpRequestPayload>("HTTP_REQUEST_PAYLOAD");
    if (req === undefined) return;
    const out = ctx.outputs;
    const json = req.json;
    const form = req.multipart;
    if (this.expected !== undefined && !(json !== undefined && this.wired.has("JSON")) && !(form !== undefined && (this.wired.has("FIELDS") || this.wired.has("FILES")))) {
      throw new HttpError(415, `${req.path} expects ${this.expected}`, { code: "unsupported_content_type" });
    }
    if (json !== undefined && this.wired.has("JSON")) out.add("JSON", json);
    if (form !== undefined) {
      if (this.wired.has("FIELDS")) out.add("FIELDS", form.fields);
      if (this.wired.has("FILES")) out.add("FILES", form.files);
    }
    if (this.wired.has("BODY")) out.add("BODY", req.body);
    if (this.wired.has("MODEL")) out.add("MODEL", req.model);
    if (this.wired.has("URI")) out.add("URI", req.uri);
    if (this.wired.has("HEADERS")) out.add("HEADERS", req.headers);
    // Absent on a worker thread (the signal does not cross); use the context's signal there.
    if (this.wired.has("SIGNAL") && req.signal !== undefined) out.add("SIGNAL", req.signal);
  }
}
