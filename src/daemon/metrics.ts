// Statistics as the daemon serves them (issue 6, docs/stats.md):
//   - StatsSnapshot: what `stats.snapshot` returns and `stats.subscribe`
//     streams: the core's per-LU and per-nexus counters, the iSCSI fabric's
//     object tree, sessions and totals, boot-lab clients (bootlab-stats.ts),
//     and recent events;
//   - StatsEventLog: a ring of recent lunkit:* diagnostics-channel events;
//   - renderPrometheus(): the snapshot in Prometheus text format 0.0.4;
//   - startMetricsServer(): the opt-in HTTP listener (`--metrics host:port`).

import diagnostics_channel from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  CoreChannel,
  bucketUpperUs,
  isStatsEvent,
  type CoreStatsSnapshot,
  type LatencySnapshot,
  type StatsEvent,
} from '../core/stats.js';
import { IscsiChannel, type IscsiStatsSnapshot } from '../fabrics/iscsi/stats.js';
import type { BootlabStats } from './bootlab-stats.js';
import type { NbdServerStats } from '../fabrics/nbd/index.js';
import type { ExportsStats } from './exports-stats.js';
import { LunkitError } from '../protocols/errors.js';

/** An event of the log, numbered so pollers can ask for the ones they have not seen. */
export interface LoggedEvent extends StatsEvent {
  seq: number;
}

/** The whole statistics snapshot (docs/stats.md "The snapshot"). */
export interface StatsSnapshot {
  version: 1;
  /** When it was taken, ms since the epoch. */
  time: number;
  /** Per-LU (device) and per-nexus counters. */
  core: CoreStatsSnapshot;
  /** iSCSI object tree, sessions with connections, totals; null without an iSCSI fabric. */
  iscsi: IscsiStatsSnapshot | null;
  /**
   * NBD server totals (connections, what they hold, closes on limits); null
   * without an NBD server, absent from older daemons.
   */
  nbd?: NbdServerStats | null;
  /**
   * Boot labs and their clients (issue 15); [] without labs. Absent from
   * daemons older than boot labs, so readers treat a missing part as [].
   */
  bootlabs?: BootlabStats[];
  /**
   * NBD exports with their connections and FUSE files (exports-stats.ts), for
   * the dashboard's object tree. Absent from older daemons and from runtimes
   * without a configuration (readers treat a missing part as none).
   */
  exports?: ExportsStats;
  /** Recent events, oldest first (all of the log, or those after `eventsSince`). */
  events: LoggedEvent[];
}

/** Where the daemon's numbers come from (ScsiCore and IscsiTargetServer satisfy these). */
export interface StatsSources {
  core: { statsSnapshot(): CoreStatsSnapshot };
  iscsi?: { statsSnapshot(): IscsiStatsSnapshot } | undefined;
  nbd?: { stats(): NbdServerStats } | undefined;
  /** Boot-lab clients, from the core and iSCSI parts of the same snapshot (BootlabStatsSource). */
  bootlabs?: { statsSnapshot(from: { core: CoreStatsSnapshot; iscsi: IscsiStatsSnapshot | null }): BootlabStats[] } | undefined;
  exports?: (() => ExportsStats) | undefined;
  events?: StatsEventLog | undefined;
}

export function collectStatsSnapshot(src: StatsSources, opts: { eventsSince?: number } = {}): StatsSnapshot {
  const core = src.core.statsSnapshot();
  const iscsi = src.iscsi ? src.iscsi.statsSnapshot() : null;
  return {
    version: 1,
    time: Date.now(),
    core,
    iscsi,
    nbd: src.nbd ? src.nbd.stats() : null,
    bootlabs: src.bootlabs ? src.bootlabs.statsSnapshot({ core, iscsi }) : [],
    ...(src.exports ? { exports: src.exports() } : {}),
    events: src.events ? src.events.since(opts.eventsSince ?? 0) : [],
  };
}

