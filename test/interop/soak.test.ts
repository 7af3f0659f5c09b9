// Soak (issue 17), the suite's slice: LUNKIT_SOAK_SESSIONS sessions (16) x
// QD LUNKIT_SOAK_QD (8) of verified WRITE/READ pairs against a real daemon
// for LUNKIT_SOAK_SECONDS (300, the five minutes). No command may fail or read back wrong, and
// the daemon's RSS and descriptors must stay flat: at the end (sessions still
// logged in) no more than after warm-up plus a margin. The figures are
// printed; scripts/soak.sh runs 256 x QD32 for 30 minutes. Needs dist/.

import { describe, expect, it } from 'vitest';
import { formatSoak, runSoak } from './soak-workload.js';

const SESSIONS = Number(process.env.LUNKIT_SOAK_SESSIONS ?? 16);
const QD = Number(process.env.LUNKIT_SOAK_QD ?? 8);
const SECONDS = Number(process.env.LUNKIT_SOAK_SECONDS ?? 300);

describe('soak', () => {
  it(
    `${SESSIONS} sessions x QD${QD} for ${SECONDS} s: no error, RSS and descriptors flat`,
    async () => {
      const r = await runSoak({ sessions: SESSIONS, queueDepth: QD, seconds: SECONDS });
      console.log(formatSoak(r));
      expect(r.errors).toEqual([]);
      expect(r.verified).toBeGreaterThan(0);
      // Flat: generous margins (GC timing moves RSS by tens of MiB), but a
      // leak of a few KiB per command (hundreds of thousands of them) fails.
      expect(r.rss.end).toBeLessThanOrEqual(r.rss.warm + Math.max(64 << 20, r.rss.warm * 0.5));
      expect(r.fds.end).toBeLessThanOrEqual(r.fds.warm + 4);
      expect(r.fds.max).toBeLessThanOrEqual(r.fds.warm + SESSIONS + 16);
    },
    (SECONDS + 240) * 1000,
  );
});
