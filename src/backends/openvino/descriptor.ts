/**
 * OpenVINO GenAI as a registered backend (catalog.ts): openvino_model.xml
 * components, preferred (the format OVMS users export for Intel hardware)
 * when its optional package imports here.
 */
import type { BackendDescriptor } from "../catalog.js";
import { loadOpenVino } from "./load-module.js";
import type { OpenVinoLoadOptions } from "./openvino-backend.js";

export const openVinoBackend: BackendDescriptor = {
  kind: "openvino",
  modelFile: "openvino_model.xml",
  preference: 0,
  async unavailable(loader) {
    // Node ≥ 21 and its runtime downloaded at install: tried by importing it.
    try {
      await loadOpenVino(loader);
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  },
  async load(modelDir, opts) {
    const { OpenVinoBackend } = await import("./openvino-backend.js");
    return OpenVinoBackend.load(modelDir, opts as OpenVinoLoadOptions);
  },
};
