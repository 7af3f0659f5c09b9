// Login and text key negotiation (RFC 7143 §6.2, §13; RFC 7144 §13.24 for
// iSCSIProtocolLevel). One declarative table and one generic negotiator used
// by both the target (responder) and the initiator (originator), after LIO's
// iscsi_target_parameters.
//
// Outcomes (RFC 7143 §6.2):
//   - an unknown key is answered "NotUnderstood";
//   - a bad value (not Yes/No, out of range, no acceptable list item) is
//     answered "Reject" and the key keeps its default;
//   - a key that has no meaning in this session (discovery, or a leading-only
//     key on a non-leading connection) is answered "Irrelevant";
//   - a key offered twice in one login (§6.2: "neither the initiator nor the
//     target should attempt to declare or negotiate a parameter more than
//     once") or sent by the wrong side is a login error, Initiator Error
//     (0x02 0x00).
// Declarative keys (names, alias, SessionType, TargetPortalGroupTag, ...) are
// collected in result().declared for the login layer; so are security keys the
// negotiator does not handle itself (CHAP_*), which the CHAP layer answers.

import { DEFAULT_RECV_DATA_SEGMENT_LENGTH, LoginStatus } from './constants.js';

export type KeyKind = 'boolean-and' | 'boolean-or' | 'numeric-min' | 'numeric-max' | 'list' | 'string' | 'declarative';
export type KeySender = 'initiator' | 'target' | 'both';
export type NegotiationRole = 'initiator' | 'target';

export interface KeyDef {
  name: string;
  kind: KeyKind;
  /** Range of numeric keys (including numeric declaratives). */
  min?: number;
  max?: number;
  /** RFC default, as its wire string. */
  default?: string;
  /** Values a list key may take. */
  values?: readonly string[];
  scope: 'session' | 'connection';
  /** LO: only on the leading connection of a session. */
  leadingOnly: boolean;
  /** "Irrelevant when: SessionType=Discovery". */
  irrelevantInDiscovery: boolean;
  /** Who may send the key. */
  sender: KeySender;
  /** Login stage where the key belongs ('any' = operational or security). */
  stage: 'security' | 'operational' | 'any' | 'full-feature';
  /** The declarative key carries a number (validated against min/max). */
  numeric?: boolean;
}

const U24_MAX = 0xffffff;

function def(d: Omit<KeyDef, 'scope' | 'leadingOnly' | 'irrelevantInDiscovery' | 'sender' | 'stage'> & Partial<KeyDef>): KeyDef {
  return { scope: 'session', leadingOnly: false, irrelevantInDiscovery: false, sender: 'both', stage: 'operational', ...d };
}

