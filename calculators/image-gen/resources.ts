/**
 * What one ImageGenCalculator node shares across all its requests, built
 * when the servable loads (OVMS's IMAGE_GEN_NODE_RESOURCES): the backend
 * with its pipelines, the generation slots, and the node's metrics.
 */
import { isAbsolute, resolve } from "node:path";
import { Counter, Gauge, Histogram, type Metric, type Registry } from "prom-client";
import type { CalculatorLogger, NodeResources, ResourceLoadContext } from "../../src/index.js";
import { BackendError, loadBackend, type BackendCapabilities, type DiffusionBackend } from "../../src/backends/index.js";
import { checkImageGenOptions, type ImageGenCalculatorOptions, type ImageGenSettings } from "./options.js";
import { GenerationSlots } from "./slots.js";

/** One registration per host registry, shared by every node (told apart by labels). */
function metric<M extends Metric>(registry: Registry, name: string, make: (registers: Registry[]) => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make([registry]);
}

const labelNames = ["servable", "node"] as const;
const queueWait = (r: Registry) =>
  metric(r, "graphserve_image_queue_wait_seconds", (registers) => new Histogram({ name: "graphserve_image_queue_wait_seconds", help: "Time image requests waited for a generation slot (from arrival at the server).", labelNames, buckets: [0.005, 0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300], registers }));
const queueDepth = (r: Registry) =>
  metric(r, "graphserve_image_queue_depth", (registers) => new Gauge({ name: "graphserve_image_queue_depth", help: "Image requests waiting for a generation slot.", labelNames, registers }));
const generationTime = (r: Registry) =>
  metric(r, "graphserve_image_generation_seconds", (registers) => new Histogram({ name: "graphserve_image_generation_seconds", help: "Time spent generating (text encoding, denoising, VAE) per request.", labelNames: [...labelNames, "mode"], buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers }));
const imagesGenerated = (r: Registry) =>
  metric(r, "graphserve_images_generated_total", (registers) => new Counter({ name: "graphserve_images_generated_total", help: "Images generated.", labelNames, registers }));

export class ImageGenResources implements NodeResources {
  readonly capacity: number;
  readonly capabilities: BackendCapabilities;
  readonly slots: GenerationSlots;
  readonly metrics;

  private constructor(
    readonly settings: ImageGenSettings,
    readonly backend: DiffusionBackend,
    readonly logger: CalculatorLogger,
    labels: { servable: string; node: string },
    registry: Registry,
  ) {
    this.capabilities = backend.capabilities();
    const depth = queueDepth(registry);
    this.slots = new GenerationSlots(this.capabilities.parallelism, (delta) => depth.inc(labels, delta));
    depth.inc(labels, 0); // the series exists from the start
    this.capacity = this.capabilities.parallelism + settings.maxQueueSize;
    const wait = queueWait(registry);
    const gen = generationTime(registry);
    const count = imagesGenerated(registry);
    this.metrics = {
      queueWait: (seconds: number) => wait.observe(labels, seconds),
      generated: (mode: string, seconds: number, images: number) => {
        gen.observe({ ...labels, mode }, seconds);
        count.inc(labels, images);
      },
    };
  }

  static async load(ctx: ResourceLoadContext<ImageGenCalculatorOptions>): Promise<ImageGenResources> {
    const settings = checkImageGenOptions(ctx.node.options);
    if (settings.loraAdapters.length > 0) {
      throw new BackendError(
        `node "${ctx.node.name}" configures lora_adapters, but neither of graphserve's backends can apply LoRA: ONNX Runtime has no adapter support here and the OpenVINO GenAI JavaScript binding exposes none. Remove lora_adapters (and composite_lora_adapters) or fuse the adapter into the model.`,
      );
    }
    const modelsDir = isAbsolute(settings.modelsPath) ? settings.modelsPath : resolve(ctx.graphDir, settings.modelsPath);
    const backend = await loadBackend(modelsDir, {
      device: settings.devices.length > 0 ? settings.devices.join(" ") : undefined,
      properties: settings.pluginConfig,
      maxPixels: settings.maxResolution.width * settings.maxResolution.height,
      maxImagesPerPrompt: settings.maxImagesPerPrompt,
      noise: settings.noiseGenerator,
      // The request size the memory pre-check budgets for: the graph's default, else the model's own.
      memoryCheck: { ...ctx.memoryCheck, ...(settings.defaultResolution !== undefined ? { imageSize: settings.defaultResolution } : {}) },
      ...(settings.staticResolutions.length === 1 ? { staticResolution: settings.staticResolutions[0] } : {}),
      onWarning: (message: string) => ctx.logger.warn({ node: ctx.node.name }, message),
    });
    if (ctx.signal.aborted) {
      await backend.dispose();
      ctx.signal.throwIfAborted();
    }
    const r = new ImageGenResources(settings, backend, ctx.logger, { servable: ctx.servable, node: ctx.node.name }, ctx.metrics);
    const caps = r.capabilities;
    ctx.logger.info(
      { node: ctx.node.name, backend: caps.backend, family: caps.family, modes: caps.modes, parallelism: caps.parallelism, maxQueueSize: settings.maxQueueSize, noiseGenerator: settings.noiseGenerator },
      `image generation model ${modelsDir} loaded on ${caps.backend}`,
    );
    return r;
  }

  /** The engine rounds it up and bounds it (node-resources.ts). */
  retryAfterSeconds(): number {
    return this.slots.estimatedWaitSeconds();
  }

  dispose(): Promise<void> {
    return this.backend.dispose();
  }
}
