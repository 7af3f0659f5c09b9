// Deliberately naive helper for golden vectors: hex text (spaces, newlines and
// '|' ignored) to bytes. Never uses the production encoders.
export function hex(s: string): Buffer {
  const clean = s.replace(/[\s|]/g, '');
  if (clean.length % 2 !== 0) throw new Error(`odd hex length: ${clean}`);
  return Buffer.from(clean, 'hex');
}
