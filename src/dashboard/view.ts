// Draws a DashboardState as lines of text (pure). Each line is exactly the
// terminal's width in characters; highlights are blessed tags ({inverse},
// {bold}), and text from the daemon is escaped so it cannot inject tags.
// Panes have a title line instead of a border: no ACS line drawing, which
// tmux capture-pane would show as "lqqk" (docs/stats.md).
//
// Layout: header, then the panes, then an optional hint line and a footer
// with the keys. Below 120
// columns the panes stack (tree, LUNs, sessions, events); wider, the object
// tree takes a left column beside LUNs and sessions.

import { formatAge, formatBytes, formatClock, formatCount, formatLatency, formatRate, columns, fit, sparkline, type Column } from './format.js';
import {
  bootlabCounts,
  filteredEvents,
  lunRows,
  sessionRows,
  treeLines,
  type DashboardState,
  type PaneId,
  type Rates,
} from './model.js';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Pane rectangles for a terminal size; header is row 0, footer the last row. */
export function layout(width: number, height: number): Record<PaneId, Rect> {
  const bodyTop = 1;
  const body = Math.max(4, height - 2);
  if (width >= 120 && body >= 16) {
    const left = Math.floor(width * 0.35);
    const right = width - left - 1;
    const events = Math.max(4, Math.floor(body * 0.25));
    const top = body - events;
    const luns = Math.ceil(top / 2);
    return {
      tree: { x: 0, y: bodyTop, width: left, height: top },
      luns: { x: left + 1, y: bodyTop, width: right, height: luns },
      sessions: { x: left + 1, y: bodyTop + luns, width: right, height: top - luns },
      events: { x: 0, y: bodyTop + top, width, height: events },
    };
  }
  // Stacked: shares of the body height; every pane keeps its title and a row.
  const shares: Array<[PaneId, number]> = [
    ['tree', 0.22],
    ['luns', 0.28],
    ['sessions', 0.28],
    ['events', 0.22],
  ];
  const out = {} as Record<PaneId, Rect>;
  let y = bodyTop;
  let left = body;
  shares.forEach(([id, share], i) => {
    const h = i === shares.length - 1 ? left : Math.max(2, Math.round(body * share));
    out[id] = { x: 0, y, width, height: Math.max(0, Math.min(h, left)) };
    y += out[id].height;
    left -= out[id].height;
  });
  return out;
}

/** Blessed tag escaping (its own escape() does the same). */
export function escapeTags(text: string): string {
  return text.replace(/[{}]/g, (c) => (c === '{' ? '{open}' : '{close}'));
}

interface PaneText {
  title: string;
  header?: string;
  rows: string[];
}

function sumRates(rates: Iterable<Rates>): { read: number; write: number; iops: number } {
  let read = 0;
  let write = 0;
  let iops = 0;
  for (const r of rates) {
    read += r.readBps;
    write += r.writeBps;
    iops += r.iops;
  }
  return { read, write, iops };
}

function headerLine(s: DashboardState): string {
  const snap = s.snapshot;
  const t = sumRates(Object.values(s.lunRates));
  const parts = [
    'lunkit top',
    s.status ? `[${s.status}]` : '',
    formatClock(s.now || snap?.time || 0),
    snap ? `sessions ${sessionRows({ ...s, filter: '' }).length}` : 'waiting for the daemon',
    snap ? `LUs ${snap.core.luns.length}` : '',
    labClientsText(s),
    snap ? `read ${formatRate(t.read)} write ${formatRate(t.write)} ${formatCount(t.iops)} IOPS` : '',
  ].filter(Boolean);
  const text = parts.join('  ');
  return `{bold}${escapeTags(fit(text, s.width, { ascii: s.ascii }))}{/bold}`;
}

function labClientsText(s: DashboardState): string {
  const n = bootlabCounts(s.snapshot);
  return n ? `lab clients ${n.on}/${n.total} on` : '';
}

function footerLine(s: DashboardState): string {
  if (s.editingFilter) return escapeTags(fit(`/${s.filter}_   (enter: keep, esc: clear)`, s.width, { ascii: s.ascii }));
  const keys = s.detail
    ? 'esc back  q quit'
    : `tab pane  up/down move  enter details  / filter${s.filter ? ` [${s.filter}]` : ''}  q quit`;
  return `{inverse}${escapeTags(fit(keys, s.width, { ascii: s.ascii }))}{/inverse}`;
}

