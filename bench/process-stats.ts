/** What the benches read about a server process from /proc (Linux). */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** A memory figure of /proc/PID/status in MB: VmRSS (now) or VmHWM (peak). */
export function memoryMb(pid: number, key: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Sockets the process holds open (its fds that are sockets, the listener included). */
export function openSockets(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}
