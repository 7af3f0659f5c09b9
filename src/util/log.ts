// A small leveled logger for the daemon: one line per event on stderr,
// "time level msg key=value..."; LUNKIT_LOG_LEVEL or --log-level sets the
// threshold. Secrets never reach it: callers pass no passwords, and keys named like one
// are redacted here as a second fence.
//
// Field values often come from the network (an InitiatorName, a TargetName, an
// NBD export name, a text key a client sent). A value with a newline would
// forge a log line, one with an ANSI escape would repaint the operator's
// terminal, a bidi override would make it read differently than it is. So every
// field, and the message too, is escaped here, once, whoever logs it: control
// characters (C0, DEL, C1), Unicode line/paragraph separators and bidi controls
// become \n, \r, \t or \uXXXX, and strings longer than MAX_FIELD_CHARS are cut
// with a "...(+N chars)" marker. A quoted value is a valid JSON string, so a
// reader can always recover the exact (escaped) text.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET = /pass|secret|chap_?r/i;

/** Longest string value written whole; longer ones are cut (a 64 KiB login key is not a log line). */
export const MAX_FIELD_CHARS = 256;
/** Longest serialised non-string value (objects, arrays). */
const MAX_JSON_CHARS = 1024;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// C0, DEL, C1, LINE/PARAGRAPH SEPARATOR, bidi embeddings/overrides/isolates, BOM.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
// The same set without the g flag, for test() (a global regex keeps lastIndex between calls).
const HAS_UNSAFE = new RegExp(UNSAFE.source);
// Same set, outside JSON's own escaping (JSON.stringify already escapes C0).
const UNSAFE_AFTER_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function hex4(c: string): string {
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
}

/** Cut a string to MAX_FIELD_CHARS code units (never inside a surrogate pair). */
export function truncateField(s: string, max = MAX_FIELD_CHARS): string {
  if (s.length <= max) return s;
  let end = max;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}...(+${s.length - end} chars)`;
}

/**
 * A string as it appears in a text log line: unchanged when it is plain
 * (no space, quote, '=', backslash or unsafe character), else a JSON string
 * whose unsafe characters are escaped.
 */
export function escapeLogText(raw: string): string {
  const s = truncateField(raw);
  if (s.length > 0 && !/[\s"=\\]/.test(s) && !HAS_UNSAFE.test(s)) return s;
  const body = s.replace(/["\\]/g, (c) => '\\' + c).replace(UNSAFE, (c) => SHORT[c] ?? hex4(c));
  return `"${body}"`;
}

/** JSON text with the unsafe characters JSON.stringify leaves alone escaped too. */
function safeJson(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = JSON.stringify(String(v));
  }
  s ??= String(v);
  return s.replace(UNSAFE_AFTER_JSON, hex4);
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return escapeLogText(v);
  if (v instanceof Error) return escapeLogText(v.message);
  if (typeof v === 'bigint') return v.toString();
  return truncateField(safeJson(v), MAX_JSON_CHARS);
}

/** A field value for JSON output: long strings cut, errors as their message. */
function jsonValue(v: unknown): unknown {
  if (typeof v === 'string') return truncateField(v);
  if (v instanceof Error) return truncateField(v.message);
  if (typeof v === 'bigint') return v.toString();
  return v;
}

/** One log line (without the newline) as the text format writes it. */
export function formatLogLine(time: string, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  let line = `${time} ${level.padEnd(5)} ${escapeMessage(msg)}`;
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    line += ` ${escapeLogText(k)}=${SECRET.test(k) ? '[redacted]' : fmt(v)}`;
  }
  return line;
}

/** One log record as the JSON format writes it. */
export function formatLogJson(time: string, level: LogLevel, msg: string, fields?: Record<string, unknown>): string {
  const rec: Record<string, unknown> = { time, level, msg: truncateField(msg, 4 * MAX_FIELD_CHARS) };
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v === undefined) continue;
    rec[truncateField(k)] = SECRET.test(k) ? '[redacted]' : jsonValue(v);
  }
  return truncateField(safeJson(rec), 64 * MAX_JSON_CHARS);
}

/** Messages are ours, but may embed remote text: escape unsafe characters without quoting. */
function escapeMessage(msg: string): string {
  return truncateField(msg, 4 * MAX_FIELD_CHARS).replace(UNSAFE, (c) => SHORT[c] ?? hex4(c));
}

export function createLogger(opts: { level?: LogLevel; out?: NodeJS.WritableStream; json?: boolean; now?: () => Date } = {}): Logger {
  const min = ORDER[opts.level ?? ((process.env.LUNKIT_LOG_LEVEL as LogLevel | undefined) ?? 'info')] ?? ORDER.info;
  const out = opts.out ?? process.stderr;
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    const time = now().toISOString();
    out.write((opts.json ? formatLogJson(time, level, msg, fields) : formatLogLine(time, level, msg, fields)) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
