/**
 * The ONNX pipeline's model families by name: adding a family is one module
 * plus one entry here.
 */
import { FluxFamily } from "./flux.js";
import { StableDiffusionFamily } from "./sd.js";
import { StableDiffusion3Family } from "./sd3.js";
import { StableDiffusionXLFamily } from "./sdxl.js";
import type { DiffusionFamily, OnnxFamily } from "./types.js";

export const FAMILIES: Readonly<Record<OnnxFamily, new () => DiffusionFamily>> = {
  sd: StableDiffusionFamily,
  sdxl: StableDiffusionXLFamily,
  sd3: StableDiffusion3Family,
  flux: FluxFamily,
};

/** The family modules hold no state: one instance each serves every pipeline and request check. */
const INSTANCES = new Map<OnnxFamily, DiffusionFamily>();

export function familyModule(name: OnnxFamily): DiffusionFamily {
  let family = INSTANCES.get(name);
  if (!family) INSTANCES.set(name, (family = new FAMILIES[name]()));
  return family;
}

export type { Conditioning, DiffusionFamily, OnnxFamily, TextEncoderSessions } from "./types.js";
