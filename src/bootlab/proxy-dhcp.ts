// Proxy DHCP for the boot lab (PXE 2.1 §2.2.5 "ProxyDHCP"; the behaviour of
// dnsmasq's `dhcp-range=...,proxy`). The site's DHCP server keeps handing out
// addresses; we never do. We only tell PXE clients what to boot:
//
//   port 67   DHCPDISCOVER from a PXEClient -> DHCPOFFER, yiaddr 0.0.0.0,
//             option 54 = us, 60 "PXEClient", 43 {discovery control = 8},
//             siaddr + `file` + option 67 = the boot file, 97 echoed.
//             Everything else on 67 (REQUESTs for the site's lease, non-PXE
//             clients, BOOTP) is left to the site server, silently.
//   port 4011 DHCPREQUEST unicast from a client that already has its address
//             (iPXE's "ProxyDHCPREQUEST", PXE 2.1 boot server request) ->
//             DHCPACK with the same boot information, to its address and port.
//
// Coexistence on port 67: both servers bind 0.0.0.0:67 with SO_REUSEADDR
// (dnsmasq sets SO_REUSEADDR|SO_REUSEPORT when it runs with --bind-interfaces
// or --bind-dynamic); Linux delivers every broadcast datagram to all sockets
// bound to the port, so both see each DISCOVER. A *unicast* datagram goes to
// one socket only, so on a host where the site server runs too (the tests),
// its unicast renewals may reach us and be dropped; clients then rebind by
// broadcast (RFC 2131 §4.4.5). Run the proxy on another host to avoid that.
//
// Interface: the port-67 socket is bound to the interface with SO_BINDTODEVICE
// (native addon), so we neither answer DISCOVERs arriving on other interfaces
// nor send our broadcast replies out of the default route's interface. Without
// the addon we fall back to an unrestricted socket and say so in the log: that
// is right on a host (or netns) with one interface, and wrong otherwise.
// The port-4011 socket is bound to serverAddress, which already pins it.

import dgram from 'node:dgram';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DhcpMessageType,
  DhcpOption,
  FLAG_BROADCAST,
  type DhcpPacket,
  clientArchName,
  clientMac,
  decodeDhcpPacket,
  encodeDhcpPacket,
  getClientArch,
  getClientMachineId,
  getMessageType,
  getUserClasses,
  isIpv4,
  isIpxeClient,
  isPxeClient,
  ipv4ToBuffer,
  messageTypeName,
  pxeVendorOptions,
} from '../protocols/dhcp/index.js';
import { type Logger, silentLogger } from '../util/log.js';
import { nativeNet, nativeNetLoadError } from './native-net.js';

export interface ProxyDhcpClient {
  /** aa:bb:cc:dd:ee:ff */
  mac: string;
  /** Option 93 (or the Arch field of option 60); see ClientArch. */
  arch: number | undefined;
  /** Option 175 present or user class "iPXE": the client already runs iPXE. */
  isIpxe: boolean;
  /** Option 77, names joined with ',' ("iPXE" for iPXE). */
  userClass: string | undefined;
  /** Option 97's 16 GUID bytes, in wire order. */
  uuid?: Buffer;
}

export interface BootChoice {
  /** TFTP path or URL; goes to `file` (when it fits) and option 67. */
  filename: string;
  /** siaddr, the TFTP server; defaults to serverAddress. */
  nextServer?: string;
}

export interface ProxyDhcpOptions {
  /** Interface to serve, e.g. br0. */
  interface: string;
  /** Our IPv4 address on it (option 54, the address clients send ProxyDHCPREQUESTs to). */
  serverAddress: string;
  /** Chooses the boot file; undefined means "not ours to boot": we stay silent. */
  bootFile: (client: ProxyDhcpClient) => BootChoice | undefined;
  /** Ports, for tests; 0 picks a free one (see ports()). */
  ports?: { dhcp?: number; pxe?: number };
  logger?: Logger;
}

