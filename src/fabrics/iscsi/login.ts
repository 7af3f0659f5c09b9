// The login phase of one connection, target side (RFC 7143 §6, §11.12-13).
//
// Stages: security (CSG 0) -> operational (CSG 1) -> full feature (3). The
// initiator asks to move on with T=1 and NSG; we agree (T=1) when nothing is
// pending on our side: CHAP finished in the security stage, no proposal of
// ours still unanswered in the operational stage. The first Login Response
// carries the initial StatSN (the initiator's ExpStatSN) and every response
// takes the next one (§11.13.4). The final response carries the TSIH.
//
// Failures answer with a Login Response whose Status-Class/Detail says why
// (§11.13.5) and then close the connection.
//
// Text in both directions is bounded. Our reply text is cut at what the
// initiator accepts per PDU (8192 during login, §13.12, or less if it declared
// less); each piece but the last has C=1 and T=0, and the initiator fetches
// the next one with an empty Login Request (§6.1, §11.13). What the
// initiator sends is capped per login: LOGIN_MAX_TEXT_BYTES of key text,
// LOGIN_MAX_KEYS keys and LOGIN_MAX_PDUS requests; past any of them the login
// fails with Initiator Error (0x0200) instead of growing.

import { LunkitError } from '../../protocols/errors.js';
import { DEFAULT_RECV_DATA_SEGMENT_LENGTH, LoginStage, LoginStatus, ISCSI_VERSION } from '../../protocols/iscsi/constants.js';
import { Opcode, type LoginRequestPdu, type LoginResponsePdu } from '../../protocols/iscsi/pdu-types.js';
import { encodeTextKeys, parseTextKeys, TextAccumulator } from '../../protocols/iscsi/text.js';
import { KeyNegotiator, keySettingProblem } from '../../protocols/iscsi/keys.js';
import type { AcceptingServer, ResolvedTarget } from './accepting-server.js';
import type { PduSink, SessionConnection } from './hosts.js';
import { ChapTarget, SECURITY_KEYS } from './auth.js';
import { SessionLunMap, computeLuns, findAcl, initiatorAllowed, sameName } from './acl.js';
import type { ChapCredentials } from './config.js';
import { IscsiSession, initiatorPortId, targetPortId } from './session.js';
import { DEFAULT_SESSION_PARAMS, type SessionParams } from './session-params.js';

type Status = { statusClass: number; statusDetail: number };

/** Key text one login may send in all (a real login sends well under 4 KiB; CHAP with long challenges under 8). */
export const LOGIN_MAX_TEXT_BYTES = 64 * 1024;
/** Keys one login may send in all (RFC 7143 defines about 30). */
export const LOGIN_MAX_KEYS = 256;
/** Login Requests one login may send (a CHAP login takes 4 or 5). */
export const LOGIN_MAX_PDUS = 64;

/** What to do once the last piece of a reply is out. */
interface ReplyPlan {
  /** Grant the initiator's transit request (T=1) to `nsg`. */
  transit: boolean;
  nsg: number;
}

/** Keys the login layer handles itself; the negotiator never sees them. */
const DECLARATIVE = new Set(['InitiatorName', 'InitiatorAlias', 'TargetName', 'SessionType', 'TargetAlias', 'TargetAddress', 'TargetPortalGroupTag']);

/** A login the target refuses with `status`; answered with a Login Response, never thrown further. */
class LoginFailure extends LunkitError {
  constructor(
    readonly status: Status,
    message: string,
  ) {
    super('ERR_ISCSI_LOGIN_REFUSED', message);
    this.name = 'LoginFailure';
  }
}

/** What the login phase needs of its connection (IscsiConnection). */
export interface LoginConnection extends PduSink, SessionConnection {
  /** Set from the first Login Request. */
  cid: number;
  /** Key of the listener that accepted the connection (which portal). */
  readonly portalKey: string;
  setInitialStatSN(n: number): void;
  /** The final Login Response is queued: switch to full feature phase. */
  enterFullFeature(session: IscsiSession, params: SessionParams): void;
  /** Flush what is queued, then close. */
  end(reason: string): void;
  readonly closed: boolean;
}

