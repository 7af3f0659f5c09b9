// `lunkit sessions`: who is logged in. iSCSI sessions (initiator, ISID, TSIH,
// target and TPG, connection addresses, digests, commands in flight) and NBD
// connections (export, address). `--initiator`: the iSCSI sessions this
// machine holds as an initiator (attach holders' state files, no daemon),
// with their ERL 2 connection recoveries and ERL 0 reinstatements.

import type { Argv, CommandModule } from 'yargs';

import { listHeldSessions, type HeldSession } from '../../attach/state.js';
import { renderTable } from '../config-view.js';
import { printResult, reportError, runVerb, withCommon, type CommonArgs } from '../output.js';

interface SessionsArgs extends CommonArgs {
  initiator: boolean;
}

type Rec = Record<string, unknown>;

function str(v: unknown, fallback = '-'): string {
  return v === undefined || v === null || v === '' ? fallback : String(v);
}

function digest(v: unknown): string {
  if (v === true) return 'CRC32C';
  if (v === false || v === undefined) return 'None';
  return String(v);
}

function addresses(s: Rec): string {
  const conns = Array.isArray(s.connections) ? (s.connections as Rec[]) : [];
  if (conns.length === 0) return str(s.address ?? s.remote);
  return conns.map((c) => `${c.cid === undefined ? '' : `cid${String(c.cid)} `}${str(c.remote ?? c.address)}${c.local ? ` -> ${String(c.local)}` : ''}`).join(', ');
}

/** The text of `lunkit sessions` for a sessions.list result (the daemon's SessionInfo objects). */
export function renderSessions(sessions: Rec[]): string {
  const iscsi = sessions.filter((s) => (s.fabric ?? (s.export !== undefined ? 'nbd' : 'iscsi')) === 'iscsi');
  const nbd = sessions.filter((s) => !iscsi.includes(s));
  const out: string[] = [];
  if (iscsi.length > 0 || nbd.length === 0) {
    const rows = iscsi.map((s) => {
      const params = (s.params ?? s.parameters ?? {}) as Rec;
      const type = s.type === 'discovery' ? ' (discovery)' : '';
      return [
        str(s.initiator ?? s.initiatorName) + type,
        str(s.isid),
        str(s.tsih),
        `${str(s.target ?? s.targetName)}/tpg${str(s.tpg ?? s.tpgt)}`,
        addresses(s),
        `${digest(params.headerDigest ?? params.HeaderDigest)}/${digest(params.dataDigest ?? params.DataDigest)}`,
        str(s.cmdsInFlight ?? s.inFlight, '0'),
      ];
    });
    out.push(iscsi.length === 0 ? 'No iSCSI sessions.\n' : renderTable(['INITIATOR', 'ISID', 'TSIH', 'TARGET/TPG', 'ADDRESSES', 'DIGESTS(H/D)', 'IN FLIGHT'], rows));
  }
  if (nbd.length > 0) {
    const rows = nbd.map((s) => [str(s.export), addresses(s), str(s.cmdsInFlight ?? s.inFlight, '0')]);
    out.push(renderTable(['NBD EXPORT', 'ADDRESS', 'IN FLIGHT'], rows));
  }
  return out.join('\n');
}

/** The text of `lunkit sessions --initiator`: one line per held session, with its recovery counters. */
export function renderHeldSessions(sessions: HeldSession[]): string {
  if (sessions.length === 0) return 'No iSCSI sessions held by lunkit attach.\n';
  const rows = sessions.map((s) => [
    `${s.target}/${s.lun}`,
    s.portal,
    `0x${s.tsih.toString(16).padStart(4, '0')}`,
    s.isid,
    String(s.erl),
    s.state ?? 'open',
    s.connections.length === 0
      ? '(none)'
      : s.connections.map((c) => `cid${c.cid} ${c.local ?? '?'}->${c.remote}${c.state === undefined || c.state === 'active' ? '' : ` (${c.state})`}`).join(', '),
    String(s.connectionRecoveries),
    String(s.reinstatements),
    s.file,
  ]);
  return renderTable(['TARGET/LUN', 'PORTAL', 'TSIH', 'ISID', 'ERL', 'STATE', 'CONNECTIONS', 'CONN RECOVERIES', 'REINSTATEMENTS', 'FILE'], rows);
}

export const sessionsCommand: CommandModule<object, SessionsArgs> = {
  command: 'sessions',
  describe: 'List the iSCSI sessions and NBD connections with their addresses, digests and commands in flight',
  builder: (y: Argv) =>
    withCommon(
      y
        .option('initiator', { type: 'boolean', default: false, describe: 'the iSCSI sessions held by `lunkit attach iscsi://` on this machine (no daemon needed)' })
        .example('$0 sessions', 'one line per session')
        .example('$0 sessions --json', 'with every negotiated parameter')
        .example('$0 sessions --initiator', 'sessions this machine holds to remote targets'),
    ) as Argv<SessionsArgs>,
  handler: async (args) => {
    if (args.initiator) {
      try {
        const sessions = await listHeldSessions();
        printResult({ sessions }, args.json, () => renderHeldSessions(sessions));
        process.exitCode = 0;
      } catch (err) {
        process.exitCode = reportError(err, args.json);
      }
      return;
    }
    return runVerb(
      args,
      () => undefined,
      async (client) => {
        const res = await client.call<{ sessions: Rec[] }>('sessions.list');
        printResult(res, args.json, () => renderSessions(res.sessions ?? []));
      },
    );
  },
};
