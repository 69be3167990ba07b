// CPU time counters from /proc (Linux): a process's own CPU time, and the
// machine's counters as a whole and per core.
import { readFileSync } from "node:fs";

/** User + system CPU time of a process so far, ms (/proc/<pid>/stat; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface CpuCounters {
  /** "cpu" for the whole machine, "cpu0", "cpu1"... per core. */
  name: string;
  busy: number;
  /** Idle and waiting for I/O. */
  idle: number;
  steal: number;
}

/** Jiffies of the whole machine (first entry) and of each core (/proc/stat). */
export function cpuTimes(): CpuCounters[] {
  return readFileSync("/proc/stat", "utf8")
    .split("\n")
    .filter((l) => /^cpu\d*\s/.test(l))
    .map((l) => {
      const [name, ...f] = l.trim().split(/\s+/);
      const [user, nice, system, idle, iowait, irq, softirq, steal] = f.map(Number);
      return { name, busy: user + nice + system + irq + softirq, idle: idle + iowait, steal: steal ?? 0 };
    });
}