/** Every channel the core and the iSCSI fabric publish on. */
export const STATS_CHANNELS: readonly string[] = [...Object.values(CoreChannel), ...Object.values(IscsiChannel)];

/**
 * Keeps the last `capacity` events of the lunkit:* channels. Subscribing is
 * what makes the publishers build their messages, so the daemon creates one
 * only when statistics are wanted (it is cheap: events are rare).
 */
export class StatsEventLog {
  private readonly ring: LoggedEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(e: LoggedEvent) => void>();
  private readonly handler = (msg: unknown): void => this.push(msg);

  constructor(
    private readonly capacity = 200,
    private readonly channels: readonly string[] = STATS_CHANNELS,
  ) {
    for (const name of channels) diagnostics_channel.subscribe(name, this.handler);
  }

  /** Events with seq > `after`, oldest first. */
  since(after: number): LoggedEvent[] {
    return this.ring.filter((e) => e.seq > after);
  }

  /** The seq of the newest event (0: none yet). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Called for every new event (stats.subscribe pushes them); returns an unsubscribe. */
  onEvent(fn: (e: LoggedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    for (const name of this.channels) diagnostics_channel.unsubscribe(name, this.handler);
    this.listeners.clear();
  }

  private push(msg: unknown): void {
    if (!isStatsEvent(msg)) return;
    const e: LoggedEvent = { ...msg, seq: ++this.seq };
    this.ring.push(e);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const fn of this.listeners) fn(e);
  }
}

// ---------------------------------------------------------------------------
// Prometheus text format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/)

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label value escaping: backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escaping: backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k])}"`).join(',')}}`;
}

/** Collects samples per family so each family's lines stay together under one HELP/TYPE. */
class Exposition {
  private readonly families = new Map<string, { help: string; type: string; lines: string[] }>();

  family(name: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', help: string): void {
    if (!this.families.has(name)) this.families.set(name, { help, type, lines: [] });
  }

  sample(family: string, labels: Labels, value: number, suffix = ''): void {
    const f = this.families.get(family);
    if (!f) throw new LunkitError('ERR_INTERNAL', `metric family ${family} not declared`);
    f.lines.push(`${family}${suffix}${labelText(labels)} ${formatValue(value)}`);
  }

  text(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.lines);
    }
    return out.join('\n') + '\n';
  }
}

/** The NBD server's totals and budget usage (docs/security.md). */
function nbdSamples(x: Exposition, n: NbdServerStats): void {
  x.family('lunkit_nbd_connections', 'gauge', 'Open NBD connections (including those still haggling).');
  x.sample('lunkit_nbd_connections', {}, n.connections);
  x.family('lunkit_nbd_handshaking_connections', 'gauge', 'NBD connections still in option haggling.');
  x.sample('lunkit_nbd_handshaking_connections', {}, n.handshaking);
  x.family('lunkit_nbd_requests_in_flight', 'gauge', 'NBD requests whose reply has not yet been handed to the kernel.');
  x.sample('lunkit_nbd_requests_in_flight', {}, n.inFlight);
  x.family('lunkit_nbd_in_flight_bytes', 'gauge', 'Payload bytes NBD connections hold (limits.nbd.inFlightBytes per connection).');
  x.sample('lunkit_nbd_in_flight_bytes', {}, n.inFlightBytes);
  x.family('lunkit_nbd_queued_bytes', 'gauge', 'NBD output queued in the daemon, not yet taken by the kernel.');
  x.sample('lunkit_nbd_queued_bytes', {}, n.queuedBytes);
  x.family('lunkit_nbd_paused_connections', 'gauge', 'NBD connections not reading right now (backpressure or budget).');
  x.sample('lunkit_nbd_paused_connections', {}, n.paused);
  x.family('lunkit_nbd_read_pauses_total', 'counter', 'Times an NBD connection stopped reading, by reason (backpressure: queued output; budget: requests or bytes held).');
  x.sample('lunkit_nbd_read_pauses_total', { reason: 'backpressure' }, n.readPausesBackpressure);
  x.sample('lunkit_nbd_read_pauses_total', { reason: 'budget' }, n.readPausesBudget);
  x.family('lunkit_nbd_limit_closes_total', 'counter', 'NBD connections closed on a limit, by limit.');
  x.sample('lunkit_nbd_limit_closes_total', { limit: 'handshakeTimeout' }, n.handshakeTimeouts);
  x.sample('lunkit_nbd_limit_closes_total', { limit: 'idleTimeout' }, n.idleTimeouts);
  x.sample('lunkit_nbd_limit_closes_total', { limit: 'maxOptions' }, n.tooManyOptions);
}

