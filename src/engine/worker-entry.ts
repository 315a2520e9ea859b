/**
 * The piscina worker of ThreadPoolExecutor nodes (semantics in
 * worker-pool.ts). Keeps this thread's calculator instances per (graph,
 * node), runs `process` with a recording context and sends the recorded
 * outputs back, transferring their buffers.
 */
import { Piscina } from "piscina";
import { awaitEveryThread, CancelFlag, importModule, serializeError } from "../threads/index.js";
import { Schema } from "../graph/schema.js";
import { calculatorNameOf, STOP, type Calculator, type CalculatorClass, type Packet } from "./calculator.js";
import { NodeContext, portIndexes } from "./context.js";
import { Timestamp } from "./timestamp.js";
import { collectTransferables } from "./buffer-ownership.js";
import {
  type WorkerCloseResult,
  type WorkerCloseTask,
  type WorkerNodeInit,
  type WorkerProcessResult,
  type WorkerProcessTask,
  type WorkerTask,
} from "./worker-protocol.js";

/** How often a pending async `process` checks the cancel flag, so signal listeners fire. */
const CANCEL_POLL_MS = 20;

/**
 * The signal of the task being served. Its `aborted` reads the run's shared
 * flag directly, so CPU-bound code polling `ctx.signal.aborted` sees a cancel
 * at once; a timer turns the flag into an abort event for async code.
 */
class TaskSignal {
  private controller: AbortController | undefined;
  flag: CancelFlag | undefined;

  reset(flag: CancelFlag): void {
    this.flag = flag;
    this.controller = undefined;
  }

  private sync(): void {
    const c = this.controller;
    if (c !== undefined && !c.signal.aborted && this.flag?.raised === true) {
      c.abort(new Error("The graph run was cancelled."));
    }
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const c = new AbortController();
      this.controller = c;
      const real = Object.getOwnPropertyDescriptor(AbortSignal.prototype, "aborted")!.get!;
      Object.defineProperty(c.signal, "aborted", {
        get: () => {
          this.sync();
          return real.call(c.signal) as boolean;
        },
      });
      this.sync();
    }
    return this.controller.signal;
  }

  /** Polls the flag until `done` settles, only when someone holds the signal. */
  watch(done: Promise<unknown>): void {
    if (this.controller === undefined) return;
    const timer = setInterval(() => this.sync(), CANCEL_POLL_MS);
    timer.unref();
    void done.finally(() => clearInterval(timer));
  }
}

interface Instance {
  readonly init: WorkerNodeInit;
  readonly calc: Calculator;
  readonly ctx: NodeContext;
  readonly done: boolean[];
  readonly signal: TaskSignal;
}

const instances = new Map<string, Instance>();
const schemas = new Map<string, Schema>();
const modules = new Map<string, Promise<Record<string, unknown>>>();

function schemaFor(files: readonly string[]): Schema {
  const key = files.join("\n");
  let schema = schemas.get(key);
  if (schema === undefined) {
    schema = new Schema();
    schema.addFiles(files);
    schemas.set(key, schema);
  }
  return schema;
}

async function calculatorClass(init: WorkerNodeInit): Promise<CalculatorClass> {
  let mod = modules.get(init.moduleUrl);
  if (mod === undefined) {
    // As the registry did on the main thread (a .ts module through tsx).
    mod = importModule(init.moduleUrl);
    modules.set(init.moduleUrl, mod);
  }
  for (const value of Object.values(await mod)) {
    if (typeof value === "function" && "contract" in value && calculatorNameOf(value as CalculatorClass) === init.calculatorName) {
      return value as CalculatorClass;
    }
  }
  throw new Error(`Module ${init.moduleUrl} exports no calculator named "${init.calculatorName}".`);
}

function rebuildOptions(init: WorkerNodeInit): unknown {
  if (init.optionsType === undefined) return init.options;
  const type = schemaFor(init.schemaFiles).findType(init.optionsType);
  if (type === undefined) throw new Error(`Options type "${init.optionsType}" is not in the schema files.`);
  return type.fromObject(init.options ?? {});
}