// ---------------------------------------------------------------------------
// Panes

function lunColumns(width: number): { cols: Column[]; spark: number } {
  const cols: Column[] = [
    { width: 12, cut: 'start' }, // name: derived names share their start (bootlab.<lab>.<client>)
    { width: 7 }, // backstore
    { width: 7, right: true }, // size
    { width: 10, right: true }, // read/s
    { width: 10, right: true }, // write/s
    { width: 6, right: true }, // iops
    { width: 7, right: true }, // p99
    { width: 4, right: true }, // in flight
  ];
  const used = cols.reduce((a, c) => a + c.width + 1, 0);
  const spark = Math.max(0, Math.min(60, width - used));
  return { cols: spark > 0 ? [...cols, { width: spark }] : cols, spark };
}

function lunPane(s: DashboardState, width: number): PaneText {
  const rows = lunRows(s);
  const { cols, spark } = lunColumns(width);
  const head = ['LU', 'TYPE', 'SIZE', 'READ/s', 'WRITE/s', 'IOPS', 'P99', 'INFL'];
  if (spark > 0) head.push(spark >= 20 ? 'READ+WRITE, LAST MIN' : 'TREND');
  return {
    title: `LUNs (${rows.length})`,
    header: columns(head, cols, s.ascii),
    rows: rows.map((r) => {
      const rate = s.lunRates[r.key];
      const h = s.lunHistory[r.key];
      const cells = [
        r.name,
        r.backstore,
        formatBytes(r.sizeBytes),
        formatRate(rate?.readBps ?? 0),
        formatRate(rate?.writeBps ?? 0),
        formatCount(rate?.iops ?? 0),
        formatLatency(rate?.p99Us ?? 0),
        String(r.inFlight),
      ];
      if (spark > 0) cells.push(sparkline(h ? h.readBps.map((v, i) => v + h.writeBps[i]) : [], spark, s.ascii));
      return columns(cells, cols, s.ascii);
    }),
  };
}

const SESSION_COLS: Column[] = [
  { width: 24, cut: 'start' }, // initiator
  { width: 20 }, // address
  { width: 12 }, // isid
  { width: 2, right: true }, // connections
  { width: 2 }, // digests
  { width: 3, right: true }, // erl
  { width: 6, right: true }, // age
  { width: 4, right: true }, // in flight
];

function sessionPane(s: DashboardState, width: number): PaneText {
  const rows = sessionRows(s);
  const extra = width >= 100;
  const cols = extra ? [...SESSION_COLS, { width: 10, right: true }, { width: 6, right: true }] : SESSION_COLS;
  const head = ['INITIATOR', 'ADDRESS', 'ISID', 'C', 'HD', 'ERL', 'AGE', 'INFL'];
  if (extra) head.push('BYTES/s', 'IOPS');
  return {
    title: `Sessions (${rows.length})`,
    header: columns(head, cols, s.ascii),
    rows: rows.map((r) => {
      const cells = [r.initiator, r.address, r.isid, String(r.connections), r.digests, r.erl, formatAge(s.now - r.since), String(r.inFlight)];
      if (extra) {
        const rate = r.nexusId !== null ? s.nexusRates[r.nexusId] : undefined;
        cells.push(formatRate((rate?.readBps ?? 0) + (rate?.writeBps ?? 0)), formatCount(rate?.iops ?? 0));
      }
      return columns(cells, cols, s.ascii);
    }),
  };
}

function treePane(s: DashboardState): PaneText {
  const lines = treeLines(s);
  return { title: 'Objects', rows: lines.map((l) => `${'  '.repeat(l.depth)}${l.text}`) };
}

function eventPane(s: DashboardState): PaneText {
  const evs = filteredEvents(s);
  return {
    title: `Events (${evs.length})`,
    rows: evs.map((e) => `${formatClock(e.time)} ${e.severity === 'info' ? ' ' : '!'} ${e.text}`),
  };
}

const TITLES: Record<PaneId, (s: DashboardState, width: number) => PaneText> = {
  tree: (s) => treePane(s),
  luns: lunPane,
  sessions: sessionPane,
  events: (s) => eventPane(s),
};

