// DHCP options (RFC 2132 and the PXE-related RFCs): codes, the TLV walk, and
// typed readers/writers for the options a proxy DHCP server (PXE 2.1 §2.2.5)
// reads and writes. Pure functions over Buffers; nothing here throws on wire
// input: readers return undefined when an option is absent or malformed.

/** Option codes used by the boot lab (RFC 2132 unless noted). */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  HOST_NAME: 12,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MAX_MESSAGE_SIZE: 57,
  VENDOR_CLASS_ID: 60,
  CLIENT_ID: 61,
  TFTP_SERVER_NAME: 66,
  BOOTFILE_NAME: 67,
  USER_CLASS: 77, // RFC 3004
  CLIENT_ARCH: 93, // RFC 4578 §2.1
  CLIENT_NDI: 94, // RFC 4578 §2.2
  CLIENT_MACHINE_ID: 97, // RFC 4578 §2.3 (UUID/GUID)
  IPXE_ENCAP: 175, // iPXE's encapsulated options; only iPXE sends it
  END: 255,
} as const;

/** Option 53 values (RFC 2132 §9.6). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

const MESSAGE_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(DhcpMessageType).map(([name, v]) => [v, `DHCP${name}`]),
);

/** "DHCPDISCOVER" etc., for logs; unknown values print as "DHCP?<n>". */
export function messageTypeName(type: number | undefined): string {
  if (type === undefined) return 'BOOTP';
  return MESSAGE_TYPE_NAMES[type] ?? `DHCP?${type}`;
}

/**
 * Client system architecture types, option 93 (RFC 4578 §2.1 and the IANA
 * "Processor Architecture Types" registry that replaced its table). Values 7
 * and 9 are both seen from x86-64 UEFI firmware: RFC 4578 listed 7 as "EFI BC"
 * and 9 as "EFI x86-64", and the registry later named 7 "x64 UEFI" (errata
 * 4624); treat both as x64 UEFI.
 */
export const ClientArch = {
  BIOS_X86: 0,
  NEC_PC98: 1,
  EFI_ITANIUM: 2,
  DEC_ALPHA: 3,
  ARC_X86: 4,
  INTEL_LEAN: 5,
  EFI_IA32: 6,
  EFI_X64: 7,
  EFI_XSCALE: 8,
  EFI_X86_64: 9,
  EFI_ARM32: 10,
  EFI_ARM64: 11,
  EFI_IA32_HTTP: 15,
  EFI_X64_HTTP: 16,
  EFI_ARM32_HTTP: 18,
  EFI_ARM64_HTTP: 19,
  BIOS_X86_HTTP: 20,
} as const;

const ARCH_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ClientArch).map(([name, v]) => [v, name]),
);

export function clientArchName(arch: number | undefined): string {
  if (arch === undefined) return 'unknown';
  return ARCH_NAMES[arch] ?? `arch-${arch}`;
}

/** True for the UEFI architectures (everything but BIOS x86 and its HTTP variant, and the pre-EFI ones). */
export function isUefiArch(arch: number | undefined): boolean {
  return arch !== undefined && arch >= ClientArch.EFI_IA32 && arch !== ClientArch.BIOS_X86_HTTP;
}

/** PXE vendor-specific (option 43) suboptions, PXE 2.1 §2.4.1 table 2-1. */
export const PxeSuboption = {
  MTFTP_IP: 1,
  DISCOVERY_CONTROL: 6,
  MCAST_ADDR: 7,
  BOOT_SERVERS: 8,
  BOOT_MENU: 9,
  MENU_PROMPT: 10,
  BOOT_ITEM: 71,
} as const;

/**
 * PXE_DISCOVERY_CONTROL bits (PXE 2.1 table 2-1). A proxy without a boot menu
 * sets USE_BOOTFILE alone, as dnsmasq's proxy mode does: "a boot file name is
 * present in this offer: download it, do not run boot server discovery".
 */
export const PxeDiscovery = {
  DISABLE_BROADCAST: 1,
  DISABLE_MULTICAST: 2,
  ONLY_LISTED_SERVERS: 4,
  USE_BOOTFILE: 8,
} as const;

// ---------------------------------------------------------------------------
// The option set

/**
 * Decoded options: code -> value. Instances of one code that were split over
 * several TLVs (RFC 3396) are already concatenated, in the order the RFC gives
 * (options field, then file, then sname). Values are views into the packet
 * unless a concatenation had to copy.
 */
export type DhcpOptions = Map<number, Buffer>;

export type OptionWalkResult =
  | { ok: true; ended: boolean; end: number }
  | { ok: false; error: 'option-overrun'; at: number };

