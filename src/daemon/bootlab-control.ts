// Control methods of boot labs (docs/control-protocol.md "Boot labs"). Each
// changing method probes what it needs from the disk first (the golden image's
// format), then computes the new document inside the daemon's serial queue
// (where "is this client logged in?" cannot change under it), and removes the
// overlay files a change made obsolete only once the change is live.

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { clientInitiatorIqn, defaultClientName, labTargetIqn, overlayPath, parseMac } from '../bootlab/names.js';
import { CLIENT_NAME, LAB_NAME, type BootlabClientConfig, type BootlabConfig } from '../bootlab/schema.js';
import { labClientScript } from '../bootlab/script.js';
import type { ConfigDoc } from './config-doc.js';
import { ControlError, jsonPath } from './errors.js';

export const BOOTLAB_METHODS = [
  'bootlab.create',
  'bootlab.delete',
  'bootlab.list',
  'bootlab.status',
  'bootlab.script',
  'bootlab.golden',
  'bootlab.client.add',
  'bootlab.client.delete',
  'bootlab.client.reset',
] as const;
export type BootlabMethod = (typeof BOOTLAB_METHODS)[number];

export function isBootlabMethod(m: string): m is BootlabMethod {
  return (BOOTLAB_METHODS as readonly string[]).includes(m);
}

/** Where labs keep their overlays when `dir` is not given. */
export const DEFAULT_BOOTLAB_DIR = '/var/lib/lunkit/bootlab';

/** What the daemon lends these methods. */
export interface BootlabHost {
  /** A private copy of the configuration document. */
  doc(): ConfigDoc;
  /** Validates and applies a change in the serial queue; resolves with `result` plus the revision. */
  change(method: string, compute: (doc: ConfigDoc) => { doc: ConfigDoc; result?: Record<string, unknown> }): Promise<Record<string, unknown>>;
  /** Normal iSCSI sessions of this initiator on this target. */
  sessionsOf(initiatorIqn: string, targetIqn: string): number;
  lastBoot(lab: string, mac: string): { time: string; address: string } | undefined;
  services(lab: string): unknown;
}

// ---------------------------------------------------------------------------
// Parameters

function str(params: Record<string, unknown>, key: string, what: string): string {
  const v = params[key];
  if (typeof v !== 'string' || v === '') throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${what}`);
  return v;
}

function optBool(params: Record<string, unknown>, key: string): boolean | undefined {
  const v = params[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: true or false`);
  return v;
}

function labOf(doc: ConfigDoc, name: string): BootlabConfig {
  const l = doc.bootlabs?.[name];
  if (!l) throw new ControlError('ERR_NOT_FOUND', `no boot lab "${name}"`, { path: jsonPath('bootlabs', name) });
  return l;
}

function macParam(params: Record<string, unknown>): string {
  const given = str(params, 'mac', 'the client MAC address, e.g. 52:54:00:12:34:56');
  const mac = parseMac(given);
  if (!mac) throw new ControlError('ERR_INVALID_PARAMS', `params.mac: "${given}" is not a MAC address (six hex pairs, e.g. 52:54:00:12:34:56; not a multicast address)`);
  return mac;
}

/** A client by MAC (any spelling) or by name. */
function clientOf(lab: string, l: BootlabConfig, ref: string): { mac: string; client: BootlabClientConfig } {
  const mac = parseMac(ref);
  if (mac && mac in l.clients) return { mac, client: l.clients[mac] };
  const byName = Object.entries(l.clients).find(([, c]) => c.name === ref);
  if (byName) return { mac: byName[0], client: byName[1] };
  throw new ControlError('ERR_NOT_FOUND', `boot lab "${lab}" has no client "${ref}" (a MAC or a client name)`, { path: jsonPath('bootlabs', lab, 'clients', mac ?? ref) });
}

// ---------------------------------------------------------------------------
// Golden images

/** Magic numbers of image formats we do not read, so the refusal says what the file is. */
const OTHER_FORMATS: Array<[string, number, Buffer]> = [
  ['vmdk', 0, Buffer.from('KDMV')],
  ['vhdx', 0, Buffer.from('vhdxfile')],
  ['qed', 0, Buffer.from('QED\0')],
  ['LUKS', 0, Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe])],
  ['vdi', 0x40, Buffer.from([0x7f, 0x10, 0xda, 0xbe])],
];

