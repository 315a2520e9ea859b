/**
 * Flow control (max_queue_size): a node input queue at its limit throttles
 * the sources upstream of it; they are scheduled again once it drains. If
 * the run goes idle while a source is throttled, MediaPipe's deadlock relief
 * lets every full queue grow by one, or the run fails with UNAVAILABLE when
 * the graph sets report_deadlock. Graph input streams are never throttled.
 */
import type { NodePlan } from "./graph-plan.js";
import type { PacketQueue } from "./packet-queue.js";
import { NodeLife, type NodeState, type RunCore } from "./run-core.js";
import { StatusError } from "./run-errors.js";

export class Throttling {
  constructor(private readonly run: RunCore) {}

  /** `q` (input `port` of `node`) reached its limit: its upstream sources pause. */
  markFull(rt: NodeState, node: number, port: number, q: PacketQueue): void {
    q.full = true;
    rt.fullQueues++;
    const sources = this.run.plan.nodes[node].throttles[port];
    const nodes = this.run.nodes;
    for (let k = 0; k < sources.length; k++) nodes[sources[k]].throttledBy++;
  }

  unmarkFull(rt: NodeState, n: NodePlan, port: number, q: PacketQueue): void {
    q.full = false;
    rt.fullQueues--;
    const sources = n.throttles[port];
    const nodes = this.run.nodes;
    for (let k = 0; k < sources.length; k++) {
      if (--nodes[sources[k]].throttledBy === 0) this.run.schedule(sources[k]);
    }
  }

  /** After an input set was taken: the queues now below their limit stop throttling. */
  releaseFull(rt: NodeState, n: NodePlan): void {
    const queues = rt.queues;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i];
      if (q.full && q.size < q.limit) this.unmarkFull(rt, n, i, q);
    }
  }

  /** A node closing lets go of its queues (and of what they throttled). */
  clearQueues(rt: NodeState, n: NodePlan): void {
    for (let i = 0; i < rt.queues.length; i++) {
      const q = rt.queues[i];
      if (q.full) this.unmarkFull(rt, n, i, q);
      q.clear();
    }
  }

  /** Some open source waits on a full queue (with the run idle: a deadlock). */
  anySourceThrottled(): boolean {
    const { nodes, plan } = this.run;
    for (let id = 0; id < nodes.length; id++) {
      const rt = nodes[id];
      if (plan.nodes[id].isSource && rt.throttledBy > 0 && rt.state !== NodeLife.Closed && rt.state !== NodeLife.Waiting) return true;
    }
    return false;
  }

  /**
   * The run is idle and a source is throttled: fail with UNAVAILABLE
   * (report_deadlock), or let every full queue grow by one. Returns whether
   * that made new work.
   */
  relieveDeadlock(): boolean {
    const { nodes, plan } = this.run;
    if (plan.graph.reportDeadlock) {
      const full: string[] = [];
      nodes.forEach((rt, id) =>
        rt.queues.forEach((q, i) => {
          if (q.full) full.push(`"${plan.streams[plan.nodes[id].inStream[i]].name}"`);
        }),
      );
      this.run.fail(undefined, "Graph", new StatusError("UNAVAILABLE", `Detected a deadlock due to input throttling for: ${full.join(", ")}.`));
      return false;
    }
    nodes.forEach((rt, id) =>
      rt.queues.forEach((q, i) => {
        if (!q.full) return;
        q.limit = q.size + 1;
        this.unmarkFull(rt, plan.nodes[id], i, q);
      }),
    );
    return true;
  }
}
