// The dashboard's view model: a pure reducer over events (STYLE.md §20).
// Snapshots arrive from the daemon (stats.snapshot); the reducer turns
// counter deltas into rates and per-LUN one-minute histories, and keys,
// ticks and resizes into focus, selection, drill-down and filter state.
// Nothing here touches a terminal; view.ts draws a state, render.ts shows it.

import { diffBuckets, quantileUs, type CommandCounters } from '../core/stats.js';
import type { LoggedEvent, StatsSnapshot } from '../daemon/metrics.js';
import { formatBytes } from './format.js';

export type PaneId = 'tree' | 'sessions' | 'luns' | 'events';
export const PANES: readonly PaneId[] = ['tree', 'sessions', 'luns', 'events'];

/** How far back the sparklines reach. */
export const HISTORY_MS = 60_000;
/** Events kept for the log pane. */
export const MAX_EVENTS = 500;

/** Rates over the last snapshot interval. */
export interface Rates {
  readBps: number;
  writeBps: number;
  iops: number;
  /** Latency of the commands of the interval (0 when none). */
  meanUs: number;
  p99Us: number;
}

export interface History {
  /** Sample times (ms), oldest first, within HISTORY_MS of the newest. */
  t: number[];
  readBps: number[];
  writeBps: number[];
  iops: number[];
}

export type Detail = { kind: 'session'; key: string } | { kind: 'lun'; key: string } | null;

export interface DashboardState {
  width: number;
  height: number;
  /** Wall clock of the last tick or snapshot (ms). */
  now: number;
  snapshot: StatsSnapshot | null;
  /** Rates per LU (key: device id) and per nexus (key: nexus id). */
  lunRates: Record<string, Rates>;
  nexusRates: Record<string, Rates>;
  lunHistory: Record<string, History>;
  events: LoggedEvent[];
  focus: PaneId;
  /** Selected row per pane (index into that pane's filtered rows). */
  cursor: Record<PaneId, number>;
  /** The events pane follows new events while its cursor is on the last one. */
  followEvents: boolean;
  detail: Detail;
  filter: string;
  editingFilter: boolean;
  /** Last problem talking to the daemon (shown in the header), null when fine. */
  status: string | null;
  /** Use ASCII only (no UTF-8 terminal). */
  ascii: boolean;
  /** A line above the footer (e.g. the demo's "connect an initiator" command); null for none. */
  hint: string | null;
  quit: boolean;
}

export type DashboardEvent =
  | { type: 'snapshot'; snapshot: StatsSnapshot }
  | { type: 'tick'; now: number }
  /** Normalised key names: tab, shift-tab, up, down, left, right, pageup, pagedown, home, end, enter, escape, backspace, or the character. */
  | { type: 'key'; key: string }
  | { type: 'resize'; width: number; height: number }
  | { type: 'filter'; text: string }
  | { type: 'error'; message: string };

export function initialState(opts: { width?: number; height?: number; now?: number; ascii?: boolean; hint?: string } = {}): DashboardState {
  return {
    width: opts.width ?? 80,
    height: opts.height ?? 24,
    now: opts.now ?? 0,
    snapshot: null,
    lunRates: {},
    nexusRates: {},
    lunHistory: {},
    events: [],
    focus: 'sessions',
    cursor: { tree: 0, sessions: 0, luns: 0, events: 0 },
    followEvents: true,
    detail: null,
    filter: '',
    editingFilter: false,
    status: null,
    ascii: opts.ascii ?? false,
    hint: opts.hint ?? null,
    quit: false,
  };
}

// ---------------------------------------------------------------------------
// Rows (shared by the reducer, to clamp cursors, and by the view)

export interface SessionRow {
  /** Stable key: "n<nexus id>" or "i<tsih>" for a discovery session. */
  key: string;
  fabric: string;
  initiator: string;
  target: string;
  address: string;
  isid: string;
  connections: number;
  digests: string;
  erl: string;
  since: number;
  inFlight: number;
  nexusId: number | null;
  tsih: number | null;
}

export interface LunRow {
  key: string;
  id: number;
  name: string;
  backstore: string;
  sizeBytes: number;
  /** "iqn/lun" of each mapping. */
  mappings: string[];
  inFlight: number;
  errors: number;
}

