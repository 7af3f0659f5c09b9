// Random sources for the filters. Tests pass a seed so a rate of 0.3 fails
// the same operations on every run; without one, Math.random is used.

/** A random source: each call returns a number in [0, 1). */
export type RandomSource = () => number;

/**
 * mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG, plenty
 * for fault injection and fast enough for the data path. Not for secrets.
 */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The source for an optional seed or an injected source (the source wins). */
export function randomSource(seed: number | undefined, random?: RandomSource): RandomSource {
  if (random) return random;
  return seed === undefined ? Math.random : seededRandom(seed);
}
