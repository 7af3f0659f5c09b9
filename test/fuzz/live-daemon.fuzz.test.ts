// Live fuzzing of a real `lunkit daemon` process over iSCSI (login phase,
// discovery sessions, full feature phase with and without digests) and NBD
// (option haggling, transmission with simple, structured and extended
// replies), from the corpus in test/fuzz/corpus (see live-campaign.ts).
// Every case must end answered or closed (live-outcomes.ts); the side
// sessions must verify their data throughout; the daemon must not exit.
//
// A time-boxed slice here (LUNKIT_LIVE_FUZZ_MS, default 55 s for both
// fabrics together); scripts/fuzz-campaign.sh runs a million cases per
// fabric. LUNKIT_FUZZ_SEED repeats a run (the seed is printed). Needs dist/
// (npx tsc -p tsconfig.build.json).

import { describe, expect, it } from 'vitest';
import { decodePdu } from '../../src/protocols/iscsi/pdu.js';
import { loadSeeds } from './live-corpus.js';
import { formatReport, runCampaign } from './live-campaign.js';
import { splitIscsi } from './live-mutate.js';

const TIME_MS = Number(process.env.LUNKIT_LIVE_FUZZ_MS ?? 55_000);
const ISCSI_CASES = Number(process.env.LUNKIT_FUZZ_ISCSI_CASES ?? Number.MAX_SAFE_INTEGER);
const NBD_CASES = Number(process.env.LUNKIT_FUZZ_NBD_CASES ?? Number.MAX_SAFE_INTEGER);
// For investigations: only the lanes of these phases (login, discovery, ffp, handshake, transmission).
const LANES = process.env.LUNKIT_FUZZ_LANES?.split(',');
const SEED = Number(process.env.LUNKIT_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe('the live fuzz corpus', () => {
  it('holds valid seeds for every phase', () => {
    const check = (prefix: string, opcodes: number[]): void => {
      for (const s of loadSeeds(prefix)) {
        const p = splitIscsi(s.bytes);
        expect(48 + p.ahs.length + p.data.length + ((4 - (p.data.length % 4)) % 4), s.name).toBe(s.bytes.length);
        expect(opcodes, s.name).toContain(decodePdu(p.bhs, p.ahs, p.data).opcode);
      }
    };
    check('iscsi-login-', [0x03]);
    check('iscsi-discovery-', [0x00, 0x01, 0x04, 0x06]);
    check('iscsi-ffp-', [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x10]);
    for (const s of loadSeeds('nbd-option-')) {
      expect(s.bytes.subarray(0, 8).toString('latin1'), s.name).toBe('IHAVEOPT');
      expect(s.bytes.readUInt32BE(12), s.name).toBe(s.bytes.length - 16);
    }
    for (const s of loadSeeds('nbd-request-')) expect(s.bytes.readUInt32BE(0), s.name).toBe(0x25609513);
    for (const s of loadSeeds('nbd-xrequest-')) expect(s.bytes.readUInt32BE(0), s.name).toBe(0x21e41c71);
  });
});

describe('fuzzing a live lunkit daemon', () => {
  it(
    'answers or closes on every mutated iSCSI PDU and NBD message, never exits, and the side sessions keep verifying',
    async () => {
      console.log(`live fuzz seed ${SEED} (LUNKIT_FUZZ_SEED=${SEED} repeats it)`);
      const r = await runCampaign({
        seed: SEED,
        iscsiCases: ISCSI_CASES,
        nbdCases: NBD_CASES,
        timeLimitMs: TIME_MS,
        // For investigations: a chattier daemon, a longer wait for answers.
        lanes: LANES,
        daemonLogLevel: process.env.LUNKIT_FUZZ_DAEMON_LOG,
        replyTimeoutMs: process.env.LUNKIT_FUZZ_REPLY_MS ? Number(process.env.LUNKIT_FUZZ_REPLY_MS) : undefined,
      });
      console.log(formatReport(r));
      expect(r.crash).toBeUndefined();
      expect(r.findingCount).toBe(0);
      expect(r.internalErrors).toEqual([]);
      for (const [s, phases, budget] of [
        [r.iscsi, ['login', 'discovery', 'ffp'], ISCSI_CASES],
        [r.nbd, ['handshake', 'transmission'], NBD_CASES],
      ] as const) {
        if (budget === 0 || (LANES && !phases.some((p) => LANES.includes(p)))) continue;
        expect(s.cases).toBeGreaterThan(0);
        // Every case ended one of the passing ways.
        expect(s.failed).toBe(0);
        expect(s.answered + s.closed + s.eofClosed).toBe(s.cases);
        expect(s.answered).toBeGreaterThan(0);
        for (const phase of phases) if (!LANES || LANES.includes(phase)) expect(s.phases[phase], phase).toBeGreaterThan(0);
      }
      expect(r.side.iscsi.failures).toEqual([]);
      expect(r.side.nbd.failures).toEqual([]);
      expect(r.side.iscsi.verified).toBeGreaterThan(0);
      expect(r.side.nbd.verified).toBeGreaterThan(0);
    },
    TIME_MS + 120_000,
  );
});