/** Upper bounds (seconds) of the latency histogram's buckets. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Cumulative counts at each bound, from the core's log-linear buckets. A core
 * bucket counts under `le` when its whole range lies below the bound (bucket
 * edges are within 6.25 % of the value, so at most that much rounding).
 */
function cumulativeBuckets(lat: LatencySnapshot): number[] {
  return LATENCY_BUCKETS_SECONDS.map((le) => {
    const limitUs = le * 1e6;
    let n = 0;
    for (const [i, c] of lat.buckets) if (bucketUpperUs(i) <= limitUs) n += c;
    return n;
  });
}

/** Where each device is mapped, from the iSCSI tree: device name -> first (target, LUN). */
export function lunPlacement(snap: StatsSnapshot): Map<string, { target: string; tpg: number; lun: number }[]> {
  const out = new Map<string, { target: string; tpg: number; lun: number }[]>();
  for (const t of snap.iscsi?.targets ?? []) {
    for (const tpg of t.tpgs) {
      for (const l of tpg.luns) {
        const list = out.get(l.device) ?? [];
        list.push({ target: t.iqn, tpg: tpg.tag, lun: l.lun });
        out.set(l.device, list);
      }
    }
  }
  return out;
}

/** The snapshot as Prometheus text format 0.0.4, with HELP and TYPE lines. */
export function renderPrometheus(snap: StatsSnapshot): string {
  const x = new Exposition();
  const placement = lunPlacement(snap);

  x.family('lunkit_lun_commands_total', 'counter', 'SCSI commands completed by the logical unit.');
  x.family('lunkit_lun_reads_total', 'counter', 'Data-in (read) commands completed by the logical unit.');
  x.family('lunkit_lun_writes_total', 'counter', 'Data-out (write) commands completed by the logical unit.');
  x.family('lunkit_lun_read_bytes_total', 'counter', 'Bytes returned to initiators by the logical unit.');
  x.family('lunkit_lun_write_bytes_total', 'counter', 'Bytes received from initiators by the logical unit.');
  x.family('lunkit_lun_errors_total', 'counter', 'Commands that ended with a status other than GOOD or CONDITION MET.');
  x.family('lunkit_lun_aborted_total', 'counter', 'Commands aborted by task management.');
  x.family('lunkit_lun_check_conditions_total', 'counter', 'CHECK CONDITION responses by sense key.');
  x.family('lunkit_lun_task_management_total', 'counter', 'Task management functions received, by function.');
  x.family('lunkit_lun_commands_in_flight', 'gauge', 'Commands the logical unit is working on now.');
  x.family('lunkit_lun_size_bytes', 'gauge', 'Size of the logical unit in bytes.');
  x.family('lunkit_lun_latency_seconds', 'histogram', 'Time from a command reaching the SCSI core to its response.');
  for (const l of snap.core.luns) {
    // One series per device, so sum() is right when a device is mapped twice;
    // target and lun name its first mapping.
    const where = placement.get(l.name)?.[0];
    const labels: Labels = { target: where?.target ?? '', lun: where ? String(where.lun) : '', backstore: l.name };
    x.sample('lunkit_lun_commands_total', labels, l.commands);
    x.sample('lunkit_lun_reads_total', labels, l.reads);
    x.sample('lunkit_lun_writes_total', labels, l.writes);
    x.sample('lunkit_lun_read_bytes_total', labels, l.readBytes);
    x.sample('lunkit_lun_write_bytes_total', labels, l.writtenBytes);
    x.sample('lunkit_lun_errors_total', labels, l.errors);
    x.sample('lunkit_lun_aborted_total', labels, l.aborted);
    for (const [key, n] of Object.entries(l.checkConditions)) x.sample('lunkit_lun_check_conditions_total', { ...labels, sense_key: key }, n);
    for (const [fn, n] of Object.entries(l.taskManagement)) x.sample('lunkit_lun_task_management_total', { ...labels, function: fn }, n ?? 0);
    x.sample('lunkit_lun_commands_in_flight', labels, l.inFlight);
    x.sample('lunkit_lun_size_bytes', { ...labels, type: l.backstore }, l.sizeBytes);
    const cum = cumulativeBuckets(l.latency);
    LATENCY_BUCKETS_SECONDS.forEach((le, i) => x.sample('lunkit_lun_latency_seconds', { ...labels, le: String(le) }, cum[i], '_bucket'));
    x.sample('lunkit_lun_latency_seconds', { ...labels, le: '+Inf' }, l.latency.count, '_bucket');
    x.sample('lunkit_lun_latency_seconds', labels, l.latency.sumUs / 1e6, '_sum');
    x.sample('lunkit_lun_latency_seconds', labels, l.latency.count, '_count');
  }

  x.family('lunkit_sessions', 'gauge', 'Open I_T nexuses (iSCSI sessions, NBD connections ...) by fabric and target.');
  const sessions = new Map<string, { fabric: string; target: string; n: number }>();
  for (const n of snap.core.nexuses) {
    const k = `${n.fabric}\0${n.targetName}`;
    const e = sessions.get(k) ?? { fabric: n.fabric, target: n.targetName, n: 0 };
    e.n++;
    sessions.set(k, e);
  }
  for (const e of sessions.values()) x.sample('lunkit_sessions', { fabric: e.fabric, target: e.target }, e.n);

  x.family('lunkit_session_commands_total', 'counter', 'SCSI commands completed for the session.');
  x.family('lunkit_session_read_bytes_total', 'counter', 'Bytes returned to the session.');
  x.family('lunkit_session_write_bytes_total', 'counter', 'Bytes received from the session.');
  x.family('lunkit_session_commands_in_flight', 'gauge', 'Commands of the session in the SCSI core now.');
  for (const n of snap.core.nexuses) {
    const labels: Labels = { fabric: n.fabric, target: n.targetName, initiator: n.initiatorName, initiator_port: n.initiatorPortId };
    x.sample('lunkit_session_commands_total', labels, n.commands);
    x.sample('lunkit_session_read_bytes_total', labels, n.readBytes);
    x.sample('lunkit_session_write_bytes_total', labels, n.writtenBytes);
    x.sample('lunkit_session_commands_in_flight', labels, n.inFlight);
  }

  const t = snap.iscsi?.totals;
  if (t) {
    x.family('lunkit_iscsi_sessions', 'gauge', 'Open iSCSI sessions (normal and discovery).');
    x.sample('lunkit_iscsi_sessions', {}, t.sessions);
    x.family('lunkit_iscsi_connections', 'gauge', 'Open iSCSI connections (including those still logging in).');
    x.sample('lunkit_iscsi_connections', {}, t.connections);
    x.family('lunkit_iscsi_logins_total', 'counter', 'iSCSI logins by result.');
    x.sample('lunkit_iscsi_logins_total', { result: 'ok' }, t.loginsOk);
    x.sample('lunkit_iscsi_logins_total', { result: 'failed' }, t.loginsFailed);
    x.family('lunkit_iscsi_logouts_total', 'counter', 'iSCSI Logout requests that closed a session or connection.');
    x.sample('lunkit_iscsi_logouts_total', {}, t.logouts);
    x.family('lunkit_iscsi_rejects_total', 'counter', 'Reject PDUs sent, by reason (RFC 7143 section 11.17.1).');
    for (const [reason, n] of Object.entries(t.rejects)) x.sample('lunkit_iscsi_rejects_total', { reason }, n);
    x.family('lunkit_iscsi_digest_errors_total', 'counter', 'CRC32C digest mismatches, by kind (header or data).');
    x.sample('lunkit_iscsi_digest_errors_total', { kind: 'header' }, t.headerDigestErrors);
    x.sample('lunkit_iscsi_digest_errors_total', { kind: 'data' }, t.dataDigestErrors);
    x.family('lunkit_iscsi_received_bytes_total', 'counter', 'Bytes received on iSCSI connections.');
    x.sample('lunkit_iscsi_received_bytes_total', {}, t.bytesIn);
    x.family('lunkit_iscsi_sent_bytes_total', 'counter', 'Bytes sent on iSCSI connections.');
    x.sample('lunkit_iscsi_sent_bytes_total', {}, t.bytesOut);
    x.family('lunkit_iscsi_received_pdus_total', 'counter', 'PDUs received on iSCSI connections.');
    x.sample('lunkit_iscsi_received_pdus_total', {}, t.pdusIn);
    x.family('lunkit_iscsi_sent_pdus_total', 'counter', 'PDUs sent on iSCSI connections.');
    x.sample('lunkit_iscsi_sent_pdus_total', {}, t.pdusOut);
    // Budget usage (docs/security.md); `?? 0`: a snapshot from an older daemon has none.
    x.family('lunkit_iscsi_write_bytes_held', 'gauge', 'Write data bytes iSCSI sessions hold now (limits.iscsi.totalWriteBytes).');
    x.sample('lunkit_iscsi_write_bytes_held', {}, t.writeBytesHeld ?? 0);
    x.family('lunkit_iscsi_immediate_commands', 'gauge', 'Immediate SCSI commands in flight.');
    x.sample('lunkit_iscsi_immediate_commands', {}, t.immediateInFlight ?? 0);
    x.family('lunkit_iscsi_retained_bytes', 'gauge', 'ERL >= 1: status and read data kept until ExpStatSN acknowledges it.');
    x.sample('lunkit_iscsi_retained_bytes', {}, t.retainedBytes ?? 0);
    x.family('lunkit_iscsi_read_pauses_total', 'counter', 'Times a connection stopped reading, by reason (backpressure: queued output; budget: write data).');
    x.sample('lunkit_iscsi_read_pauses_total', { reason: 'backpressure' }, t.readPausesBackpressure ?? 0);
    x.sample('lunkit_iscsi_read_pauses_total', { reason: 'budget' }, t.readPausesBudget ?? 0);
    x.family('lunkit_iscsi_retention_drops_total', 'counter', 'Connections dropped for unacknowledged status over limits.iscsi.retainedBytesPerConnection.');
    x.sample('lunkit_iscsi_retention_drops_total', {}, t.retentionDrops ?? 0);
  }
  if (snap.nbd) nbdSamples(x, snap.nbd);
  if (snap.bootlabs && snap.bootlabs.length > 0) bootlabSamples(x, snap.bootlabs);
  return x.text();
}