/**
 * Walks one option area (the options field, or an overloaded sname/file),
 * appending each TLV's data to `parts`. Stops at END. `ended` says whether an
 * END was seen; `end` is the offset just after it (or the area's length).
 */
export function walkOptions(area: Buffer, parts: Map<number, Buffer[]>): OptionWalkResult {
  let i = 0;
  while (i < area.length) {
    const code = area[i];
    if (code === DhcpOption.PAD) {
      i += 1;
      continue;
    }
    if (code === DhcpOption.END) return { ok: true, ended: true, end: i + 1 };
    if (i + 1 >= area.length) return { ok: false, error: 'option-overrun', at: i };
    const len = area[i + 1];
    if (i + 2 + len > area.length) return { ok: false, error: 'option-overrun', at: i };
    const value = area.subarray(i + 2, i + 2 + len);
    const list = parts.get(code);
    if (list) list.push(value);
    else parts.set(code, [value]);
    i += 2 + len;
  }
  return { ok: true, ended: false, end: area.length };
}

/** Joins split instances (RFC 3396 §7); a single instance stays a view. */
export function joinOptionParts(parts: Map<number, Buffer[]>): DhcpOptions {
  const out: DhcpOptions = new Map();
  for (const [code, list] of parts) out.set(code, list.length === 1 ? list[0] : Buffer.concat(list));
  return out;
}

/**
 * Encodes options in insertion order, splitting values longer than 255 bytes
 * into consecutive TLVs of the same code (RFC 3396 §5), then END.
 */
