// SessionRecovery's sequencing against a fake RecoveryHost (no sockets):
// ERL 2 logs the failed CID out on a live connection and reassigns each task
// (complete / still allegiant / does not exist), reconnects with the same CID
// when no connection is left, falls back to reinstatement; ERL 0 retries
// bounded times, then fails.
import { describe, expect, it } from 'vitest';
import type { IscsiConnection } from '../../../src/initiator/connection.js';
import { IscsiInitiatorError } from '../../../src/initiator/errors.js';
import { SessionRecovery, type RecoveryEvent, type RecoveryHost } from '../../../src/initiator/recovery.js';
import type { ScsiTask } from '../../../src/initiator/task.js';
import type { NegotiatedParams } from '../../../src/protocols/iscsi/keys.js';
import type { LogoutResponsePdu } from '../../../src/protocols/iscsi/pdu-types.js';

const conn = (cid: number, inFlight = 0): IscsiConnection => ({ cid, inFlight, state: 'active', closed: false }) as unknown as IscsiConnection;

interface FakeTask {
  itt: number;
  cmdSN: number;
  finished: boolean;
  resent: number;
  reassignTo(c: IscsiConnection): number;
  resend(c: IscsiConnection): void;
}
const task = (itt: number, cmdSN: number): FakeTask => ({
  itt,
  cmdSN,
  finished: false,
  resent: 0,
  reassignTo: () => 3,
  resend() {
    this.resent++;
  },
});

function fakeHost(o: {
  erl: number;
  live: IscsiConnection[];
  tasks: FakeTask[];
  reassign?: (t: FakeTask, n: number) => number;
  seen?: (cmdSN: number) => boolean;
  logout?: () => number;
  loginFails?: number;
  openFails?: boolean;
}) {
  const log: string[] = [];
  const events: RecoveryEvent[] = [];
  const calls = new Map<number, number>();
  let logins = 0;
  const host: RecoveryHost = {
    params: () => ({ errorRecoveryLevel: o.erl, defaultTime2Wait: 0, defaultTime2Retain: 20 }) as NegotiatedParams,
    ending: () => false,
    pickLive: () => o.live[0],
    activeCount: () => o.live.length,
    desiredConnections: () => o.live.length,
    openConnection: async (cid) => {
      log.push(`open ${cid ?? 'new'}`);
      if (o.openFails === true) throw new Error('refused');
      const c = conn(cid ?? 99);
      o.live.push(c);
      return c;
    },
    dropConnection: (c) => log.push(`drop ${c.cid}`),
    tasksOf: () => o.tasks as unknown as ScsiTask[],
    bind: (t, c) => log.push(`bind ${t.itt}->${c.cid}`),
    logoutConnection: async (via, cid, reason) => {
      log.push(`logout ${cid} reason ${reason} via ${via.cid}`);
      return { response: o.logout?.() ?? 0, time2Wait: 0, time2Retain: 20 } as LogoutResponsePdu;
    },
    reassign: async (via, t, exp) => {
      const n = (calls.get(t.itt) ?? 0) + 1;
      calls.set(t.itt, n);
      log.push(`reassign ${t.itt} via ${via.cid} exp ${exp}`);
      return o.reassign?.(t as unknown as FakeTask, n) ?? 0;
    },
    targetHasSeen: (sn) => o.seen?.(sn) ?? false,
    restart: (t) => log.push(`restart ${t.itt}`),
    dropSession: () => {
      log.push('dropSession');
      return o.tasks as unknown as ScsiTask[];
    },
    loginNewSession: async () => {
      logins++;
      log.push(`login ${logins}`);
      if (logins <= (o.loginFails ?? 0)) throw new Error('target down');
      return 7;
    },
    requeue: (ts) => log.push(`requeue ${ts.length}`),
    fail: (err) => log.push(`fail ${err.code}`),
    note: (e) => events.push(e),
  };
  return { host, log, events };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
};
const err = new IscsiInitiatorError('ERR_ISCSI_DISCONNECTED', 'cut');