export interface TreeLine {
  depth: number;
  text: string;
  /** Selecting it with enter opens this LUN (device key). */
  lunKey?: string;
}

function matches(filter: string, ...fields: Array<string | number | null | undefined>): boolean {
  if (!filter) return true;
  const f = filter.toLowerCase();
  return fields.some((x) => x !== null && x !== undefined && String(x).toLowerCase().includes(f));
}

export function sessionRows(s: DashboardState): SessionRow[] {
  const snap = s.snapshot;
  if (!snap) return [];
  const rows: SessionRow[] = [];
  const byNexus = new Map<number, (typeof snap.core.nexuses)[number]>();
  for (const n of snap.core.nexuses) byNexus.set(n.id, n);
  const seen = new Set<number>();
  for (const is of snap.iscsi?.sessions ?? []) {
    const n = is.nexusId !== null ? byNexus.get(is.nexusId) : undefined;
    if (n) seen.add(n.id);
    rows.push({
      key: n ? `n${n.id}` : `i${is.tsih}`,
      fabric: is.type === 'discovery' ? 'iscsi-disc' : 'iscsi',
      initiator: is.initiatorName,
      target: is.targetName,
      address: is.connections[0]?.remote ?? '-',
      isid: is.isid,
      connections: is.connections.length,
      digests: `${is.headerDigest ? 'H' : '-'}${is.dataDigest ? 'D' : '-'}`,
      erl: String(is.errorRecoveryLevel),
      since: is.loginTime,
      inFlight: n?.inFlight ?? is.cmdsInFlight,
      nexusId: n?.id ?? null,
      tsih: is.tsih,
    });
  }
  for (const n of snap.core.nexuses) {
    if (seen.has(n.id)) continue;
    rows.push({
      key: `n${n.id}`,
      fabric: n.fabric,
      initiator: n.initiatorName,
      target: n.targetName,
      address: n.initiatorPortId,
      isid: '-',
      connections: 1,
      digests: '--',
      erl: '-',
      since: n.openedAt,
      inFlight: n.inFlight,
      nexusId: n.id,
      tsih: null,
    });
  }
  return rows.filter((r) => matches(s.filter, r.initiator, r.target, r.address, r.isid, r.fabric));
}

export function lunRows(s: DashboardState): LunRow[] {
  const snap = s.snapshot;
  if (!snap) return [];
  const maps = new Map<string, string[]>();
  for (const t of snap.iscsi?.targets ?? []) {
    for (const tpg of t.tpgs) for (const l of tpg.luns) maps.set(l.device, [...(maps.get(l.device) ?? []), `${t.iqn}/${l.lun}`]);
  }
  // The same LU as an NBD export or a FUSE file: shown in its detail, found by the filter.
  for (const e of snap.exports?.nbd ?? []) maps.set(e.backstore, [...(maps.get(e.backstore) ?? []), `nbd:${e.name}`]);
  for (const m of snap.exports?.fuse ?? []) for (const f of m.files) maps.set(f.backstore, [...(maps.get(f.backstore) ?? []), `fuse:${f.path}`]);
  return snap.core.luns
    .map((l) => ({
      key: String(l.id),
      id: l.id,
      name: l.name,
      backstore: l.backstore,
      sizeBytes: l.sizeBytes,
      mappings: maps.get(l.name) ?? [],
      inFlight: l.inFlight,
      errors: l.errors,
    }))
    .filter((r) => matches(s.filter, r.name, r.backstore, ...r.mappings));
}

