// The initiator side of the login phase (RFC 7143 §6.3, §11.12, §11.13):
// SecurityNegotiation (AuthMethod None or CHAP, one-way or mutual, §12.1.3),
// LoginOperationalNegotiation through the shared KeyNegotiator (keys.ts), and
// the transit to the full feature phase. One function per connection; the
// session keeps ISID, TSIH and CmdSN across connections.

import { randomInt } from 'node:crypto';

import { LoginStage, LoginStatusClass } from '../protocols/iscsi/constants.js';
import { chapEqual, chapResponse, formatChapHex, makeChallenge, parseChapValue, CHAP_ALGORITHM_MD5, isReflectedChallenge } from '../protocols/iscsi/chap.js';
import { KeyNegotiator, type NegotiatedParams } from '../protocols/iscsi/keys.js';
import { Opcode, type LoginResponsePdu } from '../protocols/iscsi/pdu-types.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../protocols/iscsi/text.js';
import type { IscsiConnection } from './connection.js';
import { IscsiInitiatorError, loginStatusError } from './errors.js';
import type { ChapSecret } from './url.js';

/** Operational keys we offer, as their wire strings (RFC 7143 §13). */
export interface LoginKeyOptions {
  headerDigest?: boolean | 'prefer';
  dataDigest?: boolean | 'prefer';
  /** What we accept per PDU (default 262144). */
  maxRecvDataSegmentLength?: number;
  maxBurstLength?: number;
  firstBurstLength?: number;
  immediateData?: boolean;
  initialR2T?: boolean;
  maxOutstandingR2T?: number;
  maxConnections?: number;
  errorRecoveryLevel?: number;
  defaultTime2Wait?: number;
  defaultTime2Retain?: number;
}

export interface LoginOptions extends LoginKeyOptions {
  initiatorName: string;
  initiatorAlias?: string;
  /** Target IQN (normal sessions). */
  targetName?: string;
  sessionType: 'Normal' | 'Discovery';
  /** One-way CHAP credentials; without them we offer AuthMethod=None. */
  chap?: ChapSecret;
  /** Mutual CHAP: the name and secret the target must answer with. */
  targetChap?: ChapSecret;
  isid: number;
  /** 0 for a new session, the session's TSIH for a further connection. */
  tsih: number;
  /** The session's CmdSN at login time. */
  cmdSN: number;
  /** Deadline for the whole login (default 15 s). */
  timeoutMs?: number;
}

export interface LoginResult {
  tsih: number;
  params: NegotiatedParams;
  targetAlias: string | undefined;
  targetPortalGroupTag: number | undefined;
  expCmdSN: number;
  maxCmdSN: number;
}

export const DEFAULT_INITIATOR_KEYS: Required<Omit<LoginKeyOptions, 'headerDigest' | 'dataDigest'>> = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  immediateData: true,
  initialR2T: false,
  maxOutstandingR2T: 1,
  maxConnections: 1,
  errorRecoveryLevel: 0,
  defaultTime2Wait: 2,
  defaultTime2Retain: 20,
};

/**
 * A random-format ISID (RFC 7143 §11.12.5, T = 10b): A reserved (0), B and C
 * random, D the qualifier (random too, so two sessions of one process differ).
 */
export function randomIsid(): number {
  const b = randomInt(0, 0x10000);
  const c = randomInt(0, 0x100);
  const d = randomInt(1, 0x10000);
  return 0x80 * 2 ** 40 + b * 2 ** 24 + c * 2 ** 16 + d;
}

function digestOffer(v: boolean | 'prefer' | undefined): string {
  if (v === true) return 'CRC32C';
  if (v === 'prefer') return 'CRC32C,None';
  return 'None';
}