describe('SessionRecovery at ERL 2', () => {
  it('logs the failed CID out on a live connection, then reassigns each task there', async () => {
    const live = [conn(1)];
    const t1 = task(0x10, 5);
    const t2 = task(0x11, 6);
    const { host, log, events } = fakeHost({ erl: 2, live, tasks: [t1, t2] });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(0, 2), err);
    expect(r.recovering).toBe(true);
    await settle();
    expect(log).toEqual(['logout 0 reason 2 via 1', 'drop 0', 'bind 16->1', 'reassign 16 via 1 exp 3', 'bind 17->1', 'reassign 17 via 1 exp 3']);
    expect(r.connectionRecoveries).toBe(1);
    expect(r.recovering).toBe(false);
    expect(events.map((e) => e.kind)).toEqual(['connection-failed', 'connection-recovered']);
  });

  it('still allegiant is asked again; does not exist resends with the same CmdSN, or restarts if the target saw it', async () => {
    const t1 = task(1, 5);
    const t2 = task(2, 6);
    const t3 = task(3, 7);
    const { host, log } = fakeHost({
      erl: 2,
      live: [conn(1)],
      tasks: [t1, t2, t3],
      reassign: (t, n) => (t.itt === 1 ? (n < 3 ? 3 : 0) : 1),
      seen: (sn) => sn === 7,
    });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(0), err);
    for (let i = 0; i < 30; i++) await new Promise((res) => setTimeout(res, 20));
    expect(log.filter((l) => l.startsWith('reassign 1 '))).toHaveLength(3);
    expect(t2.resent).toBe(1);
    expect(t3.resent).toBe(0);
    expect(log).toContain('restart 3');
    expect(r.reinstatements).toBe(0);
  });

  it('with no connection left, logs in again with the same CID', async () => {
    const { host, log } = fakeHost({ erl: 2, live: [], tasks: [task(1, 1)] });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(4), err);
    await settle();
    expect(log.slice(0, 4)).toEqual(['drop 4', 'open 4', 'bind 1->4', 'reassign 1 via 4 exp 3']);
  });

  it('falls back to reinstatement when reassignment is refused', async () => {
    const { host, log } = fakeHost({ erl: 2, live: [conn(1)], tasks: [task(1, 1)], reassign: () => 4 });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(0), err);
    await settle();
    expect(log).toContain('dropSession');
    expect(log).toContain('requeue 1');
    expect(r.reinstatements).toBe(1);
  });

  it('falls back to reinstatement when the logout for recovery is refused', async () => {
    const { host, log } = fakeHost({ erl: 2, live: [conn(1)], tasks: [], logout: () => 2 });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(0), err);
    await settle();
    expect(log).toContain('dropSession');
  });
});

describe('SessionRecovery below ERL 2', () => {
  it('reinstates: retries the login with back-off, then requeues the tasks', async () => {
    const { host, log, events } = fakeHost({ erl: 0, live: [conn(0)], tasks: [task(1, 1), task(2, 2)], loginFails: 2 });
    const r = new SessionRecovery(host, { reinstateAttempts: 3, backoffMs: 1 });
    r.connectionFailed(conn(0), err);
    expect(r.busy).toBe(true);
    await settle();
    expect(log).toEqual(['dropSession', 'login 1', 'login 2', 'login 3', 'requeue 2']);
    expect(events.filter((e) => e.kind === 'reinstating')).toHaveLength(3);
    expect(events.at(-1)).toEqual({ kind: 'reinstated', tsih: 7, tasks: 2 });
    expect(r.busy).toBe(false);
  });

  it('gives up after the attempts with ERR_ISCSI_RECOVERY_FAILED', async () => {
    const { host, log } = fakeHost({ erl: 1, live: [], tasks: [], loginFails: 9 });
    const r = new SessionRecovery(host, { reinstateAttempts: 2, backoffMs: 1 });
    r.connectionFailed(conn(0), err);
    await settle();
    expect(log).toEqual(['dropSession', 'login 1', 'login 2', 'fail ERR_ISCSI_RECOVERY_FAILED']);
  });

  it('without attempts configured, the session fails at once with the connection error', () => {
    const { host, log } = fakeHost({ erl: 0, live: [], tasks: [] });
    new SessionRecovery(host, { reinstateAttempts: 0, backoffMs: 1 }).connectionFailed(conn(0), err);
    expect(log).toEqual(['fail ERR_ISCSI_DISCONNECTED']);
  });
});
