/* global require */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload (node --require) */
// Loaded into the benchmarked daemon with node --require: counts what a
// configuration change costs in system objects (files opened under the bench
// directory, listening sockets bound) without touching lunkit's code. SIGUSR2
// prints the counters to stderr as one `bench-counts {...}` line.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const dir = process.env.LUNKIT_BENCH_DIR || '/nonexistent';
const counts = { opens: 0, binds: 0 };
const under = (p) => typeof p === 'string' && p.startsWith(dir);

const open = fs.open;
fs.open = function (p, ...rest) {
  if (under(p)) counts.opens++;
  return open.call(this, p, ...rest);
};
const openSync = fs.openSync;
fs.openSync = function (p, ...rest) {
  if (under(p)) counts.opens++;
  return openSync.call(this, p, ...rest);
};
const popen = fs.promises.open;
fs.promises.open = function (p, ...rest) {
  if (under(p)) counts.opens++;
  return popen.call(this, p, ...rest);
};
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a = args[0];
  // TCP listeners only (the control socket is a path).
  if (typeof a === 'number' || (a && typeof a === 'object' && 'port' in a)) counts.binds++;
  return listen.apply(this, args);
};
// ESM imports of node:fs / node:net see the patched functions only after this.
require('node:module').syncBuiltinESMExports();
process.on('SIGUSR2', () => process.stderr.write(`bench-counts ${JSON.stringify(counts)}\n`));
