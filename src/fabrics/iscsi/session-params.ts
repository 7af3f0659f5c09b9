// Operational parameters a connection works with after login (RFC 7143 §13),
// and the defaults of a session that negotiates nothing. A module of its own
// so that the task and connection code can name them without importing the
// session.

import type { NegotiatedParams } from '../../protocols/iscsi/keys.js';

/**
 * Operational parameters in force after login (the subset of the protocol
 * layer's NegotiatedParams the target uses; structurally compatible).
 */
export type SessionParams = Pick<
  NegotiatedParams,
  | 'headerDigest'
  | 'dataDigest'
  | 'maxRecvDataSegmentLength'
  | 'peerMaxRecvDataSegmentLength'
  | 'maxBurstLength'
  | 'firstBurstLength'
  | 'immediateData'
  | 'initialR2T'
  | 'maxOutstandingR2T'
  | 'dataPDUInOrder'
  | 'dataSequenceInOrder'
  | 'defaultTime2Wait'
  | 'defaultTime2Retain'
  | 'errorRecoveryLevel'
  | 'maxConnections'
>;

/** Login defaults (RFC 7143 §13) for sessions that negotiate nothing. */
export const DEFAULT_SESSION_PARAMS: SessionParams = {
  headerDigest: false,
  dataDigest: false,
  maxRecvDataSegmentLength: 8192,
  peerMaxRecvDataSegmentLength: 8192,
  maxBurstLength: 262144,
  firstBurstLength: 65536,
  immediateData: true,
  initialR2T: true,
  maxOutstandingR2T: 1,
  dataPDUInOrder: true,
  dataSequenceInOrder: true,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
  errorRecoveryLevel: 0,
  maxConnections: 1,
};