/**
 * Boot-lab families (docs/stats.md "Boot labs"). A client's I/O is not
 * repeated here: lunkit_lun_* has it under backstore="bootlab.<lab>.<client>",
 * and lunkit_bootlab_client_info joins the two, e.g.
 * `rate(lunkit_lun_write_bytes_total[1m]) * on(backstore) group_left(lab, client, mac) lunkit_bootlab_client_info`.
 */
function bootlabSamples(x: Exposition, labs: readonly BootlabStats[]): void {
  x.family('lunkit_bootlab_clients', 'gauge', 'Clients registered in the boot lab.');
  x.family('lunkit_bootlab_clients_logged_in', 'gauge', 'Clients of the boot lab with at least one iSCSI session.');
  x.family('lunkit_bootlab_client_info', 'gauge', 'A boot-lab client: its LU (backstore label, as in lunkit_lun_*), initiator name and LUN; always 1.');
  x.family('lunkit_bootlab_client_logged_in', 'gauge', '1 while the client has an iSCSI session on the lab target, else 0.');
  x.family('lunkit_bootlab_client_delta_bytes', 'gauge', 'Size of the overlay file of the client (its changes plus qcow2 metadata), sampled every few seconds.');
  x.family('lunkit_bootlab_client_allocated_bytes', 'gauge', 'Disk space taken by the overlay file of the client, sampled every few seconds.');
  x.family('lunkit_bootlab_client_last_boot_timestamp_seconds', 'gauge', 'When the client last fetched its iPXE script, seconds since the epoch.');
  for (const lab of labs) {
    x.sample('lunkit_bootlab_clients', { lab: lab.name }, lab.clients.length);
    x.sample('lunkit_bootlab_clients_logged_in', { lab: lab.name }, lab.clients.filter((c) => c.loggedIn).length);
    for (const c of lab.clients) {
      const labels: Labels = { lab: lab.name, client: c.name, mac: c.mac };
      x.sample('lunkit_bootlab_client_info', { ...labels, backstore: c.backstore, initiator: c.initiator, lun: String(c.lun) }, 1);
      x.sample('lunkit_bootlab_client_logged_in', labels, c.loggedIn ? 1 : 0);
      if (c.deltaBytes !== null) x.sample('lunkit_bootlab_client_delta_bytes', labels, c.deltaBytes);
      if (c.allocatedBytes !== null) x.sample('lunkit_bootlab_client_allocated_bytes', labels, c.allocatedBytes);
      const booted = c.lastBoot ? Date.parse(c.lastBoot.time) : NaN;
      if (Number.isFinite(booted)) x.sample('lunkit_bootlab_client_last_boot_timestamp_seconds', labels, booted / 1000);
    }
  }
}

