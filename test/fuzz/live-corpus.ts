// The seed corpus of the live fuzzer (test/fuzz/corpus, see its README.md):
// one valid message per file, written as commented hex. The file name's
// prefix says where the message belongs: iscsi-login-*, iscsi-discovery-*,
// iscsi-ffp-* (full feature phase), nbd-client-flags, nbd-option-*,
// nbd-request-* (compact header), nbd-xrequest-* (extended header).
// Reproducers of findings go into corpus/findings/ and are used as seeds of
// their phase too, so a fixed bug stays covered.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CORPUS_DIR = join(import.meta.dirname, 'corpus');

export interface Seed {
  name: string;
  bytes: Buffer;
}

/** Hex text with `#` comment lines and any whitespace between bytes. */
export function parseHexFile(text: string): Buffer {
  const hex = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('')
    .replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('corpus file is not whole hex bytes');
  return Buffer.from(hex, 'hex');
}

/** Formats bytes as the corpus does (16 per line), under a comment. */
export function formatHexFile(comment: string, bytes: Buffer): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 16) lines.push(bytes.subarray(i, i + 16).toString('hex').replace(/(..)(?!$)/g, '$1 '));
  return `${comment
    .split('\n')
    .map((l) => `# ${l}`)
    .join('\n')}\n${lines.join('\n')}\n`;
}

function readDir(dir: string, prefix: string): Seed[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && n.endsWith('.hex'))
    .sort()
    .map((n) => ({ name: n.slice(0, -4), bytes: parseHexFile(readFileSync(join(dir, n), 'utf8')) }));
}

/** Seeds whose file name starts with `prefix`, findings included. */
export function loadSeeds(prefix: string): Seed[] {
  const seeds = [...readDir(CORPUS_DIR, prefix), ...readDir(join(CORPUS_DIR, 'findings'), prefix)];
  if (seeds.length === 0) throw new Error(`no corpus files ${prefix}* in ${CORPUS_DIR}`);
  return seeds;
}