export interface ProxyDhcpStats {
  received: number;
  offers: number;
  acks: number;
  /** Well-formed, but not from a PXE client, or not a message we answer. */
  ignored: number;
  notPxe: number;
  malformed: number;
  oversized: number;
  rateLimited: number;
  /** bootFile() returned undefined. */
  noBootFile: number;
  sendErrors: number;
}

export interface ProxyDhcpServer {
  close(): Promise<void>;
  stats(): ProxyDhcpStats;
  /** The bound ports (useful when 0 was asked for). */
  ports(): { dhcp: number; pxe: number };
  /** False when the addon was missing and port 67 listens on every interface. */
  readonly boundToDevice: boolean;
}

/** Larger datagrams are not DHCP from a PXE ROM (they use 576..1500); drop them unparsed. */
export const MAX_DATAGRAM = 1500;
/** Per-MAC limit: PXE ROMs retransmit after 4, 8, 16, 32 s and iPXE about once a second. */
const RATE_WINDOW_MS = 4000;
const RATE_MAX_PER_WINDOW = 8;
/** Bound on the rate table, so spoofed MACs cannot grow it without limit. */
const RATE_TABLE_MAX = 4096;
const CLIENT_PORT = 68;
const BROADCAST = '255.255.255.255';

/** Counts packets per MAC in fixed windows; refuses when full of live entries. */
class RateLimiter {
  private readonly table = new Map<string, { start: number; count: number }>();

  allow(mac: string, now: number): boolean {
    let e = this.table.get(mac);
    if (e && now - e.start >= RATE_WINDOW_MS) {
      e.start = now;
      e.count = 0;
    }
    if (!e) {
      if (this.table.size >= RATE_TABLE_MAX) {
        for (const [k, v] of this.table) if (now - v.start >= RATE_WINDOW_MS) this.table.delete(k);
        if (this.table.size >= RATE_TABLE_MAX) return false;
      }
      e = { start: now, count: 0 };
      this.table.set(mac, e);
    }
    e.count += 1;
    return e.count <= RATE_MAX_PER_WINDOW;
  }
}

/** What a reply needs from the request, decided before encoding. */
interface Reply {
  type: number;
  request: DhcpPacket;
  choice: BootChoice;
}

/** Builds our OFFER/ACK (exported for the unit tests' golden bytes). */
export function buildProxyReply(serverAddress: string, r: Reply): Buffer {
  const { request: q, choice } = r;
  const options: Array<[number, Buffer]> = [
    [DhcpOption.MESSAGE_TYPE, Buffer.from([r.type])],
    [DhcpOption.SERVER_ID, ipv4ToBuffer(serverAddress)],
    // PXE 2.1 §2.2.5: a ProxyDHCP offer carries the "PXEClient" class id.
    [DhcpOption.VENDOR_CLASS_ID, Buffer.from('PXEClient', 'latin1')],
  ];
  const machineId = q.options.get(DhcpOption.CLIENT_MACHINE_ID);
  if (machineId && getClientMachineId(q.options)) options.push([DhcpOption.CLIENT_MACHINE_ID, machineId]);
  options.push([DhcpOption.VENDOR_SPECIFIC, pxeVendorOptions()]);
  options.push([DhcpOption.BOOTFILE_NAME, Buffer.from(choice.filename, 'latin1')]);
  const fileFits = Buffer.byteLength(choice.filename, 'latin1') < 128;
  const toBroadcast = r.type === DhcpMessageType.OFFER && q.ciaddr === '0.0.0.0' && q.giaddr === '0.0.0.0';
  return encodeDhcpPacket({
    op: BOOTREPLY,
    htype: q.htype,
    hlen: q.hlen,
    xid: q.xid,
    // Like dnsmasq: a reply we broadcast says so, so clients that check the flag accept it.
    flags: toBroadcast ? q.flags | FLAG_BROADCAST : q.flags,
    ciaddr: r.type === DhcpMessageType.ACK ? q.ciaddr : '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: choice.nextServer ?? serverAddress,
    giaddr: q.giaddr,
    chaddr: q.chaddr,
    // A long URL only fits option 67; an empty `file` makes clients read the option.
    file: fileFits ? choice.filename : undefined,
    options,
  });
}

