/**
 * Loading graph.pbtxt files: the text format read against MediaPipe's
 * CalculatorGraphConfig, plus what OVMS reads beside it (the header
 * directive) and each node's option payloads, decoded.
 */
import { readFile } from "node:fs/promises";
import type { CalculatorGraphConfig, GraphDirectives, GraphDocument, NodeOptionsEntry } from "./config.js";
import { GraphError, type Diagnostic, type SourceLocation } from "./diagnostics.js";
import type { Schema } from "./schema.js";
import { parseTextFormat, type HeaderComment, type ParsedMessage, type TextFormatResult } from "./textformat/parser.js";

/** Parses graph text; `file` is used in every location. Throws GraphError on the first error. */
export function parseGraphText(text: string, file: string, schema: Schema): GraphDocument {
  const parsed = parseTextFormat(text, schema.graphConfigType, { file, schema });
  const config = parsed.message as unknown as CalculatorGraphConfig;
  const warnings: Diagnostic[] = [...parsed.warnings];
  const directives = readDirectives(parsed.headerComments, file);
  const nodeOptions = collectNodeOptions(config, parsed, schema, warnings);
  const { locations } = parsed;
  return {
    file,
    config,
    directives,
    headerComments: parsed.headerComments.map((c) => c.text.trim()),
    nodeOptions,
    warnings,
    locate: (message, field, index) => locations.locate(message, field, index),
  };
}

/** Reads and parses a graph file; an unreadable file is a GraphError naming the path. */
export async function loadGraphFile(path: string, schema: Schema): Promise<GraphDocument> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new GraphError([{ message: `cannot read graph file "${path}": ${reason}` }]);
  }
  return parseGraphText(text, path, schema);
}

const DIRECTIVE = "OVMS_GRAPH_QUEUE_MAX_SIZE";
const DIRECTIVE_LINE = new RegExp(`^(\\s*)${DIRECTIVE}\\b(\\s*:?\\s*)(.*)$`);

/** `# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO|N` among the header comments, as OVMS reads it. */
function readDirectives(comments: readonly HeaderComment[], file: string): GraphDirectives {
  let found: { value: "AUTO" | number; at: SourceLocation } | undefined;
  for (const c of comments) {
    const m = DIRECTIVE_LINE.exec(c.text);
    if (!m) continue;
    // Columns inside the comment: the text starts right after the "#".
    const at = (offset: number): SourceLocation => ({ file, line: c.line, column: c.column + 1 + offset });
    const key = at(m[1].length);
    if (found) {
      throw new GraphError([{ message: `${DIRECTIVE} is given more than once: expected one directive, already given at ${found.at.line}:${found.at.column}`, location: key }]);
    }
    const valueAt = at(m[1].length + DIRECTIVE.length + m[2].length);
    const raw = m[3].trim();
    if (!m[2].includes(":")) {
      throw new GraphError([{ message: `expected ":" after ${DIRECTIVE}, found ${raw ? `"${raw}"` : "end of line"}`, location: valueAt }]);
    }
    let value: "AUTO" | number;
    if (raw === "AUTO") value = "AUTO";
    else if (/^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))) value = Number(raw);
    else throw new GraphError([{ message: `expected AUTO or a non-negative integer after "${DIRECTIVE}:", found ${raw ? `"${raw}"` : "end of line"}`, location: valueAt }]);
    found = { value, at: key };
  }
  return found ? { graphQueueMaxSize: found.value } : {};
}

/**
 * Each node's option payloads in source order: `options { [X.ext] {…} }` and
 * `node_options { [type.googleapis.com/X] {…} }`, plus node_options written
 * with explicit `type_url`/`value` fields (decoded here).
 */
function collectNodeOptions(config: CalculatorGraphConfig, parsed: TextFormatResult, schema: Schema, warnings: Diagnostic[]): NodeOptionsEntry[][] {
  const owner = new Map<object, number>();
  config.node.forEach((node, i) => {
    if (node.options) owner.set(node.options, i);
    for (const any of node.node_options) owner.set(any, i);
  });
  const entries: NodeOptionsEntry[][] = config.node.map(() => []);
  const expanded = new Set<object>();
  for (const p of parsed.payloads) {
    const i = owner.get(p.container);
    if (i === undefined) continue; // graph-level, executor or stream-handler options
    if (p.via === "any") expanded.add(p.container);
    entries[i].push({
      typeName: p.typeName,
      via: p.via === "any" ? "node_options" : "options",
      ...(p.message ? { message: p.message } : {}),
      ...(p.rawText !== undefined ? { rawText: p.rawText } : {}),
      location: p.location,
    });
  }
  config.node.forEach((node, i) => {
    node.node_options.forEach((any, j) => {
      if (expanded.has(any) || (!any.type_url && !any.value?.length)) return;
      const location = parsed.locations.locate(node, "node_options", j)!;
      const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
      let type: ReturnType<Schema["typeOfAnyUrl"]>;
      try {
        type = schema.typeOfAnyUrl(any.type_url);
      } catch {
        type = undefined; // an odd type_url string is just an unknown type
      }
      if (!type) {
        warnings.push({ message: `unknown options type '${typeName}' kept unparsed: no loaded .proto file defines it`, location });
        entries[i].push({ typeName, via: "node_options", location });
        return;
      }
      let message: ParsedMessage;
      try {
        message = type.decode(any.value) as ParsedMessage;
      } catch (e) {
        throw new GraphError([{ message: `expected node_options value to be an encoded ${typeName}, found bytes that do not decode: ${(e as Error).message}`, location }]);
      }
      parsed.locations.addMessage(message, location);
      entries[i].push({ typeName, via: "node_options", message, location });
    });
    entries[i].sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
  });
  return entries;
}
