// One error class for the attach/mount tools with stable codes (STYLE.md §8):
// callers and tests branch on `code`, never on the message.

import { LunkitError, type AttachErrorCode } from '../protocols/errors.js';

export type { AttachErrorCode };

export class AttachError extends LunkitError {
  declare readonly code: AttachErrorCode;

  constructor(code: AttachErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AttachError';
  }
}

/** Attaching and mounting need root: FUSE as root, loop devices, mount(8), /run/lunkit. */
export function requireRoot(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new AttachError('ERR_NOT_ROOT', `${what} needs root (loop devices, mount(8) and /run/lunkit); run it with sudo`);
  }
}
