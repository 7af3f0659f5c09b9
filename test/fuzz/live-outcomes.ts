// What the live fuzzer counts and what it keeps of a failing case.
//
// Every case ends in one of three outcomes that pass:
// - answered: the probe sent after the case (or the case's own reply, for a
//   login) was answered: the connection is alive and still in step;
// - closed: the server closed the connection;
// - eofClosed: the case left the server mid-message (a truncated message or a
//   length made larger), we half-closed, and the server closed;
// and the failures, which are findings: the server neither answered nor
// closed in time (hang, eof-hang), sent bytes that do not parse (bad-reply),
// or refused a lane's own valid login (no-service).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatHexFile } from './live-corpus.js';

export interface FabricStats {
  cases: number;
  answered: number;
  closed: number;
  eofClosed: number;
  /** Mid-message cases completed with zero bytes instead of a half-close. */
  padded: number;
  /** Cases that ended in a finding (known ones included). */
  failed: number;
  /** PDUs / replies parsed from the server (probe answers included). */
  replies: number;
  /** iSCSI Reject PDUs, NBD error replies. */
  rejects: number;
  connects: number;
  logins: number;
  /** Cases per phase (login, discovery, ffp / handshake, transmission). */
  phases: Record<string, number>;
}

export function newStats(): FabricStats {
  return { cases: 0, answered: 0, closed: 0, eofClosed: 0, padded: 0, failed: 0, replies: 0, rejects: 0, connects: 0, logins: 0, phases: {} };
}

export interface Finding {
  fabric: 'iscsi' | 'nbd';
  phase: string;
  kind: 'hang' | 'bad-reply' | 'no-service' | 'eof-hang';
  lane: number;
  caseNo: number;
  seed: number;
  seedName: string;
  ops: string[];
  /** The case's bytes. */
  bytes: Buffer;
  /** What the connection was sent, login included (the last 64 KiB). */
  history: Buffer;
  detail: string;
  /** The client side's port of the connection (the daemon logs and `lunkit stats` name it). */
  localPort?: number;
}

/** Writes a finding as the corpus keeps reproducers: the case alone, and the whole connection. */
export function saveFinding(dir: string, f: Finding): string {
  mkdirSync(dir, { recursive: true });
  const base = `${f.fabric}-${f.phase}-${f.kind}-s${f.seed}-l${f.lane}-c${f.caseNo}`;
  const what = `${f.kind} in ${f.fabric} ${f.phase}: ${f.detail}\nseed ${f.seed} lane ${f.lane} case ${f.caseNo}, from ${f.seedName}: ${f.ops.join(', ')}`;
  writeFileSync(join(dir, `${base}.hex`), formatHexFile(what, f.bytes));
  writeFileSync(join(dir, `${base}.connection.hex`), formatHexFile(`${what}\nall bytes the connection was sent, the case included`, f.history));
  return join(dir, `${base}.hex`);
}

export function describeFinding(f: Finding): string {
  const hex = f.bytes.subarray(0, 256).toString('hex');
  return `${f.kind} (${f.fabric} ${f.phase}, lane ${f.lane}, case ${f.caseNo}, seed ${f.seed}, from ${f.seedName}): ${f.detail}\n  ops: ${f.ops.join(', ').slice(0, 1000)}\n  bytes (${f.bytes.length}): ${hex}${f.bytes.length > 256 ? '...' : ''}`;
}

/** Keeps the last `max` bytes written to a connection (and always the last 4 writes). */
export class History {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly max = 64 * 1024) {}
  add(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
    // The newest few parts stay whatever their size: they are the case and its probe.
    while (this.size > this.max && this.parts.length > 4) this.size -= this.parts.shift()!.length;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}
