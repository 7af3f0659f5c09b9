// Findings of the live fuzzer that are reported but not fixed yet. Each has
// a reproducer in corpus/findings/ and a guard that rewrites the triggering
// bytes before a lane sends them, wherever the server will read them (a
// trigger can come from a mutation, a splice, a misaligned parse, or a
// truncated header completed by padding), so the suite tests everything else
// while the owners fix these.
// Delete an entry when its fix lands; LUNKIT_FUZZ_KNOWN=1 turns the guards
// off to check a fix.

export const GUARDS_ON = process.env.LUNKIT_FUZZ_KNOWN !== '1';

export interface KnownFinding {
  id: string;
  reproducer: string;
  what: string;
}

export const KNOWN_FINDINGS: KnownFinding[] = [
  {
    id: 'iscsi-target-reset-reaches-everything',
    reproducer: 'test/fuzz/corpus/findings/iscsi-ffp-tmf-target-cold-reset.hex',
    what:
      'TARGET WARM/COLD RESET from any initiator of any target resets every LU of the daemon (UNIT ATTENTION 29/00 on other targets) ' +
      'and a cold reset ends every nexus, NBD connections included (core/tmr.ts runTmf uses scope.devices() and endNexuses() of the whole engine).',
  },
  {
    id: 'nbd-export-name-too-long-hangs',
    reproducer: 'test/fuzz/corpus/findings/nbd-option-export-name-too-long.hex',
    what:
      'NBD_OPT_EXPORT_NAME with a name over 4096 bytes gets an error option reply, then no later option is answered and the connection is not closed ' +
      'until the handshake timeout (fabrics/nbd/negotiation.ts exportName sets done before decoding; the catch replies instead of closing).',
  },
];

/**
 * iSCSI: a Task Management Request for TARGET WARM RESET (6) or TARGET COLD
 * RESET (7) becomes a LOGICAL UNIT RESET (5). Called by the stream model
 * with the opcode byte and the flags byte (buf[at]) of each header the
 * target will read, so it never touches other bytes (a guard that patched
 * any matching byte pair once rewrote probe ITTs and made false hangs).
 */
export function guardIscsiHeader(opcode: number, buf: Buffer, at: number): void {
  if (!GUARDS_ON) return;
  const fn = buf[at] & 0x7f;
  if ((opcode & 0x3f) === 0x02 && (fn === 6 || fn === 7)) buf[at] = (buf[at] & 0x80) | 5;
}

const IHAVEOPT = Buffer.from('IHAVEOPT');

/** NBD: an EXPORT_NAME option (IHAVEOPT, 1, length) over 4096 bytes, anywhere in `b`, becomes an unknown option (answered NBD_REP_ERR_UNSUP). */
export function guardNbdBytes(b: Buffer): void {
  if (!GUARDS_ON) return;
  for (let at = b.indexOf(IHAVEOPT); at >= 0 && at + 12 <= b.length; at = b.indexOf(IHAVEOPT, at + 1)) {
    // A header cut after the option number may get its length from later bytes (padding): patch it too.
    if (b.readUInt32BE(at + 8) === 1 && (at + 16 > b.length || b.readUInt32BE(at + 12) > 4096)) b.writeUInt32BE(0x1234, at + 8);
  }
}