export class LoginPhase {
  private started = false;
  private done = false;
  private isid = 0;
  private tsih = 0;
  private cid = 0;
  private initialCmdSN = 0;
  private stage: number = LoginStage.SECURITY;
  private identified = false;
  private initiatorName = '';
  private sessionType: 'normal' | 'discovery' = 'normal';
  private resolved: ResolvedTarget | undefined;
  private existing: IscsiSession | undefined;
  private authRequired = false;
  private authDone = false;
  private creds: ChapCredentials | undefined;
  private mutualCreds: ChapCredentials | undefined;
  private chap: ChapTarget | undefined;
  /** A CHAP response waits out the throttle's delay (auth-throttle.ts) before it is checked. */
  private chapWaiting = false;
  private negotiator: KeyNegotiator | undefined;
  private proposalsSent = false;
  private tpgtSent = false;
  private readonly text = new TextAccumulator(LOGIN_MAX_TEXT_BYTES);
  /** Totals over the whole login (the caps above). */
  private textBytes = 0;
  private keyCount = 0;
  private pduCount = 0;
  /** The rest of a reply longer than one PDU, sent piece by piece (C bit). */
  private owed: { rest: Buffer; plan: ReplyPlan } | undefined;

  constructor(
    private readonly conn: LoginConnection,
    private readonly server: AcceptingServer,
  ) {}

  /** ExpCmdSN/MaxCmdSN for login responses (RFC 7143 §11.13). */
  window(): { expCmdSN: number; maxCmdSN: number } {
    if (this.existing) return { expCmdSN: this.existing.window.expCmdSN, maxCmdSN: this.existing.window.maxCmdSN };
    const depth = this.resolved?.tpg.attributes.defaultCmdsnDepth ?? 64;
    return { expCmdSN: this.initialCmdSN, maxCmdSN: (this.initialCmdSN + Math.max(1, depth) - 1) >>> 0 };
  }

  handle(pdu: LoginRequestPdu): void {
    if (this.done) return;
    if (this.chapWaiting) {
      // Login is lock-step: nothing may come while a response is owed.
      this.fail(pdu, LoginStatus.INITIATOR_ERROR, 'Login Request sent before the previous one was answered');
      return;
    }
    const gate = this.server.loginGate;
    const wait = gate && this.chap?.awaitingResponse && pdu.csg === LoginStage.SECURITY && !pdu.continue ? gate.chapDelayMs(this.initiatorName, this.conn.remote) : 0;
    if (wait > 0) {
      // The login timeout still runs; a connection gone by then is not answered.
      this.chapWaiting = true;
      setTimeout(() => {
        this.chapWaiting = false;
        if (!this.conn.closed && !this.done) this.run(pdu);
      }, wait).unref();
      return;
    }
    this.run(pdu);
  }

  private run(pdu: LoginRequestPdu): void {
    try {
      this.step(pdu);
    } catch (err) {
      if (err instanceof LoginFailure) {
        this.fail(pdu, err.status, err.message);
        return;
      }
      this.fail(pdu, LoginStatus.TARGET_ERROR, err instanceof Error ? err.message : String(err));
    }
  }