/** A pane as `rect.height` lines of `rect.width` characters (tags aside). */
export function drawPane(s: DashboardState, id: PaneId, rect: Rect): string[] {
  if (rect.height <= 0 || rect.width <= 0) return [];
  const p = TITLES[id](s, rect.width);
  const focused = s.focus === id;
  const rule = s.ascii ? '-' : '─';
  // fit() pads with spaces: cut the label only, then draw the rule to the edge.
  const label = fit(`${rule} ${p.title} `, rect.width, { ascii: s.ascii }).trimEnd();
  const title = label + (label.length < rect.width ? ' ' : '') + rule.repeat(Math.max(0, rect.width - [...label].length - 1));
  const out = [focused ? `{inverse}${escapeTags(title)}{/inverse}` : `{bold}${escapeTags(title)}{/bold}`];
  let room = rect.height - 1;
  if (p.header !== undefined && room > 1) {
    out.push(`{underline}${escapeTags(fit(p.header, rect.width))}{/underline}`);
    room--;
  }
  if (room <= 0) return out;
  const cursor = Math.min(s.cursor[id], Math.max(0, p.rows.length - 1));
  // Keep the cursor in view: scroll just enough that it is the last visible row.
  const start = Math.max(0, Math.min(cursor - room + 1, p.rows.length - room));
  for (let i = 0; i < room; i++) {
    const idx = start + i;
    if (idx >= p.rows.length) {
      out.push(i === 0 && p.rows.length === 0 ? escapeTags(fit(s.snapshot ? '  (none)' : '', rect.width)) : ' '.repeat(rect.width));
      continue;
    }
    const text = escapeTags(fit(p.rows[idx], rect.width, { ascii: s.ascii }));
    out.push(focused && idx === cursor ? `{inverse}${text}{/inverse}` : text);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Detail views (enter on a session or a LUN)

function countersLines(c: {
  commands: number;
  reads: number;
  writes: number;
  readBytes: number;
  writtenBytes: number;
  errors: number;
  aborted: number;
  inFlight: number;
  checkConditions: Record<string, number>;
  taskManagement: Record<string, number | undefined>;
  latency: { meanUs: number; p99Us: number; maxUs: number };
}): string[] {
  const cc = Object.entries(c.checkConditions).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const tmf = Object.entries(c.taskManagement).map(([k, n]) => `${k} ${n ?? 0}`).join(', ') || 'none';
  return [
    `commands ${c.commands}  reads ${c.reads}  writes ${c.writes}  in flight ${c.inFlight}`,
    `read ${formatBytes(c.readBytes)}  written ${formatBytes(c.writtenBytes)}  errors ${c.errors}  aborted ${c.aborted}`,
    `latency since start: mean ${formatLatency(c.latency.meanUs)}  p99 ${formatLatency(c.latency.p99Us)}  max ${formatLatency(c.latency.maxUs)}`,
    `check conditions: ${cc}`,
    `task management: ${tmf}`,
  ];
}

function rateLine(r: Rates | undefined): string {
  if (!r) return 'now: -';
  return `now: read ${formatRate(r.readBps)}  write ${formatRate(r.writeBps)}  ${formatCount(r.iops)} IOPS  mean ${formatLatency(r.meanUs)}  p99 ${formatLatency(r.p99Us)}`;
}

/** What the LU detail says about the boot-lab client whose disk it is (none for other LUs). */
function bootlabClientLines(s: DashboardState, backstore: string): string[] {
  for (const lab of s.snapshot?.bootlabs ?? []) {
    const c = lab.clients.find((x) => x.backstore === backstore);
    if (!c) continue;
    const delta = c.deltaBytes === null ? 'not measured yet' : `${formatBytes(c.deltaBytes)} (${formatBytes(c.allocatedBytes ?? 0)} on disk)`;
    const boot = c.lastBoot ? `${c.lastBoot.time} from ${c.lastBoot.address}` : 'never';
    return [
      `boot lab ${lab.name} client ${c.name}  MAC ${c.mac}  ${c.loggedIn ? `logged in (${c.sessions} session${c.sessions === 1 ? '' : 's'})` : 'off'}`,
      `overlay ${c.overlay}  delta ${delta}`,
      `initiator ${c.initiator}  last boot ${boot}`,
    ];
  }
  return [];
}

export function detailLines(s: DashboardState, width: number): string[] {
  const d = s.detail;
  const snap = s.snapshot;
  if (!d || !snap) return [];
  if (d.kind === 'lun') {
    const l = snap.core.luns.find((x) => String(x.id) === d.key);
    if (!l) return [`LU ${d.key} is gone`];
    const row = lunRows({ ...s, filter: '' }).find((r) => r.key === d.key);
    const h = s.lunHistory[d.key];
    const w = Math.max(10, Math.min(60, width - 12));
    return [
      `LU ${l.name}  (${l.backstore}, ${formatBytes(l.sizeBytes)}, block ${l.blockSize}${l.readOnly ? ', read-only' : ''})`,
      `mapped as: ${row?.mappings.join(', ') || 'not mapped'}`,
      ...bootlabClientLines(s, l.name),
      rateLine(s.lunRates[d.key]),
      ...countersLines(l),
      '',
      `read/s   ${sparkline(h?.readBps ?? [], w, s.ascii)}`,
      `write/s  ${sparkline(h?.writeBps ?? [], w, s.ascii)}`,
      `IOPS     ${sparkline(h?.iops ?? [], w, s.ascii)}`,
    ];
  }
  const row = sessionRows({ ...s, filter: '' }).find((r) => r.key === d.key);
  if (!row) return ['session is gone'];
  const is = snap.iscsi?.sessions.find((x) => x.tsih === row.tsih);
  const n = row.nexusId !== null ? snap.core.nexuses.find((x) => x.id === row.nexusId) : undefined;
  const lines = [
    `${row.fabric} session ${row.initiator} -> ${row.target || '(discovery)'}`,
    `ISID ${row.isid}  TSIH ${row.tsih ?? '-'}  ERL ${row.erl}  digests ${row.digests}  age ${formatAge(s.now - row.since)}`,
  ];
  if (is) {
    lines.push(`connections ${is.connections.length} of max ${is.maxConnections}`);
    for (const c of is.connections) {
      lines.push(`  cid ${c.cid} ${c.remote} -> ${c.local}  in ${formatBytes(c.bytesIn)} / ${c.pdusIn} PDUs  out ${formatBytes(c.bytesOut)} / ${c.pdusOut} PDUs`);
    }
    const rej = Object.entries(is.rejects).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    lines.push(`rejects: ${rej}  digest errors: header ${is.headerDigestErrors} data ${is.dataDigestErrors}`);
  }
  if (n) {
    lines.push(`LUNs ${n.luns.join(', ') || 'none'}`, rateLine(s.nexusRates[n.id]), ...countersLines(n));
  }
  return lines;
}

// ---------------------------------------------------------------------------

/** The whole screen: `height` lines, each `width` characters wide (tags aside). */
export function drawFrame(s: DashboardState): string[] {
  const { width, height } = s;
  const lines: string[] = new Array<string>(height).fill(' '.repeat(width));
  if (height <= 0 || width <= 0) return [];
  lines[0] = headerLine(s);
  if (height >= 2) lines[height - 1] = footerLine(s);
  if (s.detail) {
    const body = detailLines(s, width);
    for (let i = 0; i < height - 2; i++) lines[1 + i] = escapeTags(fit(body[i] ?? '', width, { ascii: s.ascii }));
    return lines;
  }
  // The hint takes the row above the footer when there is room for it.
  const hint = s.hint !== null && height >= 12;
  if (hint) lines[height - 2] = `{bold}${escapeTags(fit(s.hint ?? '', width, { ascii: s.ascii }))}{/bold}`;
  const rects = layout(width, hint ? height - 1 : height);
  // Segments per screen row, by column; side-by-side panes are one space apart.
  const segs = new Map<number, Array<{ x: number; text: string }>>();
  for (const id of Object.keys(rects) as PaneId[]) {
    const r = rects[id];
    drawPane(s, id, r).forEach((text, i) => {
      const y = r.y + i;
      if (y <= 0 || y >= height - 1) return;
      const list = segs.get(y) ?? [];
      list.push({ x: r.x, text });
      segs.set(y, list);
    });
  }
  for (const [y, list] of segs) lines[y] = list.sort((p, q) => p.x - q.x).map((g) => g.text).join(' ');
  return lines;
}
