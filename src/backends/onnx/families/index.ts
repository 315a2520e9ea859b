/**
 * The ONNX pipeline's model families by name: adding a family is one module
 * plus one entry here.
 */
import { StableDiffusionFamily } from "./sd.js";
import { StableDiffusionXLFamily } from "./sdxl.js";
import type { DiffusionFamily, OnnxFamily } from "./types.js";

export const FAMILIES: Readonly<Record<OnnxFamily, new () => DiffusionFamily>> = {
  sd: StableDiffusionFamily,
  sdxl: StableDiffusionXLFamily,
};

export function familyModule(name: OnnxFamily): DiffusionFamily {
  return new FAMILIES[name]();
}

export type { Conditioning, DiffusionFamily, OnnxFamily, TextEncoderSessions } from "./types.js";
