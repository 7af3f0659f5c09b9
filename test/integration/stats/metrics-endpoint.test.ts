// The metrics endpoint against a real IscsiTargetServer on port 0: a naive
// initiator (test/helpers/naive-iscsi.ts) reads, writes and provokes a
// Reject; /metrics must parse line by line, and its byte counters must equal
// what the client transferred (SCSI data and TCP bytes both).

import { get } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';

import { StatsEventLog, collectStatsSnapshot, startMetricsServer, type MetricsServer } from '../../../src/daemon/metrics.js';
import { NaiveIscsiClient, type NaivePduIn } from '../../helpers/naive-iscsi.js';
import { startIscsiTarget, type TestTarget } from '../../helpers/iscsi-target.js';
import { parsePrometheus, sampleValue } from '../../unit/stats/prom-parser.js';

function fetchText(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/** Reads PDUs until the command's status arrives; returns Data-In bytes and the status. */
async function untilStatus(c: NaiveIscsiClient): Promise<{ data: number; status: number; last: NaivePduIn }> {
  let data = 0;
  for (;;) {
    const p = await c.next(5000);
    if (!p) throw new Error('no response');
    if (p.opcode === 0x25) {
      data += p.data.length;
      if (p.bhs[1] & 0x01) return { data, status: p.bhs[3], last: p };
    } else if (p.opcode === 0x21) {
      return { data, status: p.bhs[3], last: p };
    } else if (p.opcode === 0x3f) {
      return { data, status: -1, last: p };
    }
  }
}

const read10 = (lba: number, blocks: number): number[] => [0x28, 0, 0, 0, (lba >> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];
const write10 = (lba: number, blocks: number): number[] => [0x2a, 0, 0, 0, (lba >> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];

describe('metrics endpoint', () => {
  let target: TestTarget | undefined;
  let metrics: MetricsServer | undefined;
  let events: StatsEventLog | undefined;
  let client: NaiveIscsiClient | undefined;

  afterEach(async () => {
    client?.close();
    await metrics?.close();
    events?.close();
    await target?.close();
  });

  it('serves text a Prometheus parser accepts, with byte counters equal to the transfer', async () => {
    target = await startIscsiTarget({ attributes: { nopInInterval: 0 } });
    events = new StatsEventLog();
    const t = target;
    const log = events;
    metrics = await startMetricsServer({ host: '127.0.0.1', port: 0 }, () => collectStatsSnapshot({ core: t.core, iscsi: t.server, events: log }));
    expect(metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const c = (client = await NaiveIscsiClient.connect(t.port));
    await c.login('iqn.2026-01.org.example:metrics-client', t.iqn);
    // TEST UNIT READY until the POWER ON unit attention is reported.
    for (let i = 0; i < 5; i++) {
      c.send(c.scsiCommand([0, 0, 0, 0, 0, 0]));
      if ((await untilStatus(c)).status === 0) break;
    }
    let readData = 0;
    for (let i = 0; i < 5; i++) {
      c.send(c.scsiCommand(read10(i * 16, 16), { read: true, edtl: 16 * 512 }));
      const r = await untilStatus(c);
      expect(r.status).toBe(0);
      readData += r.data;
    }
    expect(readData).toBe(5 * 16 * 512);
    c.send(c.scsiCommand(write10(0, 4), { write: true, edtl: 2048, data: Buffer.alloc(2048, 0x5a) }));
    expect((await untilStatus(c)).status).toBe(0);
    // A SNACK at ERL 0 is refused with Reject PROTOCOL ERROR (RFC 7143 §11.16).
    const snack = Buffer.alloc(48);
    snack[0] = 0x10;
    snack[1] = 0x80;
    snack.writeUInt32BE(0xffffffff, 16);
    c.send({ bhs: snack });
    const rej = await untilStatus(c);
    expect(rej.status).toBe(-1);
    expect(rej.last.bhs[2]).toBe(0x04);

    const res = await fetchText(metrics.url);
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const fams = parsePrometheus(res.body);
    const lun = { target: t.iqn, lun: '0', backstore: 'ram0' };
    expect(sampleValue(fams, 'lunkit_lun_read_bytes_total', lun)).toBe(readData);
    expect(sampleValue(fams, 'lunkit_lun_write_bytes_total', lun)).toBe(2048);
    expect(sampleValue(fams, 'lunkit_lun_reads_total', lun)).toBe(5);
    expect(sampleValue(fams, 'lunkit_lun_writes_total', lun)).toBe(1);
    expect(sampleValue(fams, 'lunkit_lun_check_conditions_total', { ...lun, sense_key: 'UNIT_ATTENTION' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_lun_commands_in_flight', lun)).toBe(0);
    expect(sampleValue(fams, 'lunkit_lun_latency_seconds_count', lun)).toBe(sampleValue(fams, 'lunkit_lun_commands_total', lun));
    expect(sampleValue(fams, 'lunkit_sessions', { fabric: 'iscsi', target: t.iqn })).toBe(1);
    expect(sampleValue(fams, 'lunkit_iscsi_logins_total', { result: 'ok' })).toBe(1);
    expect(sampleValue(fams, 'lunkit_iscsi_rejects_total', { reason: 'PROTOCOL_ERROR' })).toBe(1);
    // TCP bytes: everything the client sent was answered, nothing is in flight.
    expect(sampleValue(fams, 'lunkit_iscsi_received_bytes_total')).toBe(c.sock.bytesWritten);
    expect(sampleValue(fams, 'lunkit_iscsi_sent_bytes_total')).toBe(c.sock.bytesRead);

    const snap = collectStatsSnapshot({ core: t.core, iscsi: t.server, events: log });
    const sess = snap.iscsi!.sessions[0];
    expect(sess).toMatchObject({ initiatorName: 'iqn.2026-01.org.example:metrics-client', type: 'normal', rejects: { PROTOCOL_ERROR: 1 } });
    expect(sess.connections[0].bytesIn).toBe(c.sock.bytesWritten);
    expect(snap.iscsi!.targets[0].tpgs[0].luns).toEqual([{ lun: 0, device: 'ram0' }]);
    expect(snap.events.map((e) => e.channel)).toEqual(expect.arrayContaining(['lunkit:core:nexus-open', 'lunkit:iscsi:login', 'lunkit:iscsi:reject']));
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);

    // After the connection is gone the totals keep what it moved.
    const sent = c.sock.bytesWritten;
    c.close();
    for (let i = 0; i < 100 && t.server.sessions().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const after = parsePrometheus((await fetchText(metrics.url)).body);
    expect(sampleValue(after, 'lunkit_iscsi_received_bytes_total')).toBe(sent);
    expect(sampleValue(after, 'lunkit_iscsi_sessions')).toBe(0);
    expect(collectStatsSnapshot({ core: t.core, iscsi: t.server, events: log }).events.some((e) => e.channel === 'lunkit:iscsi:session-closed')).toBe(true);

    expect((await fetchText(metrics.url.replace('/metrics', '/other'))).status).toBe(404);
  });
});