/** The login keys of RFC 7143 §13 (+ §12 AuthMethod, RFC 7144 iSCSIProtocolLevel). */
export const KEY_TABLE: readonly KeyDef[] = [
  // §12: security negotiation.
  def({ name: 'AuthMethod', kind: 'list', default: 'None', values: ['None', 'CHAP', 'SRP', 'KRB5', 'SPKM1', 'SPKM2'], stage: 'security', scope: 'connection' }),
  // §13.1
  def({ name: 'HeaderDigest', kind: 'list', default: 'None', values: ['None', 'CRC32C'], scope: 'connection' }),
  def({ name: 'DataDigest', kind: 'list', default: 'None', values: ['None', 'CRC32C'], scope: 'connection' }),
  // §13.2
  def({ name: 'MaxConnections', kind: 'numeric-min', min: 1, max: 65535, default: '1', leadingOnly: true, irrelevantInDiscovery: true }),
  // §13.3
  def({ name: 'SendTargets', kind: 'declarative', sender: 'initiator', stage: 'full-feature' }),
  // §13.4 - §13.9
  def({ name: 'TargetName', kind: 'declarative', sender: 'initiator', stage: 'any', leadingOnly: false }),
  def({ name: 'InitiatorName', kind: 'declarative', sender: 'initiator', stage: 'any' }),
  def({ name: 'TargetAlias', kind: 'declarative', sender: 'target', stage: 'any' }),
  def({ name: 'InitiatorAlias', kind: 'declarative', sender: 'initiator', stage: 'any' }),
  def({ name: 'TargetAddress', kind: 'declarative', sender: 'target', stage: 'any' }),
  def({ name: 'TargetPortalGroupTag', kind: 'declarative', sender: 'target', stage: 'any', numeric: true, min: 0, max: 65535 }),
  // §13.10, §13.11
  def({ name: 'InitialR2T', kind: 'boolean-or', default: 'Yes', leadingOnly: true, irrelevantInDiscovery: true }),
  def({ name: 'ImmediateData', kind: 'boolean-and', default: 'Yes', leadingOnly: true, irrelevantInDiscovery: true }),
  // §13.12: each side declares what it can receive.
  def({
    name: 'MaxRecvDataSegmentLength',
    kind: 'declarative',
    numeric: true,
    min: 512,
    max: U24_MAX,
    default: String(DEFAULT_RECV_DATA_SEGMENT_LENGTH),
    scope: 'connection',
  }),
  // §13.13, §13.14
  def({ name: 'MaxBurstLength', kind: 'numeric-min', min: 512, max: U24_MAX, default: '262144', leadingOnly: true, irrelevantInDiscovery: true }),
  def({ name: 'FirstBurstLength', kind: 'numeric-min', min: 512, max: U24_MAX, default: '65536', leadingOnly: true, irrelevantInDiscovery: true }),
  // §13.15, §13.16
  def({ name: 'DefaultTime2Wait', kind: 'numeric-max', min: 0, max: 3600, default: '2', leadingOnly: true }),
  def({ name: 'DefaultTime2Retain', kind: 'numeric-min', min: 0, max: 3600, default: '20', leadingOnly: true }),
  // §13.17
  def({ name: 'MaxOutstandingR2T', kind: 'numeric-min', min: 1, max: 65535, default: '1', leadingOnly: true, irrelevantInDiscovery: true }),
  // §13.18, §13.19
  def({ name: 'DataPDUInOrder', kind: 'boolean-or', default: 'Yes', leadingOnly: true, irrelevantInDiscovery: true }),
  def({ name: 'DataSequenceInOrder', kind: 'boolean-or', default: 'Yes', leadingOnly: true, irrelevantInDiscovery: true }),
  // §13.20
  def({ name: 'ErrorRecoveryLevel', kind: 'numeric-min', min: 0, max: 2, default: '0', leadingOnly: true }),
  // §13.21
  def({ name: 'SessionType', kind: 'declarative', sender: 'initiator', stage: 'any', leadingOnly: true, default: 'Normal' }),
  // §13.23
  def({ name: 'TaskReporting', kind: 'list', default: 'RFC3720', values: ['RFC3720', 'ResponseFence', 'FastAbort'], leadingOnly: true, irrelevantInDiscovery: true }),
  // RFC 7144 §13.24
  def({ name: 'iSCSIProtocolLevel', kind: 'numeric-min', min: 0, max: 31, default: '1', leadingOnly: true }),
  // §13.26: IFMarker/OFMarker are obsolete; a responder SHOULD answer Reject or
  // MAY answer No, never NotUnderstood. "No" keeps RFC 3720 initiators happy.
  def({ name: 'IFMarker', kind: 'boolean-and', default: 'No', scope: 'connection' }),
  def({ name: 'OFMarker', kind: 'boolean-and', default: 'No', scope: 'connection' }),
  // RFC 7145 (iSER): meaningless over TCP, always No.
  def({ name: 'RDMAExtensions', kind: 'boolean-and', default: 'No', leadingOnly: true }),
];

/** §13.26: keys that MUST be answered "Reject" (and never NotUnderstood). */
const ALWAYS_REJECT = new Set(['IFMarkInt', 'OFMarkInt']);

export const KEYS: ReadonlyMap<string, KeyDef> = new Map(KEY_TABLE.map((k) => [k.name, k]));

export interface NegotiatedParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** What WE receive (our declaration, or 8192 if we did not declare). */
  maxRecvDataSegmentLength: number;
  /** What we may send (the peer's declaration, default 8192). */
  peerMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  immediateData: boolean;
  initialR2T: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  errorRecoveryLevel: number;
  maxConnections: number;
  ifMarker: false;
  ofMarker: false;
  /** Negotiated AuthMethod ('None' unless agreed otherwise). */
  authMethod: string;
  taskReporting: string;
  iscsiProtocolLevel: number;
  sessionType: 'Discovery' | 'Normal';
  /** Declarative and pass-through keys the peer sent (InitiatorName, TargetName, CHAP_*, ...). */
  declared: Record<string, string>;
}

