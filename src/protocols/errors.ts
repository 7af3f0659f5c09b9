// One error class for every protocol codec, with stable string codes.
// Callers branch on `code`, never on `message` (STYLE.md §8, after undici).

export type LunkitErrorCode =
  | 'ERR_PDU_TOO_LARGE'
  | 'ERR_PDU_BAD_OPCODE'
  | 'ERR_PDU_MALFORMED'
  | 'ERR_PDU_HEADER_DIGEST'
  | 'ERR_PDU_DATA_DIGEST'
  | 'ERR_ISCSI_TEXT_MALFORMED'
  | 'ERR_ISCSI_NEGOTIATION'
  | 'ERR_ISCSI_CHAP'
  | 'ERR_LUN_UNSUPPORTED'
  | 'ERR_NBD_BAD_MAGIC'
  | 'ERR_NBD_TOO_LARGE'
  | 'ERR_NBD_MALFORMED'
  // Other layers may add their own codes; the union is open.
  | (string & { readonly __lunkitErrorCode?: never });

export class LunkitError extends Error {
  readonly code: string;

  constructor(code: LunkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LunkitError';
    this.code = code;
  }
}

/** True if `err` is a LunkitError, optionally with the given code. */
export function isLunkitError(err: unknown, code?: string): err is LunkitError {
  return err instanceof LunkitError && (code === undefined || err.code === code);
}
