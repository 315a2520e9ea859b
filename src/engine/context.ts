/**
 * The CalculatorContext the engine hands to calculators, shared by the main
 * thread and worker threads. A context records what the calculator emits
 * (packets, bounds, closes, side packets) in flat arrays; the run loop
 * applies them when the call returns, as MediaPipe batches a Process call's
 * updates. What a call hands off (`continueUntil`) is kept for the node's
 * statistics only. With max_in_flight 1 one context per node is reused for every
 * call, so the steady state allocates only the packets themselves.
 */
import type {
  CalculatorContext,
  InputPorts,
  OutputPorts,
  Packet,
  Port,
  PortKey,
  SidePacketReader,
  SidePacketWriter,
} from "./calculator.js";
import type { CallOutcome } from "./node-stats.js";
import { describeKey, PortIndex } from "./port-index.js";

/** What a node's ports look like, precomputed once per graph. */
export interface PortIndexes {
  readonly inputs: PortIndex;
  readonly outputs: PortIndex;
  readonly inputSidePackets: PortIndex;
  readonly outputSidePackets: PortIndex;
}

export function portIndexes(node: {
  inputs: readonly Port[];
  outputs: readonly Port[];
  inputSidePackets: readonly Port[];
  outputSidePackets: readonly Port[];
}): PortIndexes {
  return {
    inputs: new PortIndex(node.inputs),
    outputs: new PortIndex(node.outputs),
    inputSidePackets: new PortIndex(node.inputSidePackets),
    outputSidePackets: new PortIndex(node.outputSidePackets),
  };
}

export const OP_ADD = 0;
export const OP_BOUND = 1;
export const OP_CLOSE = 2;

class InputView implements InputPorts {
  readonly ports: readonly Port[];
  /** Packets of the current input set by flat index; undefined = empty packet. */
  readonly current: (Packet | undefined)[];
  constructor(
    private readonly index: PortIndex,
    private readonly nodeName: string,
    private readonly doneAt: (flat: number) => boolean,
  ) {
    this.ports = index.ports;
    this.current = new Array(index.ports.length).fill(undefined);
  }
  private flat(key: PortKey): number {
    const i = this.index.resolve(key);
    if (i < 0) throw new Error(`Node "${this.nodeName}" has no input stream ${describeKey(key)}.`);
    return i;
  }
  count(tag?: string): number {
    return this.index.count(tag);
  }
  has(key: PortKey): boolean {
    return this.index.resolve(key) >= 0;
  }
  packet<T = unknown>(key: PortKey): Packet<T> | undefined {
    return this.current[this.flat(key)] as Packet<T> | undefined;
  }
  value<T = unknown>(key: PortKey): T | undefined {
    return this.current[this.flat(key)]?.value as T | undefined;
  }
  isDone(key: PortKey): boolean {
    return this.doneAt(this.flat(key));
  }
}

/** Records a call's output operations; see OP_*. */
export class OutputBuffer implements OutputPorts {
  readonly ports: readonly Port[];
  kinds: number[] = [];
  portsAt: number[] = [];
  values: unknown[] = [];
  stamps: number[] = [];
  length = 0;
  constructor(
    private readonly index: PortIndex,
    private readonly nodeName: string,
    private readonly owner: { inputTimestamp: number },
  ) {
    this.ports = index.ports;
  }
  private flat(key: PortKey): number {
    const i = this.index.resolve(key);
    if (i < 0) throw new Error(`Node "${this.nodeName}" has no output stream ${describeKey(key)}.`);
    return i;
  }
  private push(kind: number, port: number, value: unknown, ts: number): void {
    const n = this.length++;
    this.kinds[n] = kind;
    this.portsAt[n] = port;
    this.values[n] = value;
    this.stamps[n] = ts;
  }
  count(tag?: string): number {
    return this.index.count(tag);
  }
  has(key: PortKey): boolean {
    return this.index.resolve(key) >= 0;
  }
  add(key: PortKey, value: unknown, timestamp?: number): void {
    this.push(OP_ADD, this.flat(key), value, timestamp ?? this.owner.inputTimestamp);
  }
  setNextTimestampBound(key: PortKey, timestamp: number): void {
    this.push(OP_BOUND, this.flat(key), undefined, timestamp);
  }
  close(key: PortKey): void {
    this.push(OP_CLOSE, this.flat(key), undefined, 0);
  }
  /** Forgets the recorded operations (values are released for GC). */
  reset(): void {
    for (let i = 0; i < this.length; i++) this.values[i] = undefined;
    this.length = 0;
  }
}

class SideReader implements SidePacketReader {
  readonly ports: readonly Port[];
  constructor(
    private readonly index: PortIndex,
    /** Values by flat input side packet index. */
    private readonly values: readonly unknown[],
    private readonly present: (flat: number) => boolean,
  ) {
    this.ports = index.ports;
  }
  has(key: PortKey): boolean {
    const i = this.index.resolve(key);
    return i >= 0 && this.present(i);
  }
  get<T = unknown>(key: PortKey): T | undefined {
    const i = this.index.resolve(key);
    return i < 0 ? undefined : (this.values[i] as T | undefined);
  }
}

