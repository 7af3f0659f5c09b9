// Human sizes for configuration and the CLI: "10G", "512M", "4096", "1.5T".
// Binary units (K = 1024), like targetcli and qemu-img. A bare number is bytes.
// Unlike `bytes.parse('10G')` this never guesses: anything it cannot read is an
// error that says why.

import { LunkitError } from '../protocols/errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
  P: 1024 ** 5,
  PB: 1024 ** 5,
  PIB: 1024 ** 5,
};

export class SizeError extends LunkitError {
  declare readonly code: 'ERR_INVALID_SIZE';

  constructor(message: string) {
    super('ERR_INVALID_SIZE', message);
    this.name = 'SizeError';
  }
}

/** Parses a size into bytes; throws SizeError with the reason. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new SizeError(`size ${input} is not a whole number of bytes`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  if (!m) throw new SizeError(`"${input}" is not a size (examples: 4096, 512M, 10G)`);
  const unit = UNITS[m[2].toUpperCase()];
  if (unit === undefined) throw new SizeError(`"${input}": unknown unit "${m[2]}" (use K, M, G, T or P)`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new SizeError(`"${input}" is not a whole number of bytes or is too large`);
  return bytes;
}

/** Formats bytes with the largest binary unit that divides it, e.g. 1073741824 -> "1G". */
export function formatSize(bytes: number): string {
  for (const [u, n] of [['P', 1024 ** 5], ['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${u}`;
  }
  return String(bytes);
}
