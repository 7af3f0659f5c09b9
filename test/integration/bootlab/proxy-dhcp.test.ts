// Proxy DHCP against a real site DHCP server. Topology, built here and torn
// down in afterAll even on failure:
//
//   root namespace                         netns lunkit-pxe-<pid>
//   [lkph<n> 10.77.0.1/24] <--- veth ---> [lkpc<n>, no address at first]
//    dnsmasq (addresses only) on 67          scripted PXE client (node)
//    startProxyDhcp() on 67 + 4011
//
// dnsmasq and the proxy share port 67 on the same interface; the client must
// get dnsmasq's address offer AND our boot offer for the same DISCOVER, then
// our ACK to its ProxyDHCPREQUEST on 4011. Needs root (ip netns, port 67).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProxyDhcpClient, type ProxyDhcpServer, startProxyDhcp } from '../../../src/bootlab/proxy-dhcp.js';
import {
  DhcpMessageType,
  DhcpOption,
  type DhcpPacket,
  decodeDhcpPacket,
  decodeSuboptions,
  getMessageType,
  getServerId,
  getVendorClass,
  isUefiArch,
} from '../../../src/protocols/dhcp/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const ADDON = path.join(ROOT, 'native/build/Release/lunkit_native.node');
const N = process.pid % 10000;
const NS = `lunkit-pxe-${process.pid}`;
const HOST_IF = `lkph${N}`;
const CLIENT_IF = `lkpc${N}`;
const SERVER = '10.77.0.1';
const IPXE_URL = `http://${SERVER}/boot/lab.ipxe`;

const canRun = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/dnsmasq') && fs.existsSync(ADDON);

// The client runs inside the namespace as a plain script: it sends one
// datagram from port 68 on its interface (SO_BINDTODEVICE through the addon,
// since it may have no address and no route yet) and prints every reply.
const CLIENT_SCRIPT = `
import dgram from 'node:dgram';
import { createRequire } from 'node:module';
const [addon, ifname, dest, destPort, hex, waitMs] = process.argv.slice(2);
const fd = createRequire(import.meta.url)(addon).udp4SocketOnDevice(ifname, 68);
const s = dgram.createSocket({ type: 'udp4' });
const out = [];
s.on('message', (m, r) => out.push({ from: r.address, port: r.port, hex: m.toString('hex') }));
s.bind({ fd }, () => {
  s.send(Buffer.from(hex, 'hex'), Number(destPort), dest, (err) => { if (err) { console.error(String(err)); process.exit(2); } });
  setTimeout(() => { process.stdout.write(JSON.stringify(out)); s.close(); }, Number(waitMs));
});
`;

let tmp = '';
let dnsmasq: ChildProcess | undefined;
let dnsmasqLog = '';
let proxy: ProxyDhcpServer | undefined;
const seen: ProxyDhcpClient[] = [];

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: 'pipe', timeout: 10_000 });
}
function shQuiet(cmd: string, args: string[]): void {
  try {
    sh(cmd, args);
  } catch {
    // cleanup of something that may not exist
  }
}

// --- a naive DHCP client message builder (not the production encoder) -----
const hx = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
const opt = (code: number, valueHex: string): string =>
  code.toString(16).padStart(2, '0') + (valueHex.length / 2).toString(16).padStart(2, '0') + valueHex;

function clientMessage(m: { xid: string; mac: string; ciaddr?: string; options: string[] }): string {
  const ci = (m.ciaddr ?? '0.0.0.0').split('.').map((b) => Number(b).toString(16).padStart(2, '0')).join('');
  return (
    '01010600' + m.xid + '0000' + '8000' + ci + '00000000' + '00000000' + '00000000' +
    m.mac.replace(/:/g, '') + '00'.repeat(10) + '00'.repeat(64 + 128) + '63825363' +
    m.options.join('') + 'ff' + '00'.repeat(16)
  );
}
const GUID = 'a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6';
const pxeOptions = (type: number, arch: number, vendorClass: string, extra: string[] = []): string[] => [
  opt(53, type.toString(16).padStart(2, '0')),
  opt(93, arch.toString(16).padStart(4, '0')),
  opt(94, '010201'),
  opt(60, hx(vendorClass)),
  opt(97, '00' + GUID),
  ...extra,
];

interface Received { from: string; port: number; packet: DhcpPacket }

/** Runs the client script in the namespace; resolves with the decoded replies. */
function runClient(dest: string, destPort: number, messageHex: string, waitMs = 2500): Promise<Received[]> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', NS, process.execPath, path.join(tmp, 'client.mjs'), ADDON, CLIENT_IF, dest, String(destPort), messageHex, String(waitMs)],
      { timeout: waitMs + 8000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`client failed: ${err.message} ${stderr}`));
        const raw = JSON.parse(stdout) as Array<{ from: string; port: number; hex: string }>;
        const out: Received[] = [];
        for (const r of raw) {
          const d = decodeDhcpPacket(Buffer.from(r.hex, 'hex'));
          if (d.ok) out.push({ from: r.from, port: r.port, packet: d.packet });
        }
        resolve(out);
      },
    );
  });
}