// ---------------------------------------------------------------------------
// HTTP listener

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port/metrics */
  readonly url: string;
  close(): Promise<void>;
}

/** Parses `--metrics` values: "127.0.0.1:9470", "[::1]:9470", ":9470" (127.0.0.1). */
export function parseMetricsAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new LunkitError('ERR_INVALID_PARAMS', `metrics address "${text}" is not host:port (e.g. 127.0.0.1:9470)`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Scrapers at once (Prometheus needs one; a few humans with curl more). */
export const METRICS_MAX_CONNECTIONS = 64;

/**
 * Serves GET /metrics (Prometheus text format) on host:port; port 0 picks a
 * free one. Every scrape takes a fresh snapshot; nothing runs between scrapes.
 * Scrapes that arrive while a snapshot is being taken share it, so pipelined
 * or concurrent requests cost one snapshot; Node's HTTP server stops reading a
 * socket whose answers are not being read.
 */
export function startMetricsServer(
  opts: { host: string; port: number },
  getSnapshot: () => StatsSnapshot | Promise<StatsSnapshot>,
): Promise<MetricsServer> {
  let taking: Promise<string> | undefined;
  const body = (): Promise<string> => {
    taking ??= Promise.resolve()
      .then(getSnapshot)
      .then(renderPrometheus)
      .finally(() => {
        taking = undefined;
      });
    return taking;
  };
  const server = createServer({ maxHeaderSize: 8192, headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('lunkit serves /metrics\n');
      return;
    }
    body()
      .then((text) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      })
      .catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`snapshot failed: ${err instanceof Error ? err.message : String(err)}\n`);
      });
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      const hostText = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        host: a.address,
        port: a.port,
        url: `http://${hostText}:${a.port}/metrics`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
