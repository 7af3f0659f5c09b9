// CHAP authentication, target side (RFC 7143 §12.1.3, RFC 1994).
//
//   I -> T: CHAP_A=<A1,A2...>           (algorithm list; we take 5 = MD5)
//   T -> I: CHAP_A=5 CHAP_I=<id> CHAP_C=<challenge>
//   I -> T: CHAP_N=<name> CHAP_R=<response> [CHAP_I=<id'> CHAP_C=<challenge'>]
//   T -> I: [CHAP_N=<target name> CHAP_R=<response'>]   (mutual)
//
// Target authentication is the initiator's choice (RFC 7143 §12.1.3: the
// initiator sends CHAP_I/CHAP_C when it wants the target to prove itself). A
// mutual secret configured on an ACL is what the target answers with when
// asked; an initiator that does not ask logs in with one-way CHAP, as with
// tgtd. Forcing it would protect nobody (the proof protects the initiator) and
// would lock out initiators such as iscsi-ls that never ask on normal logins.
//
// Responses are compared in constant time (chapEqual). Secrets are never
// logged or put in error messages. An initiator challenge equal to ours is a
// reflection attack and fails (RFC 7143 §12.1.3).

import { chapEqual, chapResponse, formatChapHex, makeChallenge, parseChapValue } from '../../protocols/iscsi/chap.js';
import type { ChapCredentials } from './config.js';

export const CHAP_MD5 = '5';

export type ChapStep =
  | { kind: 'continue'; replies: Array<[string, string]> }
  | { kind: 'done'; replies: Array<[string, string]> }
  | { kind: 'fail'; why: string };

/** Keys that belong to the security negotiation stage. */
export const SECURITY_KEYS = new Set(['AuthMethod', 'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R']);

export class ChapTarget {
  private state: 'want-algorithm' | 'want-response' | 'done' = 'want-algorithm';
  private id = 0;
  private challenge: Buffer = Buffer.alloc(0);

  constructor(
    private readonly creds: ChapCredentials,
    private readonly mutual: ChapCredentials | undefined,
  ) {}

  get finished(): boolean {
    return this.state === 'done';
  }

  /** The challenge is out: the next CHAP keys are a response to check (the step auth-throttle.ts delays). */
  get awaitingResponse(): boolean {
    return this.state === 'want-response';
  }

  step(keys: Map<string, string>): ChapStep {
    if (this.state === 'want-algorithm') {
      const a = keys.get('CHAP_A');
      if (a === undefined) return { kind: 'fail', why: 'CHAP_A missing' };
      if (!a.split(',').map((s) => s.trim()).includes(CHAP_MD5)) {
        return { kind: 'fail', why: 'no supported CHAP algorithm offered (need 5 = MD5)' };
      }
      const c = makeChallenge(16);
      this.id = c.id;
      this.challenge = c.challenge;
      this.state = 'want-response';
      return {
        kind: 'continue',
        replies: [
          ['CHAP_A', CHAP_MD5],
          ['CHAP_I', String(this.id)],
          ['CHAP_C', formatChapHex(this.challenge)],
        ],
      };
    }
    if (this.state === 'done') return { kind: 'fail', why: 'CHAP keys after authentication completed' };

    const name = keys.get('CHAP_N');
    const resp = keys.get('CHAP_R');
    if (name === undefined || resp === undefined) return { kind: 'fail', why: 'CHAP_N or CHAP_R missing' };
    let got: Buffer;
    try {
      got = parseChapValue(resp);
    } catch {
      return { kind: 'fail', why: 'CHAP_R is not a hex or base64 value' };
    }
    const want = chapResponse(this.id, this.creds.password, this.challenge);
    // Evaluate both comparisons before branching so timing does not reveal which failed.
    const nameOk = chapEqual(Buffer.from(name), Buffer.from(this.creds.userid));
    const respOk = got.length === want.length && chapEqual(got, want);
    if (!nameOk || !respOk) return { kind: 'fail', why: 'CHAP response or name does not match' };

    const iId = keys.get('CHAP_I');
    const iChal = keys.get('CHAP_C');
    if (iId === undefined && iChal === undefined) {
      this.state = 'done';
      return { kind: 'done', replies: [] };
    }
    if (iId === undefined || iChal === undefined) return { kind: 'fail', why: 'mutual CHAP needs both CHAP_I and CHAP_C' };
    if (!this.mutual) return { kind: 'fail', why: 'initiator asked for mutual CHAP but none is configured' };
    const idNum = Number(iId);
    if (!/^\d+$/.test(iId.trim()) || idNum > 255) return { kind: 'fail', why: 'CHAP_I out of range' };
    let chal: Buffer;
    try {
      chal = parseChapValue(iChal);
    } catch {
      return { kind: 'fail', why: 'CHAP_C is not a hex or base64 value' };
    }
    if (chal.length === 0) return { kind: 'fail', why: 'empty initiator challenge' };
    if (chal.length === this.challenge.length && chapEqual(chal, this.challenge)) {
      return { kind: 'fail', why: 'initiator reflected the target challenge' };
    }
    const answer = chapResponse(idNum, this.mutual.password, chal);
    this.state = 'done';
    return {
      kind: 'done',
      replies: [
        ['CHAP_N', this.mutual.userid],
        ['CHAP_R', formatChapHex(answer)],
      ],
    };
  }
}