export interface NegotiationError {
  statusClass: number;
  statusDetail: number;
  message: string;
}

export interface NegotiatorOptions {
  /** Discovery session (also switched on by SessionType=Discovery in the offers). */
  discovery: boolean;
  /** Leading connection of its session (LO keys allowed). */
  leading: boolean;
  /**
   * Responder side: ceilings on what numeric keys are answered with, e.g. the
   * target's limits on DefaultTime2Wait/Retain. The answer is the smaller of
   * the negotiated value and the cap (for a numeric-max key that can be below
   * the offer: the target will not hold state longer than it is willing to).
   */
  caps?: Readonly<Partial<Record<string, number>>>;
}

/** Parse an RFC 7143 §6.1 numerical value (decimal or 0x hex). NaN if invalid. */
export function parseNumericValue(s: string): number {
  if (/^[0-9]{1,16}$/.test(s)) return Number(s);
  if (/^0[xX][0-9a-fA-F]{1,13}$/.test(s)) return Number.parseInt(s.slice(2), 16);
  return Number.NaN;
}

/**
 * Why `value` cannot be the target's own setting for login key `name` (a TPG
 * parameter), or undefined when it can: the key must be one the negotiator
 * answers (not a name or a per-login declaration, MaxRecvDataSegmentLength
 * aside) and the value of the key's type and range (§6.1, §13). Used at
 * configuration time so that a typo is an error, not a NaN that switches a
 * limit off.
 */
export function keySettingProblem(name: string, value: string): string | undefined {
  const d = KEYS.get(name);
  if (d === undefined) return `"${name}" is not an iSCSI login key lunkit negotiates (RFC 7143 §13)`;
  if (d.kind === 'declarative' && d.name !== 'MaxRecvDataSegmentLength') return `${name} is declared per login, not configured`;
  switch (d.kind) {
    case 'boolean-and':
    case 'boolean-or':
      return isBool(value) ? undefined : `${JSON.stringify(value)} is not Yes or No`;
    case 'numeric-min':
    case 'numeric-max':
    case 'declarative': {
      const n = parseNumericValue(value);
      if (Number.isNaN(n)) return `${JSON.stringify(value)} is not a number`;
      if ((d.min !== undefined && n < d.min) || (d.max !== undefined && n > d.max)) return `${n} is outside ${d.min ?? 0}..${d.max ?? n}`;
      return undefined;
    }
    case 'list': {
      const items = value.split(',');
      const bad = items.filter((v) => !(d.values ?? []).includes(v));
      if (bad.length > 0) return `${JSON.stringify(bad.join(','))} is not among ${(d.values ?? []).join(', ')}`;
      return undefined;
    }
    default:
      return undefined;
  }
}

function isBool(v: string): v is 'Yes' | 'No' {
  return v === 'Yes' || v === 'No';
}

/** A key that belongs to authentication (handled by the CHAP layer, §12). */
function isAuthKey(key: string): boolean {
  return /^(CHAP|SRP|KRB|SPKM)_/.test(key) || key === 'TargetAuth' || key === 'SRP_U';
}

const REPLY_CONSTANTS = new Set(['NotUnderstood', 'Reject', 'Irrelevant']);

/**
 * Generic key negotiation for one connection's login (and FFP text exchange).
 * The target calls respond() for each Login/Text request's keys; the initiator
 * calls propose() for its offers and accept() with the target's replies.
 */
export class KeyNegotiator {
  private readonly local: Map<string, string>;
  private discovery: boolean;
  private readonly leading: boolean;
  /** Keys the peer sent us (offers or declarations). */
  private readonly seen = new Set<string>();
  /** Keys we offered, waiting for a reply. */
  private readonly offered = new Map<string, string>();
  /** Agreed values. */
  private readonly agreed = new Map<string, string>();
  private readonly declared: Record<string, string> = {};
  private ourRecvDeclared = false;
  private readonly caps: Readonly<Partial<Record<string, number>>>;