/**
 * Where a reply to a DISCOVER goes (RFC 2131 §4.1): to the relay if there is
 * one, to ciaddr if the client has an address, else broadcast. The "unicast
 * to yiaddr by chaddr" case needs an ARP entry we cannot make from userspace,
 * and our yiaddr is 0.0.0.0 anyway, so it is broadcast too.
 */
function discoverDestination(q: DhcpPacket, dhcpPort: number): { address: string; port: number } {
  if (q.giaddr !== '0.0.0.0') return { address: q.giaddr, port: dhcpPort };
  if (q.ciaddr !== '0.0.0.0') return { address: q.ciaddr, port: CLIENT_PORT };
  return { address: BROADCAST, port: CLIENT_PORT };
}

function bindSocket(sock: dgram.Socket, opts: dgram.BindOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    sock.bind(opts, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

function closeSocket(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

export async function startProxyDhcp(opts: ProxyDhcpOptions): Promise<ProxyDhcpServer> {
  const log = opts.logger ?? silentLogger;
  if (!isIpv4(opts.serverAddress)) throw new RangeError(`serverAddress is not an IPv4 address: ${opts.serverAddress}`);
  const dhcpPortWanted = opts.ports?.dhcp ?? 67;
  const pxePortWanted = opts.ports?.pxe ?? 4011;
  const stats: ProxyDhcpStats = {
    received: 0, offers: 0, acks: 0, ignored: 0, notPxe: 0, malformed: 0,
    oversized: 0, rateLimited: 0, noBootFile: 0, sendErrors: 0,
  };
  const limiter = new RateLimiter();

  const dhcpSock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const pxeSock = dgram.createSocket({ type: 'udp4' });
  let boundToDevice = false;
  try {
    const native = nativeNet();
    if (native) {
      // Throws ENODEV for a missing interface: better than serving the wrong one.
      const fd = native.udp4SocketOnDevice(opts.interface, dhcpPortWanted);
      await bindSocket(dhcpSock, { fd });
      boundToDevice = true;
    } else {
      log.warn('proxy dhcp: native addon unavailable, port 67 not restricted to the interface', {
        interface: opts.interface, cause: String(nativeNetLoadError()),
      });
      await bindSocket(dhcpSock, { port: dhcpPortWanted, address: '0.0.0.0' });
      dhcpSock.setBroadcast(true);
    }
    await bindSocket(pxeSock, { port: pxePortWanted, address: opts.serverAddress });
  } catch (err) {
    await Promise.all([closeSocket(dhcpSock), closeSocket(pxeSock)]);
    throw err;
  }
  const dhcpPort = dhcpSock.address().port;
  const pxePort = pxeSock.address().port;

  const send = (sock: dgram.Socket, buf: Buffer, address: string, port: number, what: string): void => {
    sock.send(buf, port, address, (err) => {
      if (err) {
        stats.sendErrors += 1;
        log.warn('proxy dhcp: send failed', { what, address, port, err });
      }
    });
  };

  const handle = (onPxePort: boolean, msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    stats.received += 1;
    if (msg.length > MAX_DATAGRAM) {
      stats.oversized += 1;
      return;
    }
    const d = decodeDhcpPacket(msg);
    if (!d.ok) {
      stats.malformed += 1;
      log.debug('proxy dhcp: malformed packet', { from: rinfo.address, error: d.error, detail: d.detail });
      return;
    }
    const q = d.packet;
    if (q.op !== BOOTREQUEST || q.hlen === 0) {
      stats.ignored += 1;
      return;
    }
    if (!isPxeClient(q.options)) {
      stats.notPxe += 1; // not ours: the site server answers it
      return;
    }
    const mac = clientMac(q);
    if (!limiter.allow(mac, Date.now())) {
      stats.rateLimited += 1;
      return;
    }
    const type = getMessageType(q.options);
    let replyType: number;
    if (!onPxePort && type === DhcpMessageType.DISCOVER) replyType = DhcpMessageType.OFFER;
    else if (onPxePort && type === DhcpMessageType.REQUEST) replyType = DhcpMessageType.ACK;
    else {
      // REQUESTs on 67 select or renew the site server's lease; nothing for us.
      stats.ignored += 1;
      log.debug('proxy dhcp: ignored', { mac, type: messageTypeName(type), port: onPxePort ? pxePort : dhcpPort });
      return;
    }

    const classes = getUserClasses(q.options);
    const client: ProxyDhcpClient = {
      mac,
      arch: getClientArch(q.options),
      isIpxe: isIpxeClient(q.options),
      userClass: classes?.join(','),
    };
    const uuid = getClientMachineId(q.options);
    if (uuid) client.uuid = uuid;
    let choice: BootChoice | undefined;
    try {
      choice = opts.bootFile(client);
    } catch (err) {
      log.error('proxy dhcp: bootFile callback threw', { mac, err });
      choice = undefined;
    }
    if (!choice) {
      stats.noBootFile += 1;
      log.debug('proxy dhcp: no boot file for client', { mac, arch: clientArchName(client.arch) });
      return;
    }
    let reply: Buffer;
    try {
      reply = buildProxyReply(opts.serverAddress, { type: replyType, request: q, choice });
    } catch (err) {
      // A bad nextServer or filename from the callback: a caller bug, logged, not fatal.
      log.error('proxy dhcp: cannot build reply', { mac, err });
      return;
    }

    if (replyType === DhcpMessageType.OFFER) {
      const to = discoverDestination(q, dhcpPort);
      send(dhcpSock, reply, to.address, to.port, 'offer');
      stats.offers += 1;
      log.info('proxy dhcp: offer', {
        mac, arch: clientArchName(client.arch), ipxe: client.isIpxe, file: choice.filename, to: to.address,
      });
    } else {
      // ProxyDHCPREQUEST: the client has its address; answer where it asked from.
      if (rinfo.address === '0.0.0.0' || rinfo.port === 0) {
        stats.ignored += 1;
        return;
      }
      send(pxeSock, reply, rinfo.address, rinfo.port, 'ack');
      stats.acks += 1;
      log.info('proxy dhcp: ack', { mac, arch: clientArchName(client.arch), file: choice.filename, to: rinfo.address });
    }
  };

  // Never crash on a packet: the handler is pure bookkeeping around the
  // codec, but a bug there must cost one packet, not the daemon.
  const guard = (onPxePort: boolean) => (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    try {
      handle(onPxePort, msg, rinfo);
    } catch (err) {
      stats.malformed += 1;
      log.error('proxy dhcp: packet handler failed', { from: rinfo.address, err });
    }
  };
  dhcpSock.on('message', guard(false));
  pxeSock.on('message', guard(true));
  dhcpSock.on('error', (err) => log.error('proxy dhcp: socket error', { port: dhcpPort, err }));
  pxeSock.on('error', (err) => log.error('proxy dhcp: socket error', { port: pxePort, err }));
  log.info('proxy dhcp: listening', {
    interface: opts.interface, server: opts.serverAddress, dhcp: dhcpPort, pxe: pxePort, boundToDevice,
  });

  let closed: Promise<void> | undefined;
  return {
    boundToDevice,
    stats: () => ({ ...stats }),
    ports: () => ({ dhcp: dhcpPort, pxe: pxePort }),
    close() {
      closed ??= Promise.all([closeSocket(dhcpSock), closeSocket(pxeSock)]).then(() => undefined);
      return closed;
    },
  };
}
