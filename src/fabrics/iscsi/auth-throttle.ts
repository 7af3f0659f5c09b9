// CHAP brute-force throttling (docs/security.md). Every CHAP response is
// evaluated only after a wait that grows exponentially with the recent
// failures of its initiator name and of its source address:
// authFailureDelayMs after one failure, doubling per failure up to
// authFailureMaxDelayMs. The wait comes before the check, so the answer to a
// right guess comes no sooner than the answer to a wrong one (a fast success
// would tell an attacker to stop waiting for failures).
//
// The two keys differ on purpose:
// - The source address is the attacker's own: its attempts are serialised,
//   each one takes the next free slot after the previous one, so opening 200
//   connections in parallel buys no more guesses than opening one. An address
//   has ADDRESS_GRACE free failures, so one initiator with a typo on a host
//   that also runs good ones does not slow those down.
// - The initiator name is not secret, anyone can send it: its wait is the
//   current backoff only, never a queue, and the caller caps it below the
//   login timeout (nameCapMs), so an attacker can slow the real initiator's
//   logins, never lock it out.
//
// Success forgets the name's failures; an address's are forgotten only after a
// quiet period (an attacker with one good credential must not reset its
// address by logging in between guesses). IPv6 addresses count by their /64:
// one host or site gets a /64 and could otherwise pick a fresh address for
// every guess. Memory is bounded: at most
// maxEntries keys, the least recently failed evicted first, long names kept
// as a hash.

import { createHash } from 'node:crypto';
import { addressKey } from '../../util/admission.js';

export interface AuthThrottleLimits {
  authFailureDelayMs: number;
  authFailureMaxDelayMs: number;
}

export interface AuthThrottleOptions {
  /** Read at every call, so setLimits() applies at once. */
  limits: () => AuthThrottleLimits;
  /** Keys kept at most (names and addresses together). */
  maxEntries?: number;
  /** Failures forgotten after this long without one; default max(60 s, 10 x the delay ceiling). */
  quietMs?: number;
  now?: () => number;
}

/** Failures an address may have before its own backoff starts. */
export const ADDRESS_GRACE = 4;
const DEFAULT_MAX_ENTRIES = 8192;
/** Names longer than this are keyed by their hash (a 64 KiB name must not cost 64 KiB per entry). */
const MAX_KEY_CHARS = 255;

interface Entry {
  failures: number;
  /** Time before which the next attempt under this key waits. */
  nextAt: number;
  lastFailure: number;
}

export class AuthThrottle {
  /** Insertion order = order of last failure: the first entry is the stalest. */
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(private readonly opts: AuthThrottleOptions) {
    this.maxEntries = Math.max(2, opts.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Milliseconds to wait before evaluating a CHAP response from `initiator`
   * at `remoteAddress`. Takes the address's next slot: call it once per
   * response, then failed() or succeeded() with the outcome. The name's part
   * of the wait is at most `nameCapMs`.
   */
  delayFor(initiator: string, remoteAddress: string | undefined, nameCapMs = Infinity): number {
    const t = this.now();
    this.expire(t);
    let wait = 0;
    const byName = this.entries.get(nameKey(initiator));
    if (byName) wait = Math.max(wait, Math.min(nameCapMs, byName.nextAt - t));
    const byAddr = this.entries.get(addrKey(remoteAddress));
    if (byAddr) {
      const start = Math.max(t, byAddr.nextAt);
      wait = Math.max(wait, start - t);
      const step = this.backoff(byAddr.failures - ADDRESS_GRACE);
      if (step > 0) byAddr.nextAt = start + step;
    }
    return Math.max(0, Math.ceil(wait));
  }

  /** A CHAP response did not verify. */
  failed(initiator: string, remoteAddress: string | undefined): void {
    const t = this.now();
    this.bump(nameKey(initiator), t, 0);
    this.bump(addrKey(remoteAddress), t, ADDRESS_GRACE);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** A CHAP response verified: the name starts afresh. */
  succeeded(initiator: string): void {
    this.entries.delete(nameKey(initiator));
  }

  /** Keys held now (for tests and stats). */
  get size(): number {
    return this.entries.size;
  }

  /** Recent failures of a name (0 when none or forgotten). */
  failuresOf(initiator: string): number {
    return this.entries.get(nameKey(initiator))?.failures ?? 0;
  }

  // -------------------------------------------------------------------------

  /** Delay after the n-th counted failure: base, 2 base, 4 base... up to the ceiling. */
  private backoff(n: number): number {
    if (n <= 0) return 0;
    const { authFailureDelayMs: base, authFailureMaxDelayMs: max } = this.opts.limits();
    if (base <= 0) return 0;
    return Math.min(max, base * 2 ** Math.min(n - 1, 30));
  }

  private bump(key: string, t: number, grace: number): void {
    const e = this.entries.get(key) ?? { failures: 0, nextAt: 0, lastFailure: t };
    e.failures++;
    e.lastFailure = t;
    e.nextAt = Math.max(e.nextAt, t + this.backoff(e.failures - grace));
    // Re-insert so the map stays ordered by last failure.
    this.entries.delete(key);
    this.entries.set(key, e);
  }

  private quietMs(): number {
    return this.opts.quietMs ?? Math.max(60_000, 10 * this.opts.limits().authFailureMaxDelayMs);
  }

  /** Drop entries quiet for long enough, from the stalest on. */
  private expire(t: number): void {
    const quiet = this.quietMs();
    for (const [key, e] of this.entries) {
      if (t - e.lastFailure < quiet || t < e.nextAt) break;
      this.entries.delete(key);
    }
  }
}

function nameKey(initiator: string): string {
  const n = initiator.toLowerCase();
  return n.length <= MAX_KEY_CHARS ? `n:${n}` : `n#${createHash('sha256').update(n).digest('hex')}`;
}

function addrKey(remoteAddress: string | undefined): string {
  const a = addressKey(remoteAddress);
  return a.includes(':') ? `a6:${ipv6Prefix64(a)}` : `a:${a}`;
}

/** The first four groups of an IPv6 address ("2001:db8:1:2::5" -> "2001:db8:1:2"); the address itself if it does not parse. */
export function ipv6Prefix64(addr: string): string {
  const bare = addr.replace(/%.*$/, '');
  const halves = bare.split('::');
  if (halves.length > 2) return bare;
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4 style) counts as two groups.
  const groups = (g: string[]) => g.reduce((n, x) => n + (x.includes('.') ? 2 : 1), 0);
  const missing = 8 - groups(head) - groups(tail);
  if (halves.length === 1 ? missing !== 0 : missing < 0) return bare;
  const full = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  return full
    .slice(0, 4)
    .map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16).toString(16) : g))
    .join(':');
}