  constructor(
    readonly role: NegotiationRole,
    local: Partial<Record<string, string>>,
    opts: NegotiatorOptions,
  ) {
    this.local = new Map();
    for (const [k, v] of Object.entries(local)) if (v !== undefined) this.local.set(k, v);
    this.discovery = opts.discovery;
    this.leading = opts.leading;
    this.caps = opts.caps ?? {};
  }

  /** Our value for a key: the configured one, or the RFC default. */
  private ours(d: KeyDef): string | undefined {
    return this.local.get(d.name) ?? d.default;
  }

  private peerMaySend(d: KeyDef): boolean {
    return d.sender === 'both' || d.sender !== this.role;
  }

  private isIrrelevant(d: KeyDef): boolean {
    return (this.discovery && d.irrelevantInDiscovery) || (!this.leading && d.leadingOnly);
  }

  /**
   * Answer the peer's offers and declarations (responder side). Returns the
   * replies to send, and an error when the login must fail (Initiator Error).
   */
  respond(offers: Array<[string, string]>): { replies: Array<[string, string]>; error?: NegotiationError } {
    const replies: Array<[string, string]> = [];
    // SessionType decides relevance of the other keys, wherever it appears.
    for (const [k, v] of offers) if (k === 'SessionType' && v === 'Discovery') this.discovery = true;

    for (const [key, value] of offers) {
      if (this.seen.has(key) && !isAuthKey(key)) {
        return { replies, error: initiatorError(`key ${key} sent more than once`) };
      }
      this.seen.add(key);
      const d = KEYS.get(key);
      if (d === undefined) {
        if (isAuthKey(key)) this.declared[key] = value;
        else replies.push([key, ALWAYS_REJECT.has(key) ? 'Reject' : 'NotUnderstood']);
        continue;
      }
      if (!this.peerMaySend(d)) {
        return { replies, error: initiatorError(`key ${key} may only be sent by the ${this.role}`) };
      }
      if (d.kind === 'declarative') {
        const r = this.takeDeclaration(d, value);
        if (r !== undefined) replies.push([key, r]);
        if (d.name === 'MaxRecvDataSegmentLength' && !this.ourRecvDeclared) {
          // Answer a declaration with ours (§13.12: each side declares).
          replies.push(['MaxRecvDataSegmentLength', this.ourRecvDeclaration()]);
        }
        continue;
      }
      if (this.isIrrelevant(d)) {
        replies.push([key, 'Irrelevant']);
        continue;
      }
      if (REPLY_CONSTANTS.has(value)) {
        // Not a value an offer may carry.
        replies.push([key, 'Reject']);
        continue;
      }
      const result = this.negotiate(d, value);
      if (result === undefined) {
        replies.push([key, 'Reject']);
      } else {
        this.agreed.set(key, result);
        replies.push([key, result]);
      }
    }
    return { replies };
  }

  /** Validate and store a declarative key; returns a reply only for a bad value. */
  private takeDeclaration(d: KeyDef, value: string): string | undefined {
    if (d.numeric) {
      const n = parseNumericValue(value);
      if (Number.isNaN(n) || (d.min !== undefined && n < d.min) || (d.max !== undefined && n > d.max)) return 'Reject';
    }
    if (d.name === 'SessionType' && value !== 'Discovery' && value !== 'Normal') return 'Reject';
    this.declared[d.name] = value;
    return undefined;
  }

  private ourRecvDeclaration(): string {
    this.ourRecvDeclared = true;
    return this.local.get('MaxRecvDataSegmentLength') ?? String(DEFAULT_RECV_DATA_SEGMENT_LENGTH);
  }

  /**
   * Declarations we still owe the peer (our MaxRecvDataSegmentLength if the
   * peer never declared its own). The target appends these to its last
   * operational-stage Login Response.
   */
  pendingDeclarations(): Array<[string, string]> {
    if (this.ourRecvDeclared) return [];
    return [['MaxRecvDataSegmentLength', this.ourRecvDeclaration()]];
  }

