/**
 * The protobuf schema graphs are read against: MediaPipe's graph messages,
 * the built-in option messages under proto/, and whatever .proto files user
 * calculators bring. One protobufjs Root holds them all.
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

// 64-bit fields as plain numbers: option values never approach 2^53, and
// calculator authors should not meet Long objects.
protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

/** The project's proto/ folder (works from src/ under ts and from dist/src/). */
export const BUILTIN_PROTO_DIR = findUp(dirname(fileURLToPath(import.meta.url)), "proto");

/** The graph schema files every Schema starts with, relative to proto/. */
const BUILTIN_PROTOS = [
  "mediapipe/framework/calculator.proto",
  "mediapipe/framework/stream_handler/default_input_stream_handler.proto",
  "mediapipe/framework/stream_handler/sync_set_input_stream_handler.proto",
  "mediapipe/framework/stream_handler/fixed_size_input_stream_handler.proto",
  "mediapipe/framework/thread_pool_executor.proto",
  "mediapipe/calculators/core/flow_limiter_calculator.proto",
  "mediapipe/image_gen/image_gen_calculator.proto",
];

export class Schema {
  readonly root: protobuf.Root;
  private readonly includeDirs: string[];
  private readonly loaded: string[] = [];

  constructor() {
    this.root = new protobuf.Root();
    this.includeDirs = [BUILTIN_PROTO_DIR];
    // Imports resolve against the include dirs; google/protobuf/* comes from protobufjs itself.
    this.root.resolvePath = (origin: string, target: string) => {
      if (isAbsolute(target)) return target;
      if (target.startsWith("google/protobuf/")) return target;
      for (const dir of [dirname(origin), ...this.includeDirs]) {
        const candidate = join(dir, target);
        if (existsSync(candidate)) return candidate;
      }
      return join(this.includeDirs[0], target);
    };
    this.addFiles(BUILTIN_PROTOS.map((f) => join(BUILTIN_PROTO_DIR, f)));
  }

  /** Loads more .proto files (a user calculator's options), resolving imports against their folder too. */
  addFiles(files: readonly string[]): void {
    for (const file of files) {
      const abs = resolve(file);
      if (this.loaded.includes(abs)) continue;
      const dir = dirname(abs);
      if (!this.includeDirs.includes(dir)) this.includeDirs.push(dir);
      this.root.loadSync(abs, { keepCase: true });
      this.loaded.push(abs);
    }
    this.root.resolveAll();
  }

  /** The .proto files loaded so far, absolute, in load order (workers replay them). */
  get files(): readonly string[] {
    return this.loaded;
  }

  /** A message type by fully qualified name (with or without the leading dot), or undefined. */
  findType(name: string): protobuf.Type | undefined {
    const found = this.root.lookup(name.replace(/^\./, ""));
    return found instanceof protobuf.Type ? found : undefined;
  }

  /** An extension field by fully qualified name, e.g. `mediapipe.FlowLimiterCalculatorOptions.ext`. */
  findExtension(name: string): protobuf.Field | undefined {
    const found = this.root.lookup(name.replace(/^\./, ""));
    return found instanceof protobuf.Field && found.extend !== undefined ? found : undefined;
  }

  /** The message type named by an Any type URL (`type.googleapis.com/pkg.Type`), or undefined. */
  typeOfAnyUrl(typeUrl: string): protobuf.Type | undefined {
    const slash = typeUrl.lastIndexOf("/");
    return this.findType(typeUrl.slice(slash + 1).trim());
  }

  /** The framework's CalculatorGraphConfig type. */
  get graphConfigType(): protobuf.Type {
    return this.root.lookupType("mediapipe.CalculatorGraphConfig");
  }
}

function findUp(from: string, name: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, name);
    if (existsSync(join(candidate, "mediapipe"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find the ${name}/ folder above ${from}`);
  }
}
