// RFC 1982 serial number arithmetic on 32-bit numbers (SERIAL_BITS = 32), as
// RFC 7143 §4.2.2.1 requires for CmdSN, StatSN, DataSN, R2TSN and friends.
// Comparing two numbers exactly 2^31 apart is undefined by RFC 1982; here such
// a pair is neither less nor greater than the other.

const HALF = 0x80000000;

/** a < b in serial arithmetic. */
export function seqLt(a: number, b: number): boolean {
  const d = (b - a) >>> 0;
  return d !== 0 && d < HALF;
}

/** a <= b in serial arithmetic. */
export function seqLte(a: number, b: number): boolean {
  return a >>> 0 === b >>> 0 || seqLt(a, b);
}

/** a > b in serial arithmetic. */
export function seqGt(a: number, b: number): boolean {
  return seqLt(b, a);
}

/** a >= b in serial arithmetic. */
export function seqGte(a: number, b: number): boolean {
  return a >>> 0 === b >>> 0 || seqLt(b, a);
}

/** (a + n) mod 2^32. n may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The forward distance from a to b, (b - a) mod 2^32. */
export function seqDiff(a: number, b: number): number {
  return (b - a) >>> 0;
}