async function createInstance(init: WorkerNodeInit, flag: CancelFlag): Promise<Instance> {
  const cls = await calculatorClass(init);
  const done: boolean[] = init.inputs.map(() => false);
  const signal = new TaskSignal();
  signal.reset(flag);
  const ctx = new NodeContext({
    nodeName: init.nodeName,
    calculatorName: init.calculatorName,
    options: rebuildOptions(init),
    indexes: portIndexes(init),
    sideValues: init.sidePackets,
    sidePresent: (i) => init.sidePresent[i] === true,
    inputDone: (i) => done[i],
    signalSource: signal,
    // A promise cannot reach the main thread, which times the call until its result arrives.
    keepsHandoffs: false,
  });
  const calc = new cls();
  ctx.inputTimestamp = Timestamp.Unstarted;
  const opened = calc.open?.(ctx);
  if (opened !== undefined) {
    signal.watch(opened);
    await opened;
  }
  if (ctx.outputs.length > 0 || ctx.outputSidePackets.pending.length > 0) {
    // This instance serves every later run on this thread, and those runs
    // never see what open() emitted: refuse rather than answer only one run.
    const what = ctx.outputs.length > 0 ? "output packets or bounds" : "output side packets";
    ctx.discardRecorded();
    try {
      ctx.inputTimestamp = Timestamp.Done;
      await calc.close?.(ctx); // it opened: close it once
    } catch {
      // the open error below is the one to report
    }
    ctx.discardRecorded();
    throw new Error(
      `Node "${init.nodeName}" (${init.calculatorName}) emitted ${what} from open(), which a worker executor does not support: each worker thread opens the node once and reuses it for every run, so only one run would get them. Emit them from process(), or run the node on the main thread (no executor).`,
    );
  }
  return { init, calc, ctx, done, signal };
}

/** The recorded outputs as a result, with their buffers marked for transfer. */
function takeResult(ctx: NodeContext, stop: boolean): WorkerProcessResult | object {
  const out = ctx.outputs;
  const n = out.length;
  const result: WorkerProcessResult = {
    kinds: out.kinds.slice(0, n),
    portsAt: out.portsAt.slice(0, n),
    values: out.values.slice(0, n),
    stamps: out.stamps.slice(0, n),
    length: n,
    side: ctx.outputSidePackets.pending.splice(0),
    stop,
  };
  out.reset();
  const transfer = new Set<ArrayBuffer>();
  for (const v of result.values) collectTransferables(v, transfer);
  for (const s of result.side) collectTransferables(s.value, transfer);
  if (transfer.size === 0) return result;
  // piscina moves a result only when it is marked by move() and carries its transfer list.
  return Piscina.move({ [Piscina.transferableSymbol]: [...transfer], [Piscina.valueSymbol]: result } as unknown as Parameters<typeof Piscina.move>[0]);
}

function failure(phase: "Open" | "Process", error: unknown): WorkerProcessResult {
  return { kinds: [], portsAt: [], values: [], stamps: [], length: 0, side: [], stop: false, failed: phase, error: serializeError(error) };
}

async function processTask(task: WorkerProcessTask): Promise<WorkerProcessResult | object> {
  const flag = new CancelFlag(task.cancel);
  let inst = instances.get(task.key);
  if (inst === undefined) {
    if (task.init === undefined) return { ...failure("Open", undefined), needInit: true };
    try {
      inst = await createInstance(task.init, flag);
    } catch (e) {
      return failure("Open", e);
    }
    instances.set(task.key, inst);
    Atomics.add(new Int32Array(task.init.openedCount), 0, 1);
  }
  const { ctx, calc, done, signal } = inst;
  signal.reset(flag);
  const current = ctx.inputs.current;
  for (let i = 0; i < current.length; i++) {
    current[i] = task.present[i] ? ({ value: task.values[i], timestamp: task.ts } satisfies Packet) : undefined;
    done[i] = task.done[i];
  }
  ctx.inputTimestamp = task.ts;
  ctx.inProcess = true;
  try {
    let r = calc.process(ctx);
    if (r !== undefined && typeof (r as Promise<unknown>).then === "function") {
      signal.watch(r as Promise<unknown>);
      r = await r;
    }
    return takeResult(ctx, r === STOP);
  } catch (e) {
    ctx.discardRecorded();
    return failure("Process", e);
  } finally {
    ctx.endProcess();
    current.fill(undefined);
  }
}

async function closeAll(task: WorkerCloseTask): Promise<WorkerCloseResult> {
  const errors: { node: string; error: unknown }[] = [];
  for (const inst of instances.values()) {
    try {
      inst.ctx.inputTimestamp = Timestamp.Done;
      inst.ctx.inputs.current.fill(undefined);
      await inst.calc.close?.(inst.ctx);
    } catch (error) {
      errors.push({ node: inst.init.nodeName, error: serializeError(error) });
    }
    inst.ctx.discardRecorded();
  }
  instances.clear();
  // Hold this thread until every thread has its close task.
  awaitEveryThread(task.barrier, task.parties, task.waitMs);
  return { errors };
}

export default function handle(task: WorkerTask): Promise<WorkerProcessResult | WorkerCloseResult | object> {
  return task.kind === "closeAll" ? closeAll(task) : processTask(task);
}