/** Checks a golden image and tells its format; ERR_INVALID_PARAMS says what is wrong with it. */
export async function probeGolden(path: string, key = 'golden'): Promise<'raw' | 'qcow2'> {
  if (!path.startsWith('/')) throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: "${path}" is not an absolute path`);
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${path} does not exist`);
  if (!st.isFile() && !st.isBlockDevice()) throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${path} is not a file or block device`);
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: cannot open ${path}: ${e.code ?? e.message}`);
  });
  try {
    const head = Buffer.alloc(0x48);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead >= 8 && head.readUInt32BE(0) === 0x514649fb) {
      const version = head.readUInt32BE(4);
      if (version !== 2 && version !== 3) throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${path} is a qcow2 image of version ${version} (2 and 3 are read)`);
      return 'qcow2';
    }
    for (const [fmt, at, magic] of OTHER_FORMATS) {
      if (bytesRead >= at + magic.length && head.subarray(at, at + magic.length).equals(magic)) {
        throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${path} is a ${fmt} image; golden images are raw or qcow2 (qemu-img convert -O qcow2 ${path} NEW.qcow2)`);
      }
    }
    const size = st.isFile() ? st.size : 1;
    if (size === 0 || (st.isFile() && size % 512 !== 0)) {
      throw new ControlError('ERR_INVALID_PARAMS', `params.${key}: ${path} is not a disk image (a raw image is a non-empty whole number of 512-byte sectors; this file has ${size} bytes)`);
    }
    return 'raw';
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------
// Status

async function fileSizes(path: string): Promise<{ bytes: number; allocated: number } | undefined> {
  const st = await stat(path).catch(() => undefined);
  return st ? { bytes: st.size, allocated: st.blocks * 512 } : undefined;
}

export async function labStatus(host: BootlabHost, lab: string, l: BootlabConfig): Promise<Record<string, unknown>> {
  const target = labTargetIqn(lab);
  const clients = await Promise.all(
    Object.entries(l.clients).map(async ([mac, c]) => {
      const initiator = clientInitiatorIqn(lab, c.name);
      const overlay = overlayPath(l.dir, c.name, c.generation);
      const sizes = await fileSizes(overlay);
      const sessions = host.sessionsOf(initiator, target);
      return {
        mac,
        name: c.name,
        initiator,
        lun: c.lun,
        resetOnBoot: c.resetOnBoot,
        golden: c.golden,
        goldenCurrent: c.golden === l.golden,
        overlay,
        deltaBytes: sizes?.bytes ?? 0,
        allocatedBytes: sizes?.allocated ?? 0,
        loggedIn: sessions > 0,
        sessions,
        lastBoot: host.lastBoot(lab, mac) ?? null,
        chap: c.chap !== undefined,
      };
    }),
  );
  const goldens = new Map<string, string[]>([[l.golden, []]]);
  for (const c of clients) goldens.set(c.golden, [...(goldens.get(c.golden) ?? []), c.name]);
  return {
    name: lab,
    golden: l.golden,
    goldenFormat: l.goldenFormat,
    listen: l.listen,
    ports: l.ports,
    proxyDhcp: l.proxyDhcp ?? null,
    dir: l.dir,
    tftpRoot: l.tftpRoot,
    chap: l.chap,
    target,
    goldens: [...goldens].map(([path, names]) => ({ path, current: path === l.golden, clients: names })),
    clients,
    services: host.services(lab) ?? null,
  };
}

// ---------------------------------------------------------------------------
// Methods