  /** Result of a responder's negotiation of `value` for key `d`, or undefined to Reject. */
  private negotiate(d: KeyDef, value: string): string | undefined {
    const ours = this.ours(d) ?? '';
    switch (d.kind) {
      case 'boolean-and':
        if (!isBool(value)) return undefined;
        return value === 'Yes' && ours === 'Yes' ? 'Yes' : 'No';
      case 'boolean-or':
        if (!isBool(value)) return undefined;
        return value === 'Yes' || ours === 'Yes' ? 'Yes' : 'No';
      case 'numeric-min':
      case 'numeric-max': {
        const n = parseNumericValue(value);
        if (!this.inRange(d, n)) return undefined;
        const o = parseNumericValue(ours);
        const agreed = Number.isNaN(o) ? n : d.kind === 'numeric-min' ? Math.min(n, o) : Math.max(n, o);
        const cap = this.caps[d.name];
        return String(cap === undefined ? agreed : Math.max(d.min ?? 0, Math.min(agreed, cap)));
      }
      case 'list': {
        // §6.2.1: the responder picks the first value of the offer it supports.
        const accept = ours.split(',');
        for (const v of value.split(',')) {
          if (d.values !== undefined && !d.values.includes(v)) continue;
          if (accept.includes(v)) return v;
        }
        return undefined;
      }
      case 'string':
        return value;
      default:
        return undefined;
    }
  }

  private inRange(d: KeyDef, n: number): boolean {
    return !Number.isNaN(n) && (d.min === undefined || n >= d.min) && (d.max === undefined || n <= d.max);
  }

