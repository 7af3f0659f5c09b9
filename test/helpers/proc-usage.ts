// What a process holds, from /proc: resident memory and open descriptors.
// Hostile-client tests (issue 17) assert these stay under the budgets.

import { readFileSync, readdirSync } from 'node:fs';

/** Resident set size in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Open file descriptors (entries of /proc/PID/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Samples rss and fds every `everyMs` until stop(); min/max kept. */
export function sampleUsage(pid: number, everyMs = 50): { stop(): { rssMin: number; rssMax: number; fdMin: number; fdMax: number } } {
  let rssMin = Infinity;
  let rssMax = 0;
  let fdMin = Infinity;
  let fdMax = 0;
  const take = (): void => {
    try {
      const r = rssBytes(pid);
      const f = fdCount(pid);
      rssMin = Math.min(rssMin, r);
      rssMax = Math.max(rssMax, r);
      fdMin = Math.min(fdMin, f);
      fdMax = Math.max(fdMax, f);
    } catch {
      // the process is gone; keep what was seen
    }
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(t);
      take();
      return { rssMin, rssMax, fdMin, fdMax };
    },
  };
}
