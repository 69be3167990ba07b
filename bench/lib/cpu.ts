// CPU time counters from /proc (Linux): a process's own CPU time, and the
// machine's counters as a whole and per core.
import { readdirSync, readFileSync } from "node:fs";

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

/** Fields of /proc/<pid>/stat after the command name: [0] is the state, [1] the parent's pid, [11..14] utime, stime, cutime, cstime. */
const statFields = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");

/**
 * CPU time of a Postgres cluster so far, ms: the postmaster, the backends it
 * has reaped and the live ones (its children). For rows whose work is in
 * Postgres (catalogue search), which the product's own CPU does not show.
 */
export function clusterCpuMs(postmaster: number): number {
  const own = statFields(postmaster);
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = statFields(d);
      if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10;
}