const isOurs = (r: Received): boolean => r.packet.yiaddr === '0.0.0.0' && getVendorClass(r.packet.options) === 'PXEClient';
const isSites = (r: Received): boolean => r.packet.yiaddr !== '0.0.0.0';

describe.skipIf(!canRun)('proxy DHCP beside dnsmasq in a network namespace', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-pxe-'));
    fs.writeFileSync(path.join(tmp, 'client.mjs'), CLIENT_SCRIPT);
    shQuiet('ip', ['link', 'del', HOST_IF]);
    shQuiet('ip', ['netns', 'del', NS]);
    sh('ip', ['netns', 'add', NS]);
    sh('ip', ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', CLIENT_IF]);
    sh('ip', ['link', 'set', CLIENT_IF, 'netns', NS]);
    sh('ip', ['addr', 'add', `${SERVER}/24`, 'dev', HOST_IF]);
    sh('ip', ['link', 'set', HOST_IF, 'up']);
    sh('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
    sh('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', CLIENT_IF, 'up']);

    // The site server: addresses only, no boot information, no DNS.
    dnsmasq = spawn('/usr/sbin/dnsmasq', [
      '--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${HOST_IF}`, '--bind-interfaces',
      '--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h', '--no-ping', '--log-dhcp', '--log-facility=-',
      `--dhcp-leasefile=${path.join(tmp, 'leases')}`, `--pid-file=${path.join(tmp, 'dnsmasq.pid')}`, '--user=root',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const onLog = (b: Buffer): void => {
      dnsmasqLog += b.toString();
    };
    dnsmasq.stdout?.on('data', onLog);
    dnsmasq.stderr?.on('data', onLog);
    const deadline = Date.now() + 10_000;
    while (!/DHCP, IP range/.test(dnsmasqLog)) {
      if (dnsmasq.exitCode !== null || Date.now() > deadline) throw new Error(`dnsmasq did not start:\n${dnsmasqLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    proxy = await startProxyDhcp({
      interface: HOST_IF,
      serverAddress: SERVER,
      bootFile: (c) => {
        seen.push(c);
        if (c.isIpxe) return { filename: IPXE_URL };
        if (isUefiArch(c.arch)) return { filename: 'ipxe.efi' };
        return { filename: 'undionly.kpxe' };
      },
    });
    expect(proxy.boundToDevice).toBe(true);
  });

  afterAll(async () => {
    await proxy?.close();
    if (dnsmasq?.pid !== undefined && dnsmasq.exitCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      process.kill(dnsmasq.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (dnsmasq.exitCode === null) process.kill(dnsmasq.pid, 'SIGKILL');
    }
    shQuiet('ip', ['link', 'del', HOST_IF]);
    shQuiet('ip', ['netns', 'del', NS]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('BIOS PXE ROM: dnsmasq offers an address, we offer undionly.kpxe, then ACK on 4011', async () => {
    const mac = '52:54:00:00:00:01';
    const replies = await runClient('255.255.255.255', 67, clientMessage({
      xid: '11111111', mac, options: pxeOptions(DhcpMessageType.DISCOVER, 0, 'PXEClient:Arch:00000:UNDI:002001'),
    }));
    const site = replies.find(isSites);
    const ours = replies.find(isOurs);
    expect(site, `no dnsmasq offer; dnsmasq log:\n${dnsmasqLog}`).toBeDefined();
    expect(ours, 'no proxy offer').toBeDefined();
    expect(getMessageType(site!.packet.options)).toBe(DhcpMessageType.OFFER);
    expect(site!.packet.yiaddr).toMatch(/^10\.77\.0\.1[0-5]\d$/);

    const o = ours!.packet;
    expect(getMessageType(o.options)).toBe(DhcpMessageType.OFFER);
    expect(o.xid).toBe(0x11111111);
    expect(getServerId(o.options)).toBe(SERVER);
    expect(o.siaddr).toBe(SERVER);
    expect(o.file).toBe('undionly.kpxe');
    expect(o.options.get(DhcpOption.BOOTFILE_NAME)?.toString()).toBe('undionly.kpxe');
    expect(o.options.get(DhcpOption.CLIENT_MACHINE_ID)?.toString('hex')).toBe('00' + GUID);
    expect(decodeSuboptions(o.options.get(DhcpOption.VENDOR_SPECIFIC)!)?.get(6)).toEqual(Buffer.from([8]));
    const client = seen.find((c) => c.mac === mac);
    expect(client).toMatchObject({ mac, arch: 0, isIpxe: false, userClass: undefined });
    expect(client?.uuid?.toString('hex')).toBe(GUID);

    // The client takes dnsmasq's address, then asks us on 4011 (PXE 2.1, iPXE's ProxyDHCPREQUEST).
    const addr = site!.packet.yiaddr;
    sh('ip', ['netns', 'exec', NS, 'ip', 'addr', 'add', `${addr}/24`, 'dev', CLIENT_IF]);
    try {
      const acks = await runClient(SERVER, 4011, clientMessage({
        xid: '11111112', mac, ciaddr: addr,
        options: pxeOptions(DhcpMessageType.REQUEST, 0, 'PXEClient:Arch:00000:UNDI:002001'),
      }), 1500);
      expect(acks).toHaveLength(1);
      expect(acks[0].from).toBe(SERVER);
      expect(acks[0].port).toBe(4011);
      const a = acks[0].packet;
      expect(getMessageType(a.options)).toBe(DhcpMessageType.ACK);
      expect(a.xid).toBe(0x11111112);
      expect(a.ciaddr).toBe(addr);
      expect(a.yiaddr).toBe('0.0.0.0');
      expect(a.file).toBe('undionly.kpxe');
    } finally {
      shQuiet('ip', ['netns', 'exec', NS, 'ip', 'addr', 'del', `${addr}/24`, 'dev', CLIENT_IF]);
    }
    expect(proxy!.stats()).toMatchObject({ offers: 1, acks: 1 });
  });

  it('UEFI x64 firmware (arch 7) is offered ipxe.efi', async () => {
    const replies = await runClient('255.255.255.255', 67, clientMessage({
      xid: '22222222', mac: '52:54:00:00:00:02',
      options: pxeOptions(DhcpMessageType.DISCOVER, 7, 'PXEClient:Arch:00007:UNDI:003016'),
    }));
    expect(replies.some(isSites)).toBe(true);
    const ours = replies.filter(isOurs);
    expect(ours).toHaveLength(1);
    expect(ours[0].packet.file).toBe('ipxe.efi');
  });

  it('iPXE (user class "iPXE", option 175) is offered the http:// script URL', async () => {
    const replies = await runClient('255.255.255.255', 67, clientMessage({
      xid: '33333333', mac: '52:54:00:00:00:03',
      options: pxeOptions(DhcpMessageType.DISCOVER, 0, 'PXEClient:Arch:00000:UNDI:002001', [
        opt(77, hx('iPXE')),
        opt(175, 'eb0101'),
      ]),
    }));
    expect(replies.some(isSites)).toBe(true);
    const ours = replies.filter(isOurs);
    expect(ours).toHaveLength(1);
    expect(ours[0].packet.options.get(DhcpOption.BOOTFILE_NAME)?.toString()).toBe(IPXE_URL);
    expect(seen.find((c) => c.mac === '52:54:00:00:00:03')).toMatchObject({ isIpxe: true, userClass: 'iPXE' });
  });

  it('a non-PXE DISCOVER gets dnsmasq\'s offer and nothing from us', async () => {
    const before = proxy!.stats();
    const replies = await runClient('255.255.255.255', 67, clientMessage({
      xid: '44444444', mac: '52:54:00:00:00:04',
      options: [opt(53, '01'), opt(60, hx('MSFT 5.0')), opt(55, '010306')],
    }));
    expect(replies.some(isSites)).toBe(true);
    expect(replies.filter((r) => r.packet.yiaddr === '0.0.0.0')).toHaveLength(0);
    const after = proxy!.stats();
    expect(after.notPxe).toBe(before.notPxe + 1);
    expect(after.offers).toBe(before.offers);
  });
});

// Bounds, on loopback (no namespace needed): garbage, oversized datagrams and
// a flooding MAC cost a counter each, never the server.
describe('proxy DHCP bounds on loopback', () => {
  it('drops garbage, oversized packets and floods, and keeps answering', async () => {
    const { default: dgram } = await import('node:dgram');
    const server = await startProxyDhcp({
      interface: 'lo', serverAddress: '127.0.0.1', ports: { dhcp: 0, pxe: 0 },
      bootFile: () => ({ filename: 'undionly.kpxe' }),
    });
    const sock = dgram.createSocket('udp4');
    try {
      const acks: Buffer[] = [];
      sock.on('message', (m) => acks.push(m));
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const pxe = server.ports().pxe;
      const send = (b: Buffer): Promise<void> => new Promise((r, j) => sock.send(b, pxe, '127.0.0.1', (e) => (e ? j(e) : r())));
      const request = (mac: string): Buffer => Buffer.from(clientMessage({
        xid: '55555555', mac, ciaddr: '127.0.0.1',
        options: pxeOptions(DhcpMessageType.REQUEST, 0, 'PXEClient:Arch:00000:UNDI:002001'),
      }), 'hex');
      await send(Buffer.from('not dhcp at all'));
      await send(Buffer.alloc(1600));
      const cut = request('52:54:00:00:00:10');
      await send(cut.subarray(0, cut.length - 20)); // END cut off
      for (let i = 0; i < 20; i++) await send(request('52:54:00:00:00:11'));
      await send(request('52:54:00:00:00:12'));
      const deadline = Date.now() + 3000;
      while (acks.length < 9 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const s = server.stats();
      expect(s).toMatchObject({ malformed: 2, oversized: 1, rateLimited: 12, acks: 9, offers: 0 });
      expect(acks).toHaveLength(9);
    } finally {
      sock.close();
      await server.close();
    }
  });
});
