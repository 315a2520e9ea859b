/**
 * Prometheus metrics under OVMS's MediaPipe family names and labels
 * (`name`, `api="V3"`, `method="Unary"|"Stream"`, `interface="REST"`), plus
 * Node's process metrics, in a registry of this server's own (never the
 * global one, so several servers in one process do not mix).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The families graphserve reports, and whether OVMS reports them by default. */
const FAMILIES = {
  ovms_current_graphs: true,
  ovms_requests_accepted: true,
  ovms_requests_rejected: true,
  ovms_responses: true,
  ovms_graph_error: true,
  ovms_graph_processing_time_us: true,
  ovms_graph_request_latency_us: false,
} as const;
type Family = keyof typeof FAMILIES;

/**
 * OVMS's model-level families: accepted in `--metrics_list` so an OVMS
 * command line still starts, never reported (graphs are not OVMS model
 * instances; OVMS does not report them for graphs either).
 */
const MODEL_FAMILIES = [
  "ovms_current_requests",
  "ovms_requests_success",
  "ovms_requests_fail",
  "ovms_request_time_us",
  "ovms_streams",
  "ovms_inference_time_us",
  "ovms_wait_for_infer_req_time_us",
  "ovms_infer_req_queue_size",
  "ovms_infer_req_active",
];

/** Every name `--metrics_list` accepts. */
export const METRIC_FAMILIES: readonly string[] = [...Object.keys(FAMILIES), ...MODEL_FAMILIES];

/** The names in `list` that are not metric families (an empty array when all are). */
export function unknownMetricFamilies(list: readonly string[]): string[] {
  return list.filter((n) => !METRIC_FAMILIES.includes(n));
}

/** OVMS's buckets: floor(10·1.8^i) µs for i = 0..32. */
export const PROCESSING_TIME_BUCKETS: readonly number[] = Array.from({ length: 33 }, (_, i) => Math.floor(10 * 1.8 ** i));

export type RequestMethod = "Unary" | "Stream";

/** The metric children of one (servable, method): label lookups happen once, not per request. */
export interface ServableMetrics {
  accepted(): void;
  rejected(): void;
  responses(n?: number): void;
  graphError(): void;
  graphStarted(): void;
  graphEnded(): void;
  processingTimeUs(us: number): void;
  requestLatencyUs(us: number): void;
}

const NOOP: ServableMetrics = {
  accepted() {},
  rejected() {},
  responses() {},
  graphError() {},
  graphStarted() {},
  graphEnded() {},
  processingTimeUs() {},
  requestLatencyUs() {},
};

export interface MetricsOptions {
  readonly enable: boolean;
  /** Only these families (OVMS's `metrics_list`); undefined: OVMS's default set. */
  readonly list?: readonly string[];
  /** The registry to fill (the one the servables' nodes register into); default a new one. */
  readonly registry?: Registry;
}

export class ServerMetrics {
  /** Undefined when metrics are off: `/metrics` answers 404. */
  readonly registry: Registry | undefined;
  private readonly counters = new Map<Family, Counter<string>>();
  private readonly histograms = new Map<Family, Histogram<string>>();
  private current: Gauge<string> | undefined;
  private readonly children = new Map<string, ServableMetrics>();

  constructor(opts: MetricsOptions) {
    if (!opts.enable) return;
    const unknown = unknownMetricFamilies(opts.list ?? []);
    if (unknown.length > 0) throw new Error(`unknown metric famil${unknown.length === 1 ? "y" : "ies"} in metrics_list: ${unknown.join(", ")}`);
    const registry = opts.registry ?? new Registry();
    this.registry = registry;
    collectDefaultMetrics({ register: registry });
    const on = (f: Family) => (opts.list === undefined ? FAMILIES[f] : opts.list.includes(f));
    const labelNames = ["api", "interface", "method", "name"];
    const counter = (f: Family, help: string) => {
      if (on(f)) this.counters.set(f, new Counter({ name: f, help, labelNames, registers: [registry] }));
    };
    counter("ovms_requests_accepted", "Number of accepted requests: the request packet was pushed into the graph.");
    counter("ovms_requests_rejected", "Number of rejected requests: the servable was named but the request could not be put into its graph.");
    counter("ovms_responses", "Number of responses: response packets (unary) or events (stream) sent.");
    counter("ovms_graph_error", "Number of failed graph executions.");
    const histogram = (f: Family, help: string) => {
      if (on(f)) this.histograms.set(f, new Histogram({ name: f, help, labelNames, buckets: [...PROCESSING_TIME_BUCKETS], registers: [registry] }));
    };
    histogram("ovms_graph_processing_time_us", "Time from the request packet entering the graph to the graph's answer, in microseconds.");
    histogram("ovms_graph_request_latency_us", "Time from the request's arrival to the response's end, in microseconds.");
    if (on("ovms_current_graphs")) {
      this.current = new Gauge({ name: "ovms_current_graphs", help: "Number of graphs currently processing a request.", labelNames: ["name"], registers: [registry] });
    }
  }

  /** The children for one servable and method (cached). */
  for(name: string, method: RequestMethod): ServableMetrics {
    if (this.registry === undefined) return NOOP;
    const key = `${method}\u0000${name}`;
    let m = this.children.get(key);
    if (m === undefined) {
      const labels = { api: "V3", interface: "REST", method, name };
      const count = (f: Family) => this.counters.get(f)?.labels(labels);
      const hist = (f: Family) => this.histograms.get(f)?.labels(labels);
      const [acc, rej, resp, err] = [count("ovms_requests_accepted"), count("ovms_requests_rejected"), count("ovms_responses"), count("ovms_graph_error")];
      const [proc, lat] = [hist("ovms_graph_processing_time_us"), hist("ovms_graph_request_latency_us")];
      const cur = this.current?.labels({ name });
      m = {
        accepted: () => acc?.inc(),
        rejected: () => rej?.inc(),
        responses: (n = 1) => resp?.inc(n),
        graphError: () => err?.inc(),
        graphStarted: () => cur?.inc(),
        graphEnded: () => cur?.dec(),
        processingTimeUs: (us) => proc?.observe(us),
        requestLatencyUs: (us) => lat?.observe(us),
      };
      this.children.set(key, m);
    }
    return m;
  }
}
