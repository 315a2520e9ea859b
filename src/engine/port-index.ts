/**
 * PortKey → flat port index, built once per node. Calculators name ports on
 * every call (`ctx.inputs.value("IMAGE")`), so this sits on the hot path:
 * numbers resolve arithmetically, and a few string keys by identity scan
 * (literals in calculator code are interned, so `===` is a pointer compare
 * before any hashing). Nodes with many ports fall back to a Map.
 */
import type { Port, PortKey } from "./calculator.js";

const SCAN_LIMIT = 8;

export class PortIndex {
  readonly ports: readonly Port[];
  /** Flat index of untagged port i is i when "" sorts first (MediaPipe's flat order). */
  private readonly untagged: number;
  private readonly untaggedContiguous: boolean;
  private readonly keys: PortKey[] = [];
  private readonly flat: number[] = [];
  private readonly map = new Map<PortKey, number>();
  private readonly counts = new Map<string, number>();

  constructor(ports: readonly Port[]) {
    this.ports = ports;
    let untagged = 0;
    let contiguous = true;
    ports.forEach((p, i) => {
      this.counts.set(p.tag, (this.counts.get(p.tag) ?? 0) + 1);
      if (p.tag === "") {
        if (p.index !== i) contiguous = false;
        untagged++;
        this.add(p.index, i);
      } else {
        this.add(p.index === 0 ? p.tag : `${p.tag}:${p.index}`, i);
        if (p.index === 0) this.add(`${p.tag}:0`, i);
      }
    });
    this.untagged = untagged;
    this.untaggedContiguous = contiguous;
  }

  private add(key: PortKey, index: number): void {
    this.keys.push(key);
    this.flat.push(index);
    this.map.set(key, index);
  }

  /** The flat index, or -1 when the node has no such port. */
  resolve(key: PortKey): number {
    if (typeof key === "number") {
      if (this.untaggedContiguous) return key >= 0 && key < this.untagged && key % 1 === 0 ? key : -1;
      return this.map.get(key) ?? -1;
    }
    const keys = this.keys;
    const n = keys.length < SCAN_LIMIT ? keys.length : SCAN_LIMIT;
    for (let i = 0; i < n; i++) if (keys[i] === key) return this.flat[i];
    return this.map.get(key) ?? -1;
  }

  count(tag = ""): number {
    return this.counts.get(tag) ?? 0;
  }
}

/** Ports by key for error messages: `"TAG"`, `"TAG:1"` or `#2` for untagged. */
export function describeKey(key: PortKey): string {
  return typeof key === "number" ? `#${key}` : `"${key}"`;
}