  private step(pdu: LoginRequestPdu): void {
    if (!this.started) {
      this.started = true;
      this.isid = pdu.isid;
      this.tsih = pdu.tsih;
      this.cid = pdu.cid;
      this.initialCmdSN = pdu.cmdSN >>> 0;
      this.conn.cid = pdu.cid;
      this.conn.setInitialStatSN(pdu.expStatSN);
      this.stage = pdu.csg;
      // §11.12.4: we speak version 0x00 only.
      if (pdu.versionMin > ISCSI_VERSION) throw new LoginFailure(LoginStatus.UNSUPPORTED_VERSION, 'unsupported version');
    } else if (pdu.isid !== this.isid || pdu.tsih !== this.tsih || pdu.cid !== this.cid) {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'ISID, TSIH or CID changed during login');
    }
    // §6.3: stages only go forward; CSG 3 and 2 are not login stages.
    if (pdu.csg !== LoginStage.SECURITY && pdu.csg !== LoginStage.OPERATIONAL) {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `invalid CSG ${pdu.csg}`);
    }
    if (pdu.csg < this.stage) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'login stage went backwards');
    if (pdu.transit && (pdu.nsg <= pdu.csg || pdu.nsg === 2)) {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `invalid NSG ${pdu.nsg} from CSG ${pdu.csg}`);
    }
    if (pdu.transit && pdu.continue) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'T and C both set');
    if (pdu.csg !== this.stage && this.owed) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'stage changed while a response was incomplete');
    this.stage = pdu.csg;
    if (++this.pduCount > LOGIN_MAX_PDUS) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `more than ${LOGIN_MAX_PDUS} Login Requests`);

    if (this.owed) {
      // The initiator asks for the rest of our text with an empty request (§6.1, §11.13).
      if (pdu.data.length > 0 || pdu.continue) {
        throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'login text sent while the target response was incomplete');
      }
      const { rest, plan } = this.owed;
      this.owed = undefined;
      this.reply(pdu, rest, plan);
      return;
    }

    this.textBytes += pdu.data.length;
    if (this.textBytes > LOGIN_MAX_TEXT_BYTES) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `login text over ${LOGIN_MAX_TEXT_BYTES} bytes`);
    let whole: Buffer | undefined;
    try {
      whole = this.text.add(pdu.data, pdu.continue);
    } catch {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'login text too long');
    }
    if (whole === undefined) {
      // §11.12.2: acknowledge a partial text with an empty response.
      this.respond(pdu, { transit: false, nsg: pdu.csg, data: Buffer.alloc(0) });
      return;
    }
    let pairs: Array<[string, string]>;
    try {
      pairs = parseTextKeys(whole);
    } catch {
      throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'malformed login text');
    }
    this.keyCount += pairs.length;
    if (this.keyCount > LOGIN_MAX_KEYS) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, `more than ${LOGIN_MAX_KEYS} login keys`);
    const keys = new Map<string, string>();
    for (const [k, v] of pairs) keys.set(k, v);
    if (!this.identified) this.identify(keys);

    const replies: Array<[string, string]> = [];
    const security = new Map<string, string>();
    const operational: Array<[string, string]> = [];
    for (const [k, v] of pairs) {
      if (SECURITY_KEYS.has(k)) security.set(k, v);
      else if (!DECLARATIVE.has(k)) operational.push([k, v]);
    }

    if (pdu.csg === LoginStage.SECURITY) {
      this.security(security, replies);
    } else {
      if (security.size > 0) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'security keys in the operational stage');
      if (this.authRequired && !this.authDone) {
        throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required');
      }
    }

    const neg = this.negotiator!;
    if (operational.length > 0) {
      const r = neg.respond(operational);
      if (r.error) throw new LoginFailure({ statusClass: r.error.statusClass, statusDetail: r.error.statusDetail }, r.error.message);
      replies.push(...r.replies);
    }
    if (!this.tpgtSent && this.sessionType === 'normal' && this.resolved) {
      // §13.9: TargetPortalGroupTag goes in the first response of a normal session.
      replies.push(['TargetPortalGroupTag', String(this.resolved.tpg.tag)]);
      this.tpgtSent = true;
    }
    if (pdu.transit && pdu.nsg === LoginStage.FULL_FEATURE && !this.proposalsSent) {
      // Our declarations go in the last response before full feature phase:
      // MaxRecvDataSegmentLength if the initiator did not prompt it (§13.12),
      // and the alias. We offer nothing that needs an answer, so the
      // initiator's transit request can be granted in the same response.
      this.proposalsSent = true;
      const already = new Set(replies.map(([k]) => k));
      for (const kv of neg.pendingDeclarations()) if (!already.has(kv[0])) replies.push(kv);
      const alias = this.resolved?.target.alias;
      if (alias && this.sessionType === 'normal') replies.push(['TargetAlias', alias]);
    }

    let transit = pdu.transit;
    if (pdu.csg === LoginStage.SECURITY && !this.authDone) transit = false;
    this.reply(pdu, encodeTextKeys(replies), { transit, nsg: transit ? pdu.nsg : pdu.csg });
  }

  /**
   * Send `data` in answer to `pdu`: all of it, carrying out `plan`, if it fits
   * in one PDU the initiator accepts; else the first piece with C=1 and T=0,
   * keeping the rest for the initiator's next (empty) request.
   */
  private reply(pdu: LoginRequestPdu, data: Buffer, plan: ReplyPlan): void {
    const max = this.peerMaxDataSegment();
    if (data.length > max) {
      this.owed = { rest: data.subarray(max), plan };
      this.respond(pdu, { transit: false, cont: true, nsg: pdu.csg, data: data.subarray(0, max) });
      return;
    }
    // The T bit answers the request it comes in (§11.13): a transit asked
    // for before a long reply is granted only if the last request asks again.
    const transit = plan.transit && pdu.transit && pdu.nsg === plan.nsg;
    if (transit && plan.nsg === LoginStage.FULL_FEATURE) {
      this.finish(pdu, data);
      return;
    }
    if (transit) this.stage = plan.nsg;
    this.respond(pdu, { transit, nsg: transit ? plan.nsg : pdu.csg, data });
  }

  /** What the initiator accepts per Login Response: 8192, or less if it declared less (§13.12). */
  private peerMaxDataSegment(): number {
    const declared = this.negotiator?.peerDeclaration('MaxRecvDataSegmentLength');
    const n = declared === undefined ? Number.NaN : Number(declared);
    return Number.isFinite(n) && n >= 512 ? Math.min(n, DEFAULT_RECV_DATA_SEGMENT_LENGTH) : DEFAULT_RECV_DATA_SEGMENT_LENGTH;
  }

  /** First PDU: who is logging in to what (§11.12, §13.4-13.6). */
  private identify(keys: Map<string, string>): void {
    this.identified = true;
    const server = this.server;
    const initiator = keys.get('InitiatorName');
    if (initiator === undefined || initiator.length === 0) {
      throw new LoginFailure(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
    }
    this.initiatorName = initiator;
    const type = keys.get('SessionType') ?? 'Normal';
    if (type === 'Discovery') this.sessionType = 'discovery';
    else if (type === 'Normal') this.sessionType = 'normal';
    else throw new LoginFailure(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType ${type}`);

    if (this.sessionType === 'normal') {
      const targetName = keys.get('TargetName');
      if (targetName === undefined || targetName.length === 0) {
        throw new LoginFailure(LoginStatus.MISSING_PARAMETER, 'TargetName missing');
      }
      const r = server.resolveTarget(targetName, this.conn.portalKey);
      if (r === 'not-found') throw new LoginFailure(LoginStatus.NOT_FOUND, `unknown target ${targetName}`);
      this.resolved = r;
      if (!initiatorAllowed(r.tpg, initiator)) {
        throw new LoginFailure(LoginStatus.AUTHORIZATION_FAILURE, `initiator ${initiator} has no ACL`);
      }
      const refusal = this.tsih === 0 ? server.loginGate?.refuseSession(initiator, this.isid, this.conn.remote) : undefined;
      if (refusal) throw new LoginFailure(refusal.status, refusal.why);
      const acl = findAcl(r.tpg, initiator);
      this.authRequired = r.tpg.attributes.authentication;
      this.creds = acl?.chap;
      this.mutualCreds = acl?.mutualChap;
    } else {
      const d = server.discoveryAuth();
      this.authRequired = d?.enabled === true;
      if (d?.userid !== undefined && d.password !== undefined) this.creds = { userid: d.userid, password: d.password };
      if (d?.mutualUserid !== undefined && d.mutualPassword !== undefined) {
        this.mutualCreds = { userid: d.mutualUserid, password: d.mutualPassword };
      }
    }

    if (this.tsih !== 0) {
      // §6.3.1: adding (or reinstating) a connection of an existing session.
      const s = server.sessions.byTsihGet(this.tsih);
      const same =
        s !== undefined &&
        !s.closed &&
        s.isid === this.isid &&
        sameName(s.initiatorName, initiator) &&
        s.type === this.sessionType &&
        (this.sessionType === 'discovery' || (this.resolved !== undefined && sameName(s.targetName, this.resolved.target.iqn) && s.tpgt === this.resolved.tpg.tag));
      if (!same || !s) throw new LoginFailure(LoginStatus.SESSION_DOES_NOT_EXIST, `no session with TSIH ${this.tsih}`);
      const reinstating = [...s.connections].some((c) => c.cid === this.cid);
      if (!reinstating && s.connections.size >= s.params.maxConnections) {
        throw new LoginFailure(LoginStatus.TOO_MANY_CONNECTIONS, 'too many connections');
      }
      this.existing = s;
    }

    const local: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.resolved?.tpg.parameters ?? {})) {
      // The daemon refuses bad parameters at config time (daemon/config.ts);
      // a library user's bad value is left out rather than negotiated as NaN.
      if (keySettingProblem(k, v) === undefined) local[k] = v;
      else server.log.warn?.('iSCSI TPG parameter ignored', { key: k, why: keySettingProblem(k, v) });
    }
    // MC/S and error recovery come from the TPG parameters; absent, LIO's
    // defaults (one connection, ERL 0, Time2Wait 2 s, Time2Retain 20 s).
    local.ErrorRecoveryLevel ??= '0';
    local.MaxConnections ??= '1';
    local.DefaultTime2Wait ??= '2';
    local.DefaultTime2Retain ??= '20';
    delete local.TargetAlias;
    // What we accept per PDU: larger than the 8192 default so writes need
    // fewer Data-Out PDUs (LIO declares 8192; iSCSI allows up to 2^24-1).
    local.MaxRecvDataSegmentLength ??= '262144';
    // Digests when the initiator asks for them (LIO's default "CRC32C,None").
    local.HeaderDigest ??= 'CRC32C,None';
    local.DataDigest ??= 'CRC32C,None';
    // DefaultTime2Wait/Retain say how long a failed connection's tasks (and
    // their buffers) are held: capped by the server's limits, whatever the
    // initiator offers or the TPG sets.
    const limits = server.limits();
    this.negotiator = new KeyNegotiator('target', local, {
      discovery: this.sessionType === 'discovery',
      leading: this.tsih === 0,
      caps: { DefaultTime2Wait: limits.maxDefaultTime2Wait, DefaultTime2Retain: limits.maxDefaultTime2Retain },
    });
  }

  private security(keys: Map<string, string>, replies: Array<[string, string]>): void {
    const method = keys.get('AuthMethod');
    if (method !== undefined) {
      if (this.chap || this.authDone) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'AuthMethod offered twice');
      const offered = method.split(',').map((s) => s.trim());
      const canChap = offered.includes('CHAP') && this.creds !== undefined;
      if (this.authRequired) {
        if (!canChap) throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'CHAP required');
      } else if (offered.includes('None')) {
        replies.push(['AuthMethod', 'None']);
        this.authDone = true;
        return;
      } else if (!canChap) {
        throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'no acceptable AuthMethod');
      }
      replies.push(['AuthMethod', 'CHAP']);
      this.chap = new ChapTarget(this.creds!, this.mutualCreds);
      keys.delete('AuthMethod');
      if (keys.size === 0) return;
    }
    const chapKeys = [...keys.keys()].filter((k) => k.startsWith('CHAP_'));
    if (chapKeys.length > 0) {
      if (!this.chap) throw new LoginFailure(LoginStatus.INITIATOR_ERROR, 'CHAP keys without AuthMethod=CHAP');
      const checked = this.chap.awaitingResponse;
      const r = this.chap.step(keys);
      if (checked) this.server.loginGate?.chapResult(this.initiatorName, this.conn.remote, r.kind !== 'fail');
      if (r.kind === 'fail') throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, `CHAP: ${r.why}`);
      replies.push(...r.replies);
      if (r.kind === 'done') this.authDone = true;
      return;
    }
    if (!this.chap && !this.authDone && !this.authRequired) {
      // No AuthMethod at all: the initiator skips authentication (§6.3.1).
      this.authDone = true;
    } else if (!this.chap && !this.authDone && this.authRequired) {
      throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required');
    }
  }

  /** Transit to full feature phase: create or join the session (§6.3.5). */
  private finish(pdu: LoginRequestPdu, data: Buffer): void {
    if (this.authRequired && !this.authDone) throw new LoginFailure(LoginStatus.AUTHENTICATION_FAILURE, 'not authenticated');
    const server = this.server;
    if (this.sessionType === 'normal' && this.resolved && !this.existing) {
      // The configuration may have changed while this login went on (a TPG
      // disabled, an ACL removed): the session is built on what is in force now.
      const now = server.resolveTarget(this.resolved.target.iqn, this.conn.portalKey);
      if (now === 'not-found' || now.tpg.tag !== this.resolved.tpg.tag) {
        throw new LoginFailure(LoginStatus.NOT_FOUND, `target ${this.resolved.target.iqn} went away during login`);
      }
      if (!initiatorAllowed(now.tpg, this.initiatorName)) {
        throw new LoginFailure(LoginStatus.AUTHORIZATION_FAILURE, `initiator ${this.initiatorName} lost its ACL during login`);
      }
      this.resolved = now;
    }
    const negotiated = this.negotiator!.result();
    const params: SessionParams = { ...DEFAULT_SESSION_PARAMS };
    for (const k of Object.keys(params) as Array<keyof SessionParams>) {
      const v = (negotiated as unknown as Record<string, unknown>)[k];
      if (typeof v === typeof params[k]) (params as unknown as Record<string, unknown>)[k] = v;
    }
    let session: IscsiSession;
    let connParams = params;
    if (this.existing) {
      session = this.existing;
      // A non-leading connection negotiates connection-scope keys only
      // (§6.3.1); the session-wide ones stay those of the leading login.
      connParams = {
        ...session.params,
        headerDigest: params.headerDigest,
        dataDigest: params.dataDigest,
        maxRecvDataSegmentLength: params.maxRecvDataSegmentLength,
        peerMaxRecvDataSegmentLength: params.peerMaxRecvDataSegmentLength,
      };
    } else {
      if (this.sessionType === 'normal' && this.resolved) {
        const old = server.sessions.find(this.initiatorName, this.isid, this.resolved.target.iqn, this.resolved.tpg.tag);
        if (old) {
          server.log.info?.('iSCSI session reinstatement', { initiator: this.initiatorName, tsih: old.tsih });
          old.close('session reinstated');
        }
      }
      const r = this.resolved;
      session = new IscsiSession({
        tsih: server.sessions.allocateTsih(),
        isid: this.isid,
        initiatorName: this.initiatorName,
        targetName: r?.target.iqn ?? '',
        tpgt: r?.tpg.tag ?? 0,
        tpg: r?.tpg,
        type: this.sessionType,
        params,
        initialCmdSN: this.initialCmdSN,
        cmdsnDepth: r?.tpg.attributes.defaultCmdsnDepth ?? 64,
      });
      if (r) {
        const luns = new SessionLunMap(computeLuns(r.tpg, this.initiatorName));
        session.luns = luns;
        const nexus = server.core.openNexus(
          {
            initiatorName: this.initiatorName,
            initiatorPortId: initiatorPortId(this.initiatorName, this.isid),
            targetName: r.target.iqn,
            targetPortId: targetPortId(r.target.iqn, r.tpg.tag),
            relativeTargetPortId: r.tpg.tag,
            targetPortGroup: 0,
            protocolId: 5,
            luns,
          },
          server.fabric,
        );
        session.nexus = nexus;
        session.onClose(() => server.core.closeNexus(nexus));
      }
      server.sessions.add(session);
      session.onClose(() => server.stats.sessionClosed(session, session.closeReason ?? 'closed'));
    }
    this.done = true;
    this.conn.send<LoginResponsePdu>({
      opcode: Opcode.LOGIN_RESPONSE,
      transit: true,
      continue: false,
      csg: pdu.csg,
      nsg: LoginStage.FULL_FEATURE,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      isid: this.isid,
      tsih: session.tsih,
      itt: pdu.itt,
      statSN: this.conn.takeStatSN(),
      expCmdSN: session.window.expCmdSN,
      maxCmdSN: session.window.maxCmdSN,
      statusClass: 0,
      statusDetail: 0,
      data,
    });
    // Connection reinstatement (§6.3.4): an old connection with this CID goes
    // away, the session stays (the new one is counted first, so the session
    // never looks empty). At ERL 2 its tasks wait for TASK REASSIGN (§6.2.2);
    // below ERL 2 they are aborted.
    const replaced = this.existing ? [...session.connections].filter((c) => c.cid === this.cid) : [];
    session.connections.add(this.conn);
    for (const old of replaced) old.destroy('connection reinstated');
    if (this.existing) session.connectionReinstated(this.cid);
    this.conn.enterFullFeature(session, connParams);
    // The connection keeps this object for its life: let go of what only the
    // login needed (the negotiator's maps, CHAP state, credentials).
    this.negotiator = undefined;
    this.chap = undefined;
    this.creds = undefined;
    this.mutualCreds = undefined;
    this.text.reset();
    server.stats.loginOk(this.conn, session);
    server.log.info?.('iSCSI login', {
      initiator: this.initiatorName,
      target: session.targetName,
      type: session.type,
      tsih: session.tsih,
      remote: this.conn.remote,
      headerDigest: params.headerDigest,
      dataDigest: params.dataDigest,
    });
  }

  private respond(pdu: LoginRequestPdu, r: { transit: boolean; cont?: boolean; nsg: number; data: Buffer }): void {
    const w = this.window();
    this.conn.send<LoginResponsePdu>({
      opcode: Opcode.LOGIN_RESPONSE,
      transit: r.transit,
      continue: r.cont ?? false,
      csg: pdu.csg,
      nsg: r.nsg,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      isid: this.isid,
      tsih: this.tsih,
      itt: pdu.itt,
      statSN: this.conn.takeStatSN(),
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
      statusClass: 0,
      statusDetail: 0,
      data: r.data,
    });
  }

  private fail(pdu: LoginRequestPdu, status: Status, why: string): void {
    this.done = true;
    this.server.stats.loginFailed(this.conn, this.initiatorName, status.statusClass, status.statusDetail, why);
    const fields = { remote: this.conn.remote, initiator: this.initiatorName || undefined, statusClass: status.statusClass, statusDetail: status.statusDetail, why };
    if (this.server.loginGate) this.server.loginGate.loginFailed(fields);
    else this.server.log.info?.('iSCSI login failed', fields);
    const w = this.window();
    this.conn.send<LoginResponsePdu>({
      opcode: Opcode.LOGIN_RESPONSE,
      transit: false,
      continue: false,
      csg: pdu.csg,
      nsg: pdu.csg,
      versionMax: ISCSI_VERSION,
      versionActive: ISCSI_VERSION,
      isid: pdu.isid,
      tsih: pdu.tsih,
      itt: pdu.itt,
      statSN: this.conn.takeStatSN(),
      expCmdSN: w.expCmdSN,
      maxCmdSN: w.maxCmdSN,
      statusClass: status.statusClass,
      statusDetail: status.statusDetail,
    });
    this.conn.end(`login failed: ${why}`);
  }
}