/** The operational keys for the negotiator's `local` map. */
export function operationalKeys(opts: LoginKeyOptions, discovery: boolean): Record<string, string> {
  const o = { ...DEFAULT_INITIATOR_KEYS, ...stripUndefined(opts) };
  const keys: Record<string, string> = {
    HeaderDigest: digestOffer(opts.headerDigest),
    DataDigest: digestOffer(opts.dataDigest),
    MaxRecvDataSegmentLength: String(o.maxRecvDataSegmentLength),
    DefaultTime2Wait: String(o.defaultTime2Wait),
    DefaultTime2Retain: String(o.defaultTime2Retain),
    ErrorRecoveryLevel: String(o.errorRecoveryLevel),
  };
  if (!discovery) {
    Object.assign(keys, {
      MaxConnections: String(o.maxConnections),
      InitialR2T: o.initialR2T ? 'Yes' : 'No',
      ImmediateData: o.immediateData ? 'Yes' : 'No',
      MaxBurstLength: String(o.maxBurstLength),
      FirstBurstLength: String(Math.min(o.firstBurstLength, o.maxBurstLength)),
      MaxOutstandingR2T: String(o.maxOutstandingR2T),
      DataPDUInOrder: 'Yes',
      DataSequenceInOrder: 'Yes',
    });
  }
  return keys;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const isSecurityKey = (k: string): boolean => k === 'AuthMethod' || k.startsWith('CHAP_');

type ChapState = 'offer-method' | 'send-algorithm' | 'send-response' | 'verify-target' | 'done';

/**
 * Run the login on a freshly connected `conn`. Resolves with the TSIH and the
 * negotiated parameters; throws IscsiInitiatorError (login status classes
 * mapped to codes, ERR_ISCSI_TARGET_AUTH when mutual CHAP fails,
 * ERR_ISCSI_PROTOCOL for a misbehaving target, ERR_ISCSI_TIMEOUT).
 */
export async function login(conn: IscsiConnection, opts: LoginOptions): Promise<LoginResult> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const discovery = opts.sessionType === 'Discovery';
  const neg = new KeyNegotiator('initiator', operationalKeys(opts, discovery), { discovery, leading: opts.tsih === 0 });
  const itt = randomInt(0, 0x7fffffff);
  let expStatSN = 0;
  let tsih = opts.tsih;
  let csg: number = LoginStage.SECURITY;
  let chapState: ChapState = 'offer-method';
  let mutualChallenge: { id: number; challenge: Buffer } | undefined;
  let authMethod = 'None';
  let targetAlias: string | undefined;
  let tpgt: number | undefined;
  const text = new TextAccumulator();

  // First PDU: declarations and the AuthMethod offer (§6.3: SecurityNegotiation first).
  let keys: Array<[string, string]> = [
    ['InitiatorName', opts.initiatorName],
    ...(opts.initiatorAlias !== undefined ? ([['InitiatorAlias', opts.initiatorAlias]] as Array<[string, string]>) : []),
    ['SessionType', opts.sessionType],
    ...(opts.targetName !== undefined && !discovery ? ([['TargetName', opts.targetName]] as Array<[string, string]>) : []),
    ['AuthMethod', opts.chap !== undefined ? 'CHAP,None' : 'None'],
  ];
  // Without CHAP we ask to move on at once; with CHAP we stay until it is done.
  let transit = opts.chap === undefined;
  let nsg: number = LoginStage.OPERATIONAL;

  for (let round = 0; round < 64; round++) {
    const data = encodeTextKeys(keys);
    conn.send({
      opcode: Opcode.LOGIN_REQUEST,
      immediate: true,
      transit,
      continue: false,
      csg,
      nsg: transit ? nsg : 0,
      versionMax: 0,
      versionMin: 0,
      isid: opts.isid,
      tsih,
      itt,
      cid: conn.cid,
      cmdSN: opts.cmdSN,
      expStatSN,
    }, data.length > 0 ? data : undefined);

    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new IscsiInitiatorError('ERR_ISCSI_TIMEOUT', `login to ${conn.portal} timed out`);
    const pdu = await conn.nextPdu(remaining);
    if (pdu.opcode !== Opcode.LOGIN_RESPONSE) {
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `expected a Login Response, got opcode 0x${pdu.opcode.toString(16)}`);
    }
    const resp: LoginResponsePdu = pdu;
    if (resp.statusClass !== LoginStatusClass.SUCCESS) {
      let addr: string | undefined;
      try {
        addr = parseTextKeys(resp.data).find(([k]) => k === 'TargetAddress')?.[1];
      } catch {
        addr = undefined;
      }
      throw loginStatusError(resp.statusClass, resp.statusDetail, addr);
    }
    if (resp.itt !== itt) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'Login Response with a foreign ITT');
    expStatSN = (resp.statSN + 1) >>> 0;
    tsih = resp.tsih;

    // §11.13.3: C bit: the target has more text; ask for it with an empty request.
    const whole = text.add(resp.data, resp.continue);
    if (whole === undefined) {
      keys = [];
      transit = false;
      continue;
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseTextKeys(whole);
    } catch (err) {
      throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad login keys from target: ${(err as Error).message}`, { cause: err });
    }
    for (const [k, v] of pairs) {
      if (k === 'TargetAlias') targetAlias = v;
      if (k === 'TargetPortalGroupTag') tpgt = Number(v);
    }
    const security = pairs.filter(([k]) => isSecurityKey(k));
    const other = pairs.filter(([k]) => !isSecurityKey(k));
    const acc = neg.accept(other);
    if (acc.error !== undefined) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `login negotiation failed: ${acc.error.message}`);
    keys = acc.replies;

    if (resp.csg === LoginStage.SECURITY && csg === LoginStage.SECURITY) {
      const step = chapStep(chapState, security, opts, mutualChallenge);
      chapState = step.state;
      if (step.method !== undefined) authMethod = step.method;
      mutualChallenge = step.mutualChallenge ?? mutualChallenge;
      keys.push(...step.keys);
      if (resp.transit) {
        if (chapState !== 'done' && opts.chap !== undefined && chapState !== 'offer-method') {
          // The target moved on before CHAP finished: only acceptable if it chose None.
          throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'target left SecurityNegotiation before CHAP completed');
        }
        if (opts.targetChap !== undefined && chapState !== 'done') {
          throw new IscsiInitiatorError('ERR_ISCSI_TARGET_AUTH', 'target did not authenticate itself (mutual CHAP required)');
        }
        csg = resp.nsg;
      }
      if (csg === LoginStage.SECURITY) {
        // Ask to transit once we have sent our CHAP response (or the target chose None).
        transit = chapState === 'verify-target' || chapState === 'done';
        continue;
      }
    } else if (resp.transit) {
      csg = resp.nsg;
    }

    if (csg === LoginStage.FULL_FEATURE) {
      if (!resp.transit) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'login reached full feature phase without T bit');
      conn.expStatSN = expStatSN;
      return { tsih, params: { ...neg.result(), authMethod }, targetAlias, targetPortalGroupTag: tpgt, expCmdSN: resp.expCmdSN, maxCmdSN: resp.maxCmdSN };
    }
    // Operational stage: offer what is left, answer what the target offered, and ask to finish.
    csg = LoginStage.OPERATIONAL;
    keys.push(...neg.propose());
    nsg = LoginStage.FULL_FEATURE;
    transit = true;
  }
  throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', 'login did not finish within 64 exchanges');
}

/** One step of CHAP on the initiator side (RFC 7143 §12.1.3). */
function chapStep(
  state: ChapState,
  security: Array<[string, string]>,
  opts: LoginOptions,
  mutual: { id: number; challenge: Buffer } | undefined,
): { state: ChapState; keys: Array<[string, string]>; mutualChallenge?: { id: number; challenge: Buffer }; method?: string } {
  const get = (k: string): string | undefined => security.find(([key]) => key === k)?.[1];
  switch (state) {
    case 'offer-method': {
      const method = get('AuthMethod');
      if (method === undefined || method === 'None' || method === 'Reject' || method === 'NotUnderstood') {
        if (opts.targetChap !== undefined) {
          throw new IscsiInitiatorError('ERR_ISCSI_TARGET_AUTH', 'target refused CHAP but mutual CHAP is required');
        }
        return { state: 'done', keys: [] };
      }
      if (method !== 'CHAP' || opts.chap === undefined) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `target chose AuthMethod=${method}, which we did not offer`);
      }
      return { state: 'send-response', keys: [['CHAP_A', String(CHAP_ALGORITHM_MD5)]], method: 'CHAP' };
    }
    case 'send-response': {
      const a = get('CHAP_A');
      const i = get('CHAP_I');
      const c = get('CHAP_C');
      if (a !== String(CHAP_ALGORITHM_MD5) || i === undefined || c === undefined) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `target sent no usable CHAP challenge (CHAP_A=${a ?? 'none'})`);
      }
      const id = Number(i);
      if (!/^[0-9]{1,3}$/.test(i) || id > 255) throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad CHAP_I ${i}`);
      let challenge: Buffer;
      try {
        challenge = parseChapValue(c);
      } catch (err) {
        throw new IscsiInitiatorError('ERR_ISCSI_PROTOCOL', `bad CHAP_C from target: ${(err as Error).message}`, { cause: err });
      }
      const chap = opts.chap as ChapSecret;
      const keys: Array<[string, string]> = [
        ['CHAP_N', chap.user],
        ['CHAP_R', formatChapHex(chapResponse(id, chap.password, challenge))],
      ];
      if (opts.targetChap === undefined) return { state: 'done', keys };
      let ours = makeChallenge();
      // §12.1.3: never send a challenge equal to the one we received.
      while (isReflectedChallenge(ours.challenge, challenge)) ours = makeChallenge();
      keys.push(['CHAP_I', String(ours.id)], ['CHAP_C', formatChapHex(ours.challenge)]);
      return { state: 'verify-target', keys, mutualChallenge: ours };
    }
    case 'verify-target': {
      const n = get('CHAP_N');
      const r = get('CHAP_R');
      const want = opts.targetChap as ChapSecret;
      if (n === undefined || r === undefined || mutual === undefined) {
        throw new IscsiInitiatorError('ERR_ISCSI_TARGET_AUTH', 'target sent no CHAP_N/CHAP_R for mutual CHAP');
      }
      let got: Buffer;
      try {
        got = parseChapValue(r);
      } catch (err) {
        throw new IscsiInitiatorError('ERR_ISCSI_TARGET_AUTH', `bad CHAP_R from target: ${(err as Error).message}`, { cause: err });
      }
      const expected = chapResponse(mutual.id, want.password, mutual.challenge);
      if (n !== want.user || !chapEqual(got, expected)) {
        throw new IscsiInitiatorError('ERR_ISCSI_TARGET_AUTH', `target failed mutual CHAP (name ${JSON.stringify(n)})`);
      }
      return { state: 'done', keys: [] };
    }
    default:
      return { state, keys: [] };
  }
}