export function treeLines(s: DashboardState): TreeLine[] {
  const snap = s.snapshot;
  if (!snap) return [];
  const byName = new Map(snap.core.luns.map((l) => [l.name, l]));
  const used = new Set<string>();
  const out: TreeLine[] = [];
  for (const t of snap.iscsi?.targets ?? []) {
    out.push({ depth: 0, text: t.alias ? `${t.iqn} (${t.alias})` : t.iqn });
    for (const tpg of t.tpgs) {
      const portals = tpg.portals.map((p) => (p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`)).join(' ');
      const mode = tpg.generateNodeAcls ? 'demo' : `${tpg.acls.length} acl`;
      out.push({ depth: 1, text: `tpg${tpg.tag}${tpg.enabled ? '' : ' [disabled]'} ${portals} ${mode}${tpg.authentication ? ' chap' : ''}` });
      for (const l of tpg.luns) {
        const dev = byName.get(l.device);
        used.add(l.device);
        const line: TreeLine = {
          depth: 2,
          text: `lun${l.lun} ${l.device}${dev ? ` ${dev.backstore} ${formatBytes(dev.sizeBytes)}` : ''}`,
        };
        if (dev) line.lunKey = String(dev.id);
        out.push(line);
      }
    }
  }
  out.push(...exportTreeLines(snap, byName, used));
  const loose = snap.core.luns.filter((l) => !used.has(l.name));
  if (loose.length > 0) {
    out.push({ depth: 0, text: 'other LUs' });
    for (const l of loose) out.push({ depth: 1, text: `${l.name} ${l.backstore} ${formatBytes(l.sizeBytes)}`, lunKey: String(l.id) });
  }
  out.push(...bootlabTreeLines(snap));
  if (!s.filter) return out;
  return out.filter((l) => matches(s.filter, l.text));
}

/**
 * NBD exports (each with its connections) and FUSE mounts (each with its
 * files), after the iSCSI targets: "nbd export NAME -> LU type size [ro]  N
 * conn", then "remote inflight N"; "fuse MOUNTPOINT", then "NAME -> LU ...".
 * Enter on any of these lines opens the LU. LUs named here are added to
 * `used`, so they do not show again under "other LUs".
 */
export function exportTreeLines(snap: StatsSnapshot, byName: ReadonlyMap<string, StatsSnapshot['core']['luns'][number]>, used: Set<string>): TreeLine[] {
  const out: TreeLine[] = [];
  const lu = (backstore: string, readOnly: boolean): { text: string; lunKey?: string } => {
    used.add(backstore);
    const dev = byName.get(backstore);
    const text = `-> ${backstore}${dev ? ` ${dev.backstore} ${formatBytes(dev.sizeBytes)}` : ''}${readOnly ? ' [ro]' : ''}`;
    return dev ? { text, lunKey: String(dev.id) } : { text };
  };
  for (const e of snap.exports?.nbd ?? []) {
    const target = lu(e.backstore, e.readOnly);
    const n = e.connections.length;
    out.push({ depth: 0, text: `nbd export ${e.name} ${target.text}  ${n} conn`, ...(target.lunKey ? { lunKey: target.lunKey } : {}) });
    for (const c of e.connections) {
      out.push({ depth: 1, text: `${c.remote}${c.tls ? ' tls' : ''} inflight ${c.inFlight}`, ...(target.lunKey ? { lunKey: target.lunKey } : {}) });
    }
  }
  for (const m of snap.exports?.fuse ?? []) {
    out.push({ depth: 0, text: `fuse ${m.mountpoint}${m.mounted ? '' : ' [not mounted]'}` });
    for (const f of m.files) {
      const target = lu(f.backstore, f.readOnly);
      const name = f.path.startsWith(`${m.mountpoint}/`) ? f.path.slice(m.mountpoint.length + 1) : f.path;
      out.push({ depth: 1, text: `${name} ${target.text}`, ...(target.lunKey ? { lunKey: target.lunKey } : {}) });
    }
  }
  return out;
}

/**
 * The boot-lab branch of the tree (issue 15): a line per lab, then a line per
 * client, "name MAC logged-in|off delta"; enter on a client opens its LU.
 */
export function bootlabTreeLines(snap: StatsSnapshot): TreeLine[] {
  const out: TreeLine[] = [];
  for (const lab of snap.bootlabs ?? []) {
    const on = lab.clients.filter((c) => c.loggedIn).length;
    out.push({ depth: 0, text: `boot lab ${lab.name}: ${on}/${lab.clients.length} logged in` });
    for (const c of lab.clients) {
      const line: TreeLine = { depth: 1, text: `${c.name} ${c.mac} ${c.loggedIn ? 'logged-in' : 'off'} ${c.deltaBytes === null ? '-' : formatBytes(c.deltaBytes)}` };
      if (c.io) line.lunKey = String(c.io.luId);
      out.push(line);
    }
  }
  return out;
}

/** Lab clients logged in and registered, over every lab (null without labs). */
export function bootlabCounts(snap: StatsSnapshot | null): { on: number; total: number } | null {
  const labs = snap?.bootlabs ?? [];
  if (labs.length === 0) return null;
  let on = 0;
  let total = 0;
  for (const l of labs) {
    total += l.clients.length;
    for (const c of l.clients) if (c.loggedIn) on++;
  }
  return { on, total };
}

export function filteredEvents(s: DashboardState): LoggedEvent[] {
  return s.filter ? s.events.filter((e) => matches(s.filter, e.text, e.channel)) : s.events;
}

export function paneLength(s: DashboardState, pane: PaneId): number {
  switch (pane) {
    case 'tree':
      return treeLines(s).length;
    case 'sessions':
      return sessionRows(s).length;
    case 'luns':
      return lunRows(s).length;
    case 'events':
      return filteredEvents(s).length;
  }
}

// ---------------------------------------------------------------------------
// Reducer

function ratesBetween(now: CommandCounters, before: CommandCounters | undefined, dtSec: number): Rates {
  if (!before || dtSec <= 0) return { readBps: 0, writeBps: 0, iops: 0, meanUs: 0, p99Us: 0 };
  const dCount = Math.max(0, now.latency.count - before.latency.count);
  return {
    readBps: Math.max(0, now.readBytes - before.readBytes) / dtSec,
    writeBps: Math.max(0, now.writtenBytes - before.writtenBytes) / dtSec,
    iops: Math.max(0, now.commands - before.commands) / dtSec,
    meanUs: dCount > 0 ? Math.max(0, now.latency.sumUs - before.latency.sumUs) / dCount : 0,
    p99Us: dCount > 0 ? quantileUs(diffBuckets(now.latency.buckets, before.latency.buckets), 0.99) : 0,
  };
}

function pushHistory(h: History | undefined, t: number, r: Rates): History {
  const base = h ?? { t: [], readBps: [], writeBps: [], iops: [] };
  let from = 0;
  while (from < base.t.length && base.t[from] <= t - HISTORY_MS) from++;
  return {
    t: [...base.t.slice(from), t],
    readBps: [...base.readBps.slice(from), r.readBps],
    writeBps: [...base.writeBps.slice(from), r.writeBps],
    iops: [...base.iops.slice(from), r.iops],
  };
}

function onSnapshot(s: DashboardState, snap: StatsSnapshot): DashboardState {
  const prev = s.snapshot;
  const dt = prev ? (snap.time - prev.time) / 1000 : 0;
  const lunRates: Record<string, Rates> = {};
  const lunHistory: Record<string, History> = {};
  const prevLuns = new Map((prev?.core.luns ?? []).map((l) => [l.id, l]));
  for (const l of snap.core.luns) {
    const r = ratesBetween(l, prevLuns.get(l.id), dt);
    lunRates[l.id] = r;
    lunHistory[l.id] = prev && dt > 0 ? pushHistory(s.lunHistory[l.id], snap.time, r) : (s.lunHistory[l.id] ?? { t: [], readBps: [], writeBps: [], iops: [] });
  }
  const nexusRates: Record<string, Rates> = {};
  const prevNexus = new Map((prev?.core.nexuses ?? []).map((n) => [n.id, n]));
  for (const n of snap.core.nexuses) nexusRates[n.id] = ratesBetween(n, prevNexus.get(n.id), dt);

  const lastSeq = s.events.length > 0 ? s.events[s.events.length - 1].seq : 0;
  const fresh = snap.events.filter((e) => e.seq > lastSeq);
  // A restarted daemon numbers from 1 again: then take its log as it is.
  const restarted = snap.events.length > 0 && snap.events[snap.events.length - 1].seq < lastSeq;
  let events = restarted ? snap.events : fresh.length > 0 ? [...s.events, ...fresh] : s.events;
  if (events.length > MAX_EVENTS) events = events.slice(events.length - MAX_EVENTS);

  const next: DashboardState = { ...s, snapshot: snap, now: Math.max(s.now, snap.time), lunRates, nexusRates, lunHistory, events, status: null };
  return clampCursors(next);
}

function clampCursors(s: DashboardState): DashboardState {
  const cursor = { ...s.cursor };
  let changed = false;
  for (const p of PANES) {
    const len = paneLength(s, p);
    let c = Math.min(cursor[p], Math.max(0, len - 1));
    if (p === 'events' && s.followEvents) c = Math.max(0, len - 1);
    if (c !== cursor[p]) {
      cursor[p] = c;
      changed = true;
    }
  }
  return changed ? { ...s, cursor } : s;
}

function move(s: DashboardState, delta: number | 'home' | 'end'): DashboardState {
  const p = s.focus;
  const len = paneLength(s, p);
  if (len === 0) return s;
  const cur = s.cursor[p];
  const to = delta === 'home' ? 0 : delta === 'end' ? len - 1 : Math.max(0, Math.min(len - 1, cur + delta));
  const follow = p === 'events' ? to === len - 1 : s.followEvents;
  if (to === cur && follow === s.followEvents) return s;
  return { ...s, cursor: { ...s.cursor, [p]: to }, followEvents: follow };
}

function enter(s: DashboardState): DashboardState {
  if (s.focus === 'sessions') {
    const row = sessionRows(s)[s.cursor.sessions];
    return row ? { ...s, detail: { kind: 'session', key: row.key } } : s;
  }
  if (s.focus === 'luns') {
    const row = lunRows(s)[s.cursor.luns];
    return row ? { ...s, detail: { kind: 'lun', key: row.key } } : s;
  }
  if (s.focus === 'tree') {
    const line = treeLines(s)[s.cursor.tree];
    return line?.lunKey ? { ...s, detail: { kind: 'lun', key: line.lunKey } } : s;
  }
  return s;
}

/** Rows a page key moves: roughly a pane's height. */
const PAGE = 5;

function onKey(s: DashboardState, key: string): DashboardState {
  if (s.editingFilter) {
    if (key === 'enter') return { ...s, editingFilter: false };
    if (key === 'escape') return clampCursors({ ...s, editingFilter: false, filter: '' });
    if (key === 'backspace') return clampCursors({ ...s, filter: [...s.filter].slice(0, -1).join('') });
    if ([...key].length === 1 && key >= ' ') return clampCursors({ ...s, filter: s.filter + key });
    return s;
  }
  if (key === 'q' || key === 'C-c') return { ...s, quit: true };
  if (s.detail) {
    if (key === 'escape' || key === 'enter' || key === 'backspace' || key === 'left') return { ...s, detail: null };
    return s;
  }
  switch (key) {
    case 'tab':
    case 'right':
      return { ...s, focus: PANES[(PANES.indexOf(s.focus) + 1) % PANES.length] };
    case 'shift-tab':
    case 'left':
      return { ...s, focus: PANES[(PANES.indexOf(s.focus) + PANES.length - 1) % PANES.length] };
    case 'up':
    case 'k':
      return move(s, -1);
    case 'down':
    case 'j':
      return move(s, 1);
    case 'pageup':
      return move(s, -PAGE);
    case 'pagedown':
      return move(s, PAGE);
    case 'home':
      return move(s, 'home');
    case 'end':
      return move(s, 'end');
    case 'enter':
      return enter(s);
    case '/':
      return { ...s, editingFilter: true, filter: '' };
    case 'escape':
      return s.filter ? clampCursors({ ...s, filter: '' }) : s;
    default:
      return s;
  }
}

/**
 * The whole view model: returns `state` itself when nothing visible changed,
 * so the renderer can skip drawing (idle CPU near zero).
 */
export function reduce(state: DashboardState, event: DashboardEvent): DashboardState {
  switch (event.type) {
    case 'snapshot':
      return onSnapshot(state, event.snapshot);
    case 'tick':
      // The clock only moves forward (a snapshot may already have set a later time).
      return event.now <= state.now ? state : { ...state, now: event.now };
    case 'key':
      return onKey(state, event.key);
    case 'resize':
      if (event.width === state.width && event.height === state.height) return state;
      return { ...state, width: Math.max(1, event.width), height: Math.max(1, event.height) };
    case 'filter':
      return event.text === state.filter ? state : clampCursors({ ...state, filter: event.text });
    case 'error':
      return event.message === state.status ? state : { ...state, status: event.message };
  }
}