  /**
   * Our offers (originator side): every configured key this role may send that
   * is relevant and not yet offered or agreed, in table order, then configured
   * keys outside the table (e.g. X- extensions) are not sent.
   */
  propose(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const d of KEY_TABLE) {
      const v = this.local.get(d.name);
      if (v === undefined) continue;
      if (d.sender !== 'both' && d.sender !== this.role) continue;
      if (d.stage === 'full-feature') continue;
      if (this.offered.has(d.name) || this.agreed.has(d.name)) continue;
      if (d.kind === 'declarative') {
        if (d.name === 'MaxRecvDataSegmentLength') {
          if (this.ourRecvDeclared) continue;
          this.ourRecvDeclared = true;
        }
        this.offered.set(d.name, v);
        out.push([d.name, v]);
        continue;
      }
      if (this.isIrrelevant(d)) continue;
      this.offered.set(d.name, v);
      out.push([d.name, v]);
    }
    if (this.local.get('SessionType') === 'Discovery') this.discovery = true;
    return out;
  }

  /**
   * Take the peer's replies to our offers (originator side). New offers from
   * the peer are answered in `replies`. A reply outside what we offered is an
   * error (the initiator then drops the login).
   */
  accept(replies: Array<[string, string]>): { replies: Array<[string, string]>; error?: NegotiationError } {
    const newOffers: Array<[string, string]> = [];
    for (const [key, value] of replies) {
      const mine = this.offered.get(key);
      const d = KEYS.get(key);
      if (mine === undefined || d === undefined || d.kind === 'declarative') {
        if (d !== undefined && d.kind === 'declarative') {
          if (!this.peerMaySend(d)) continue;
          if (this.takeDeclaration(d, value) === 'Reject') {
            return { replies: [], error: initiatorError(`bad ${key} value ${JSON.stringify(value)}`) };
          }
          if (d.name === 'TargetAddress') continue; // may repeat (§13.8)
          this.seen.add(key);
        } else if (d === undefined) {
          if (isAuthKey(key)) this.declared[key] = value;
          // NotUnderstood etc. for an unknown key we offered: nothing to do.
          else if (mine === undefined) newOffers.push([key, value]);
          if (mine !== undefined) this.offered.delete(key);
        } else {
          newOffers.push([key, value]);
        }
        continue;
      }
      this.offered.delete(key);
      if (REPLY_CONSTANTS.has(value)) continue; // key keeps its default (§6.2)
      if (!this.replyFits(d, mine, value)) {
        return { replies: [], error: initiatorError(`reply ${key}=${value} does not fit our offer ${mine}`) };
      }
      this.agreed.set(key, value);
    }
    const answered = newOffers.length > 0 ? this.respond(newOffers) : { replies: [] };
    return answered;
  }

  /** §6.2: a reply is valid if it is a possible outcome of our offer. */
  private replyFits(d: KeyDef, mine: string, value: string): boolean {
    switch (d.kind) {
      case 'boolean-and':
        return isBool(value) && (mine === 'Yes' || value === 'No');
      case 'boolean-or':
        return isBool(value) && (mine === 'No' || value === 'Yes');
      case 'numeric-min': {
        const n = parseNumericValue(value);
        return this.inRange(d, n) && n <= parseNumericValue(mine);
      }
      case 'numeric-max': {
        const n = parseNumericValue(value);
        return this.inRange(d, n) && n >= parseNumericValue(mine);
      }
      case 'list':
        return mine.split(',').includes(value);
      default:
        return true;
    }
  }

  /** Agreed value of a key, or what the protocol implies, or its default. */
  private valueOf(name: string): string {
    const d = KEYS.get(name);
    if (d === undefined) return '';
    if (this.isIrrelevant(d)) return d.default ?? '';
    const a = this.agreed.get(name);
    if (a !== undefined) return a;
    // §6.2.2: a responder may omit the answer to AND=No and OR=Yes offers.
    const mine = this.offered.get(name);
    if (mine !== undefined && ((d.kind === 'boolean-and' && mine === 'No') || (d.kind === 'boolean-or' && mine === 'Yes'))) {
      return mine;
    }
    return d.default ?? '';
  }

  private num(name: string): number {
    const n = parseNumericValue(this.valueOf(name));
    return Number.isNaN(n) ? parseNumericValue(KEYS.get(name)?.default ?? '0') : n;
  }

  /** The operational parameters in force after negotiation. */
  result(): NegotiatedParams {
    const maxBurstLength = this.num('MaxBurstLength');
    const ourRecv = this.ourRecvDeclared
      ? parseNumericValue(this.local.get('MaxRecvDataSegmentLength') ?? String(DEFAULT_RECV_DATA_SEGMENT_LENGTH))
      : DEFAULT_RECV_DATA_SEGMENT_LENGTH;
    const peerRecvRaw = this.declared.MaxRecvDataSegmentLength;
    const peerRecv = peerRecvRaw === undefined ? DEFAULT_RECV_DATA_SEGMENT_LENGTH : parseNumericValue(peerRecvRaw);
    return {
      headerDigest: this.valueOf('HeaderDigest') === 'CRC32C',
      dataDigest: this.valueOf('DataDigest') === 'CRC32C',
      maxRecvDataSegmentLength: ourRecv,
      peerMaxRecvDataSegmentLength: peerRecv,
      maxBurstLength,
      // §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
      firstBurstLength: Math.min(this.num('FirstBurstLength'), maxBurstLength),
      immediateData: this.valueOf('ImmediateData') === 'Yes',
      initialR2T: this.valueOf('InitialR2T') === 'Yes',
      maxOutstandingR2T: this.num('MaxOutstandingR2T'),
      dataPDUInOrder: this.valueOf('DataPDUInOrder') === 'Yes',
      dataSequenceInOrder: this.valueOf('DataSequenceInOrder') === 'Yes',
      defaultTime2Wait: this.num('DefaultTime2Wait'),
      defaultTime2Retain: this.num('DefaultTime2Retain'),
      errorRecoveryLevel: this.num('ErrorRecoveryLevel'),
      maxConnections: this.num('MaxConnections'),
      ifMarker: false,
      ofMarker: false,
      authMethod: this.valueOf('AuthMethod'),
      taskReporting: this.valueOf('TaskReporting'),
      iscsiProtocolLevel: this.num('iSCSIProtocolLevel'),
      sessionType: this.discovery || this.declared.SessionType === 'Discovery' ? 'Discovery' : 'Normal',
      declared: { ...this.declared },
    };
  }

  /** What the peer declared for a declarative key so far (e.g. its MaxRecvDataSegmentLength). */
  peerDeclaration(name: string): string | undefined {
    return this.declared[name];
  }

  /** True if the key was agreed or declared in this negotiation. */
  has(key: string): boolean {
    return this.agreed.has(key) || key in this.declared;
  }
}

function initiatorError(message: string): NegotiationError {
  return { ...LoginStatus.INITIATOR_ERROR, message };
}