/** Records output side packets as (flat index, value) pairs. */
export class SideWriter implements SidePacketWriter {
  readonly ports: readonly Port[];
  readonly pending: { port: number; value: unknown }[] = [];
  constructor(
    private readonly index: PortIndex,
    private readonly nodeName: string,
  ) {
    this.ports = index.ports;
  }
  set(key: PortKey, value: unknown): void {
    const i = this.index.resolve(key);
    if (i < 0) throw new Error(`Node "${this.nodeName}" has no output side packet ${describeKey(key)}.`);
    this.pending.push({ port: i, value });
  }
}

export interface ContextInit {
  readonly nodeName: string;
  readonly calculatorName: string;
  readonly options: unknown;
  readonly indexes: PortIndexes;
  /** Input side packet values by flat index (live: the engine fills them before open). */
  readonly sideValues: readonly unknown[];
  readonly sidePresent: (flat: number) => boolean;
  readonly inputDone: (flat: number) => boolean;
  /** Read lazily: an AbortController is only created when a calculator asks. */
  readonly signalSource: { readonly signal: AbortSignal };
  /**
   * Whether `continueUntil` promises are kept for the engine's statistics
   * (main thread); a worker thread cannot hand them over, so it drops them.
   */
  readonly keepsHandoffs: boolean;
}

/** One `continueUntil` promise, settled to how the handed-off work ended (it never rejects). */
export type Handoff = Promise<CallOutcome>;

const failedHandoff = (): CallOutcome => "failed";

/** A promise or any object with a `then` method, as `await` treats it. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

export class NodeContext implements CalculatorContext {
  readonly nodeName: string;
  readonly calculatorName: string;
  readonly options: unknown;
  inputTimestamp = 0;
  readonly inputs: InputView;
  readonly outputs: OutputBuffer;
  readonly inputSidePackets: SidePacketReader;
  readonly outputSidePackets: SideWriter;
  private readonly signalSource: { readonly signal: AbortSignal };
  private readonly keepsHandoffs: boolean;
  /** Set by the engine while a `process` call runs: `continueUntil` belongs to one. */
  inProcess = false;
  /** What the running call handed off (`continueUntil`); undefined in the common case, so no call allocates. */
  handoffs: Handoff[] | undefined = undefined;

  constructor(init: ContextInit) {
    this.nodeName = init.nodeName;
    this.calculatorName = init.calculatorName;
    this.options = init.options;
    this.inputs = new InputView(init.indexes.inputs, init.nodeName, init.inputDone);
    this.outputs = new OutputBuffer(init.indexes.outputs, init.nodeName, this);
    this.inputSidePackets = new SideReader(init.indexes.inputSidePackets, init.sideValues, init.sidePresent);
    this.outputSidePackets = new SideWriter(init.indexes.outputSidePackets, init.nodeName);
    this.signalSource = init.signalSource;
    this.keepsHandoffs = init.keepsHandoffs;
  }

  get signal(): AbortSignal {
    return this.signalSource.signal;
  }

  continueUntil(done: PromiseLike<unknown>, signal?: AbortSignal): void {
    if (!isThenable(done)) {
      throw new TypeError(`Node "${this.nodeName}" (${this.calculatorName}) passed ${done === null ? "null" : typeof done} to continueUntil, which takes a promise.`);
    }
    if (!this.inProcess) {
      throw new Error(`Node "${this.nodeName}" (${this.calculatorName}) called continueUntil outside process(): it extends a running process call, so call it before that call returns or settles.`);
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError(`Node "${this.nodeName}" (${this.calculatorName}) passed ${signal === null ? "null" : typeof signal} as continueUntil's signal, which must be an AbortSignal.`);
    }
    // Promise.resolve: a thenable whose then() throws counts as a rejection, not an escape.
    const settled = Promise.resolve(done);
    if (!this.keepsHandoffs) {
      settled.catch(failedHandoff);
      return;
    }
    // The run's signal by default: work that outlives the run (a stream) passes the one that cancels it.
    const cancel = signal ?? this.signal;
    (this.handoffs ??= []).push(settled.then((): CallOutcome => (cancel.aborted ? "cancelled" : "ok"), failedHandoff));
  }

  /**
   * Forgets what the current call recorded (packets, bounds, closes, output
   * side packets) without applying it: the call failed, the run halted, or a
   * worker refused what open() emitted.
   */
  discardRecorded(): void {
    this.outputs.reset();
    this.outputSidePackets.pending.length = 0;
  }

  /** The engine ends the running `process` call: returns what it handed off, undefined when nothing. */
  endProcess(): Handoff[] | undefined {
    this.inProcess = false;
    const h = this.handoffs;
    if (h !== undefined) this.handoffs = undefined;
    return h;
  }
}
