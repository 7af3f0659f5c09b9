// A small leveled logger for the daemon: one line per event on stderr,
// "time level msg key=value..."; LUNKIT_LOG_LEVEL or --log-level sets the
// threshold. Secrets never reach it: callers pass no passwords, and keys named like one
// are redacted here as a second fence.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET = /pass|secret|chap_?r/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v);
}

export function createLogger(opts: { level?: LogLevel; out?: NodeJS.WritableStream; json?: boolean } = {}): Logger {
  const min = ORDER[opts.level ?? ((process.env.LUNKIT_LOG_LEVEL as LogLevel | undefined) ?? 'info')] ?? ORDER.info;
  const out = opts.out ?? process.stderr;
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (ORDER[level] < min) return;
    const time = new Date().toISOString();
    if (opts.json) {
      const rec: Record<string, unknown> = { time, level, msg };
      for (const [k, v] of Object.entries(fields ?? {})) rec[k] = SECRET.test(k) ? '[redacted]' : v;
      out.write(JSON.stringify(rec) + '\n');
      return;
    }
    let line = `${time} ${level.padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(fields ?? {})) line += ` ${k}=${SECRET.test(k) ? '[redacted]' : fmt(v)}`;
    out.write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