function smallestFreeLun(l: BootlabConfig): number {
  const used = new Set(Object.values(l.clients).map((c) => c.lun));
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/**
 * The first generation from `from` whose overlay file does not exist: a file
 * left behind by an earlier lab of the same name is never served as a new
 * client's disk (the qcow2 backstore opens an existing file as it is).
 */
function freeGeneration(dir: string, name: string, from: number): number {
  let g = from;
  while (existsSync(overlayPath(dir, name, g))) g++;
  return g;
}

function refuseLoggedIn(host: BootlabHost, lab: string, c: BootlabClientConfig, verb: string, force: boolean | undefined): void {
  if (force) return;
  const n = host.sessionsOf(clientInitiatorIqn(lab, c.name), labTargetIqn(lab));
  if (n > 0) throw new ControlError('ERR_IN_USE', `client ${c.name} of boot lab "${lab}" is logged in (${n} session${n > 1 ? 's' : ''}); ${verb} it when it is off, or add --force`);
}

async function removeFiles(paths: string[]): Promise<void> {
  for (const p of paths) await unlink(p).catch(() => undefined);
}

export async function runBootlabMethod(host: BootlabHost, method: BootlabMethod, params: Record<string, unknown>): Promise<unknown> {
  switch (method) {
    case 'bootlab.list': {
      const doc = host.doc();
      const labs = [];
      for (const [lab, l] of Object.entries(doc.bootlabs ?? {})) labs.push(await labStatus(host, lab, l));
      return { labs };
    }
    case 'bootlab.status': {
      const lab = str(params, 'name', 'the lab name');
      return { lab: await labStatus(host, lab, labOf(host.doc(), lab)) };
    }
    case 'bootlab.script': {
      const lab = str(params, 'name', 'the lab name');
      const l = labOf(host.doc(), lab);
      const mac = macParam(params);
      const c = l.clients[mac] as BootlabClientConfig | undefined;
      if (!c) throw new ControlError('ERR_NOT_FOUND', `boot lab "${lab}" has no client with MAC ${mac}`, { path: jsonPath('bootlabs', lab, 'clients', mac) });
      const script = labClientScript(lab, l, mac);
      return { script };
    }
    case 'bootlab.create': {
      const lab = str(params, 'name', 'the lab name');
      if (!LAB_NAME.test(lab)) throw new ControlError('ERR_INVALID_PARAMS', `params.name: "${lab}": lab names use a-z 0-9 - (1 to 20 characters)`);
      const golden = str(params, 'golden', 'the golden image (an absolute path)');
      const listen = str(params, 'listen', 'the lab address (IPv4)');
      const dir = params.dir === undefined ? join(DEFAULT_BOOTLAB_DIR, lab) : str(params, 'dir', 'the overlay directory (an absolute path)');
      if (!dir.startsWith('/')) throw new ControlError('ERR_INVALID_PARAMS', `params.dir: "${dir}" is not an absolute path`);
      if (host.doc().bootlabs?.[lab]) throw new ControlError('ERR_EXISTS', `boot lab "${lab}" already exists`, { path: jsonPath('bootlabs', lab) });
      const goldenFormat = await probeGolden(golden);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const ports = (params.ports ?? {}) as Record<string, unknown>;
      return host.change(method, (doc) => {
        if (doc.bootlabs?.[lab]) throw new ControlError('ERR_EXISTS', `boot lab "${lab}" already exists`, { path: jsonPath('bootlabs', lab) });
        const entry: Record<string, unknown> = { golden, goldenFormat, listen, ports: { http: ports.http ?? 80, tftp: ports.tftp ?? 69, iscsi: ports.iscsi ?? 3260 }, dir, chap: optBool(params, 'chap') ?? false, clients: {} };
        if (params.proxyDhcp !== undefined) entry.proxyDhcp = params.proxyDhcp;
        if (params.tftpRoot !== undefined) entry.tftpRoot = params.tftpRoot;
        doc.bootlabs = { ...(doc.bootlabs ?? {}), [lab]: entry as unknown as BootlabConfig };
        return { doc, result: { name: lab, goldenFormat, dir } };
      });
    }
    case 'bootlab.delete': {
      const lab = str(params, 'name', 'the lab name');
      const force = optBool(params, 'force');
      let files: string[] = [];
      const res = await host.change(method, (doc) => {
        const l = labOf(doc, lab);
        for (const c of Object.values(l.clients)) refuseLoggedIn(host, lab, c, 'delete the lab while', force);
        files = Object.values(l.clients).map((c) => overlayPath(l.dir, c.name, c.generation));
        delete doc.bootlabs![lab];
        if (Object.keys(doc.bootlabs!).length === 0) delete doc.bootlabs;
        return { doc, result: { name: lab, removedOverlays: files.length } };
      });
      await removeFiles(files);
      return res;
    }
    case 'bootlab.golden': {
      const lab = str(params, 'name', 'the lab name');
      labOf(host.doc(), lab);
      const golden = str(params, 'path', 'the new golden image (an absolute path)');
      const goldenFormat = await probeGolden(golden, 'path');
      return host.change(method, (doc) => {
        const l = labOf(doc, lab);
        const previous = l.golden;
        l.golden = golden;
        l.goldenFormat = goldenFormat;
        const stillOnPrevious = Object.values(l.clients).filter((c) => c.golden === previous && previous !== golden).map((c) => c.name);
        return { doc, result: { name: lab, golden, goldenFormat, previous, stillOnPrevious } };
      });
    }
    case 'bootlab.client.add': {
      const lab = str(params, 'lab', 'the lab name');
      const mac = macParam(params);
      const name = params.name === undefined ? defaultClientName(mac) : str(params, 'name', 'the client name');
      if (!CLIENT_NAME.test(name)) throw new ControlError('ERR_INVALID_PARAMS', `params.name: "${name}": client names use a-z 0-9 - (1 to 32 characters)`);
      const resetOnBoot = optBool(params, 'resetOnBoot') ?? false;
      return host.change(method, (doc) => {
        const l = labOf(doc, lab);
        if (mac in l.clients) throw new ControlError('ERR_EXISTS', `MAC ${mac} is already registered in boot lab "${lab}" (client ${l.clients[mac].name})`, { path: jsonPath('bootlabs', lab, 'clients', mac) });
        const taken = Object.entries(l.clients).find(([, c]) => c.name === name);
        if (taken) throw new ControlError('ERR_EXISTS', `boot lab "${lab}" already has a client named ${name} (MAC ${taken[0]})`, { path: jsonPath('bootlabs', lab, 'clients', taken[0], 'name') });
        const client: BootlabClientConfig = { name, lun: smallestFreeLun(l), resetOnBoot, golden: l.golden, goldenFormat: l.goldenFormat, generation: freeGeneration(l.dir, name, 0) };
        // Secrets go into the configuration and the client's script only; logs never see them.
        if (l.chap) client.chap = { userid: `${lab}.${name}`, password: randomBytes(12).toString('hex') };
        l.clients[mac] = client;
        return { doc, result: { lab, mac, name, lun: client.lun, initiator: clientInitiatorIqn(lab, name), overlay: overlayPath(l.dir, name, client.generation) } };
      });
    }
    case 'bootlab.client.delete': {
      const lab = str(params, 'lab', 'the lab name');
      const ref = str(params, 'client', 'a client MAC or name');
      const force = optBool(params, 'force');
      let files: string[] = [];
      const res = await host.change(method, (doc) => {
        const l = labOf(doc, lab);
        const { mac, client } = clientOf(lab, l, ref);
        refuseLoggedIn(host, lab, client, 'delete', force);
        files = [overlayPath(l.dir, client.name, client.generation)];
        delete l.clients[mac];
        return { doc, result: { lab, mac, name: client.name } };
      });
      await removeFiles(files);
      return res;
    }
    case 'bootlab.client.reset':
      return resetClient(host, str(params, 'lab', 'the lab name'), str(params, 'client', 'a client MAC or name'), optBool(params, 'force'));
  }
}

/** Back to the lab's current golden image: a new overlay file, the old one removed once the new one serves. */
export async function resetClient(host: BootlabHost, lab: string, ref: string, force: boolean | undefined, onlyIfIdle = false): Promise<Record<string, unknown>> {
  let files: string[] = [];
  const res = await host.change('bootlab.client.reset', (doc) => {
    const l = labOf(doc, lab);
    const { mac, client } = clientOf(lab, l, ref);
    if (onlyIfIdle && host.sessionsOf(clientInitiatorIqn(lab, client.name), labTargetIqn(lab)) > 0) return { doc, result: { lab, mac, name: client.name, reset: false } };
    refuseLoggedIn(host, lab, client, 'reset', force);
    files = [overlayPath(l.dir, client.name, client.generation)];
    client.generation = freeGeneration(l.dir, client.name, client.generation + 1);
    client.golden = l.golden;
    client.goldenFormat = l.goldenFormat;
    return { doc, result: { lab, mac, name: client.name, reset: true, golden: l.golden, overlay: overlayPath(l.dir, client.name, client.generation) } };
  });
  await removeFiles(files);
  return res;
}