export function encodeOptions(options: Iterable<readonly [number, Buffer]>): Buffer {
  const chunks: Buffer[] = [];
  for (const [code, value] of options) {
    if (code === DhcpOption.PAD || code === DhcpOption.END) continue;
    if (value.length === 0) {
      chunks.push(Buffer.from([code, 0]));
      continue;
    }
    for (let off = 0; off < value.length; off += 255) {
      const part = value.subarray(off, Math.min(off + 255, value.length));
      chunks.push(Buffer.from([code, part.length]), part);
    }
  }
  chunks.push(Buffer.from([DhcpOption.END]));
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------
// Small value codecs

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** "10.0.0.1" -> 4 bytes; throws on a malformed address (caller input, not wire input). */
export function ipv4ToBuffer(addr: string): Buffer {
  const m = IPV4.exec(addr);
  if (!m) throw new RangeError(`not an IPv4 address: ${addr}`);
  const bytes = m.slice(1, 5).map(Number);
  if (bytes.some((b) => b > 255)) throw new RangeError(`not an IPv4 address: ${addr}`);
  return Buffer.from(bytes);
}

export function isIpv4(addr: string): boolean {
  const m = IPV4.exec(addr);
  return m !== null && m.slice(1, 5).every((b) => Number(b) <= 255);
}

export function bufferToIpv4(buf: Buffer, offset = 0): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** Formats a hardware address as lower-case colon-separated hex (aa:bb:cc:dd:ee:ff). */
export function formatMac(hw: Buffer): string {
  return [...hw].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

// ---------------------------------------------------------------------------
// Typed readers (undefined when absent or malformed)

export function getMessageType(o: DhcpOptions): number | undefined {
  const v = o.get(DhcpOption.MESSAGE_TYPE);
  return v && v.length === 1 ? v[0] : undefined;
}

export function getServerId(o: DhcpOptions): string | undefined {
  const v = o.get(DhcpOption.SERVER_ID);
  return v && v.length === 4 ? bufferToIpv4(v) : undefined;
}

export function getParameterRequestList(o: DhcpOptions): number[] | undefined {
  const v = o.get(DhcpOption.PARAMETER_REQUEST_LIST);
  return v ? [...v] : undefined;
}

/** Option 60 as text (latin1: it is an opaque byte string, usually ASCII). */
export function getVendorClass(o: DhcpOptions): string | undefined {
  return o.get(DhcpOption.VENDOR_CLASS_ID)?.toString('latin1');
}

export function getClientId(o: DhcpOptions): Buffer | undefined {
  return o.get(DhcpOption.CLIENT_ID);
}

/**
 * Option 77. RFC 3004 §4 defines it as a list of length-prefixed class names,
 * but iPXE (and older PXE stacks) send one plain string ("iPXE"). The value is
 * read as RFC 3004 only when its length prefixes exactly tile it with non-empty
 * names; otherwise it is one plain string. A printable plain string cannot be
 * misread unless it is longer than its own first character code (32+ bytes
 * starting with a space), which is harmless for the comparisons made here.
 */
export function decodeUserClass(v: Buffer): string[] {
  const names: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i];
    if (len === 0 || i + 1 + len > v.length) return [v.toString('latin1')];
    names.push(v.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return names.length > 0 ? names : [v.toString('latin1')];
}

export function getUserClasses(o: DhcpOptions): string[] | undefined {
  const v = o.get(DhcpOption.USER_CLASS);
  return v && v.length > 0 ? decodeUserClass(v) : undefined;
}

/** Encodes user classes in RFC 3004 form (names of 1..255 bytes). */
export function encodeUserClass(names: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const name of names) {
    const b = Buffer.from(name, 'latin1');
    if (b.length === 0 || b.length > 255) throw new RangeError('user class names are 1..255 bytes');
    parts.push(Buffer.from([b.length]), b);
  }
  return Buffer.concat(parts);
}

/** Option 93: a list of 16-bit architecture types (RFC 4578 §2.1: n*2 octets). */
export function getClientArchList(o: DhcpOptions): number[] | undefined {
  const v = o.get(DhcpOption.CLIENT_ARCH);
  if (!v || v.length < 2 || v.length % 2 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
  return out;
}

/**
 * The client's architecture: option 93's first entry, else the "Arch:NNNNN"
 * field of a "PXEClient:Arch:xxxxx:UNDI:yyyzzz" vendor class (PXE 2.1 §2.2.1),
 * which carries the same number for clients that omit option 93.
 */
export function getClientArch(o: DhcpOptions): number | undefined {
  const list = getClientArchList(o);
  if (list) return list[0];
  const m = /^PXEClient:Arch:(\d{5})/.exec(getVendorClass(o) ?? '');
  return m ? Number(m[1]) : undefined;
}

export interface ClientNdi {
  /** 1 = UNDI (RFC 4578 §2.2). */
  type: number;
  major: number;
  minor: number;
}

export function getClientNdi(o: DhcpOptions): ClientNdi | undefined {
  const v = o.get(DhcpOption.CLIENT_NDI);
  return v && v.length === 3 ? { type: v[0], major: v[1], minor: v[2] } : undefined;
}

/**
 * Option 97 (RFC 4578 §2.3): type 0 then a 16-byte GUID. Returns the 16 GUID
 * bytes as sent (PXE stores the first three fields little-endian; we never
 * reorder, we only echo the option back and key on the raw bytes).
 */
export function getClientMachineId(o: DhcpOptions): Buffer | undefined {
  const v = o.get(DhcpOption.CLIENT_MACHINE_ID);
  return v && v.length === 17 && v[0] === 0 ? v.subarray(1) : undefined;
}

/** Formats GUID bytes in the usual 8-4-4-4-12 form, in wire order. */
export function formatGuid(g: Buffer): string {
  const h = g.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The vendor class of a PXE client starts with "PXEClient" (PXE 2.1 §2.2.1). */
export function isPxeClient(o: DhcpOptions): boolean {
  return getVendorClass(o)?.startsWith('PXEClient') === true;
}

/**
 * iPXE announces itself with option 175 (its encapsulated feature flags) and,
 * by default, user class "iPXE". Either is enough: a chainloaded iPXE built
 * without one of them still sends the other.
 */
export function isIpxeClient(o: DhcpOptions): boolean {
  if (o.has(DhcpOption.IPXE_ENCAP)) return true;
  return getUserClasses(o)?.includes('iPXE') === true;
}

// ---------------------------------------------------------------------------
// Encapsulated suboptions (option 43 for PXE, option 175 for iPXE)

/** Decodes a suboption area (same TLV rules as options: pad, end). */
export function decodeSuboptions(v: Buffer): Map<number, Buffer> | undefined {
  const parts = new Map<number, Buffer[]>();
  const r = walkOptions(v, parts);
  return r.ok ? joinOptionParts(parts) : undefined;
}

/** Encodes suboptions followed by END, as PXE 2.1 §2.4.1 asks for option 43. */
export function encodeSuboptions(subs: Iterable<readonly [number, Buffer]>): Buffer {
  const chunks: Buffer[] = [];
  for (const [code, value] of subs) {
    if (value.length > 255) throw new RangeError('suboption longer than 255 bytes');
    chunks.push(Buffer.from([code, value.length]), value);
  }
  chunks.push(Buffer.from([DhcpOption.END]));
  return Buffer.concat(chunks);
}

/** Option 43 for a proxy offer that names the boot file itself (no menu, no discovery). */
export function pxeVendorOptions(discoveryControl: number = PxeDiscovery.USE_BOOTFILE): Buffer {
  return encodeSuboptions([[PxeSuboption.DISCOVERY_CONTROL, Buffer.from([discoveryControl])]]);
}
