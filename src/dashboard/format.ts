// Small pure formatters shared by the dashboard and `lunkit stats`: sizes,
// rates, durations, sparklines, fixed-width columns.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5KiB"; exact bytes below 1 KiB. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${Math.round(v)}B`;
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)}${UNITS[u]}`;
}

/** Bytes per second, e.g. "12.3MiB/s". */
export function formatRate(bps: number): string {
  return `${formatBytes(bps)}/s`;
}

/** 12345 -> "12.3k"; for IOPS and counts. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a < 1000) return String(Math.round(n));
  if (a < 1e6) return `${(n / 1e3).toFixed(a < 1e4 ? 2 : 1)}k`;
  if (a < 1e9) return `${(n / 1e6).toFixed(a < 1e7 ? 2 : 1)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

/** Microseconds -> "850us", "1.2ms", "3.4s". */
export function formatLatency(us: number): string {
  if (!Number.isFinite(us) || us <= 0) return '-';
  if (us < 1000) return `${Math.round(us)}us`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)}ms`;
  return `${(us / 1e6).toFixed(1)}s`;
}

/** Milliseconds -> "45s", "12m", "3h05m", "2d4h". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** HH:MM:SS local time. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const SPARK_UNICODE = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const SPARK_ASCII = [' ', '.', '.', ':', ':', '=', '=', '#', '#'];

/**
 * The last `width` values as a sparkline, right-aligned (newest at the right),
 * scaled to the largest value shown; a non-zero value never draws as blank.
 */
export function sparkline(values: readonly number[], width: number, ascii = false): string {
  if (width <= 0) return '';
  const chars = ascii ? SPARK_ASCII : SPARK_UNICODE;
  const tail = values.slice(-width);
  const max = Math.max(0, ...tail);
  let out = '';
  for (const v of tail) {
    if (max <= 0 || v <= 0) out += chars[0];
    else out += chars[Math.max(1, Math.min(8, Math.round((v / max) * 8)))];
  }
  return out.padStart(width, ' ');
}

/** Cut or pad to exactly `width` characters; `start` cuts from the left ("…tail"). */
export function fit(text: string, width: number, opts: { right?: boolean; cut?: 'end' | 'start'; ascii?: boolean } = {}): string {
  if (width <= 0) return '';
  const chars = [...text];
  let t = text;
  if (chars.length > width) {
    const ell = opts.ascii ? '~' : '…';
    t = opts.cut === 'start' ? ell + chars.slice(chars.length - width + 1).join('') : chars.slice(0, width - 1).join('') + ell;
    if (width === 1) t = chars[0];
  }
  const len = [...t].length;
  return opts.right ? ' '.repeat(width - len) + t : t + ' '.repeat(width - len);
}

export interface Column {
  width: number;
  right?: boolean;
  cut?: 'end' | 'start';
}

/** One fixed-width table line from cells, separated by one space. */
export function columns(cells: readonly string[], cols: readonly Column[], ascii = false): string {
  return cells.map((c, i) => fit(c, cols[i].width, { right: cols[i].right, cut: cols[i].cut, ascii })).join(' ');
}
