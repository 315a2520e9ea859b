/** Located errors and warnings about graph files. */

export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters. */
  readonly column: number;
}

export interface Diagnostic {
  readonly message: string;
  readonly location?: SourceLocation;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.column}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  return d.location ? `${formatLocation(d.location)}: ${d.message}` : d.message;
}

/**
 * A graph file that cannot be used: a syntax error, a schema mismatch or a
 * validation failure. Holds every problem found, each located where possible.
 */
export class GraphError extends Error {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[], headline?: string) {
    const lines = diagnostics.map(formatDiagnostic);
    super(headline ? [headline, ...lines].join("\n") : lines.join("\n"));
    this.name = "GraphError";
    this.diagnostics = diagnostics;
  }
}
