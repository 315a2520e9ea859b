/**
 * `graphserve make-tiny-model --out DIR [--family sd|sdxl|clip] [--inpainting] [--seed N]`:
 * a complete, seeded, few-hundred-KB Optimum-layout ONNX model folder with a
 * graph.pbtxt beside it, so a servable can be tried and tested with nothing
 * downloaded. The pixels are noise; the files' names, dtypes and layouts are real.
 */
import { existsSync, readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { FlagError, parseFlags } from "./flags.js";
import { packageVersion } from "./version.js";
import { makeTinyClip } from "../backends/onnx/tiny/make-tiny-clip.js";
import { makeTinyModel, type TinyFamily } from "../backends/onnx/tiny/make-tiny-model.js";

export const TINY_MODEL_USAGE = `  graphserve make-tiny-model --out DIR [--family sd|sdxl|clip] [--inpainting] [--seed N]
                                     write a tiny seeded ONNX Stable Diffusion model and its graph.pbtxt
                                     (clip: a tiny CLIP for graphserve accuracy --clip)`;

export interface TinyGraphSettings {
  readonly defaultResolution?: string;
  readonly maxResolution?: string;
  readonly defaultSteps?: number;
  readonly maxSteps?: number;
}

/** The servable's graph, as OVMS's exporter writes it, pointing at the model beside it. */
export function tinyModelGraph({ defaultResolution = "64x64", maxResolution = "256x256", defaultSteps = 4, maxSteps = 50 }: TinyGraphSettings = {}): string {
  return `# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"

node: {
  name: "ImageGenExecutor"
  calculator: "ImageGenCalculator"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "./",
      device: "CPU",
      default_resolution: "${defaultResolution}",
      max_resolution: "${maxResolution}",
      default_num_inference_steps: ${defaultSteps},
      max_num_inference_steps: ${maxSteps},
    }
  }
}
`;
}

export async function makeTinyModelCommand(argv: readonly string[], io: { out(l: string): void; err(l: string): void }): Promise<number> {
  let values;
  try {
    ({ values } = parseFlags({
      args: [...argv],
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        out: { type: "string" },
        family: { type: "string", default: "sd" },
        inpainting: { type: "boolean", default: false },
        seed: { type: "string", default: "0" },
      },
    }));
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    io.err(`graphserve make-tiny-model: ${e.message}`);
    return 2;
  }
  if (values.help) {
    io.out(`Usage:\n${TINY_MODEL_USAGE}`);
    return 0;
  }
  if (values.version) {
    io.out(packageVersion());
    return 0;
  }
  if (values.out === undefined) {
    io.err("graphserve make-tiny-model: --out DIR is required");
    return 2;
  }
  if (values.family !== "sd" && values.family !== "sdxl" && values.family !== "clip") {
    io.err(`graphserve make-tiny-model: --family must be sd, sdxl or clip, not "${values.family}"`);
    return 2;
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    io.err(`graphserve make-tiny-model: --seed must be a non-negative integer, not "${values.seed}"`);
    return 2;
  }
  const out = resolve(values.out);
  // Never mix a fresh model into someone's folder.
  if (existsSync(out) && readdirSync(out).length > 0) {
    io.err(`graphserve make-tiny-model: ${out} exists and is not empty`);
    return 1;
  }
  if (values.family === "clip") {
    // A CLIP for `graphserve accuracy --clip`: text and vision towers, no graph (it is not served).
    await makeTinyClip(out, { seed });
    io.out(`wrote a tiny CLIP (seed ${seed}) to ${out}`);
    return 0;
  }
  await makeTinyModel(out, { family: values.family as TinyFamily, inpainting: values.inpainting, seed });
  await writeFile(join(out, "graph.pbtxt"), tinyModelGraph());
  io.out(`wrote a tiny ${values.family}${values.inpainting ? " inpainting" : ""} model (seed ${seed}) and graph.pbtxt to ${out}`);
  return 0;
}
