// DHCP codec: golden bytes written out by hand (STYLE.md §13: never built by
// the production encoder), truncation at every offset, RFC 3396 splits,
// option 52 overload, and the PXE/iPXE client detection the proxy relies on.
import { describe, expect, it } from 'vitest';
import {
  ClientArch,
  DhcpMessageType,
  DhcpOption,
  clientMac,
  decodeDhcpPacket,
  decodeSuboptions,
  decodeUserClass,
  encodeDhcpPacket,
  encodeUserClass,
  formatGuid,
  getClientArch,
  getClientArchList,
  getClientId,
  getClientMachineId,
  getClientNdi,
  getMessageType,
  getParameterRequestList,
  getServerId,
  getUserClasses,
  getVendorClass,
  isIpxeClient,
  isPxeClient,
  isUefiArch,
  type DhcpPacket,
} from '../../../src/protocols/dhcp/index.js';
import { buildProxyReply } from '../../../src/bootlab/proxy-dhcp.js';

/** Naive hex assembler: whitespace and comments after '#' on each line are ignored. */
function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((l) => l.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (digits.length % 2 !== 0 || /[^0-9a-f]/i.test(digits)) throw new Error('bad hex');
  return Buffer.from(digits, 'hex');
}
const zeros = (n: number): string => '00'.repeat(n);
const ascii = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

const MAC = '52:54:00:12:34:56';
const GUID = '00112233445566778899aabbccddeeff';

/**
 * A DHCPDISCOVER as QEMU's iPXE ROM (e1000, BIOS) sends it, laid out from
 * iPXE's dhcp.c: 53, 57 = 1472, 93 = 0, 94 = UNDI 2.1, 60 PXEClient:Arch:
 * 00000:UNDI:002001, 77 "iPXE" (plain, not RFC 3004), 55, 175 (features),
 * 61 = hwtype 1 + MAC, 97 = type 0 + GUID, END, then zero padding.
 */
const IPXE_DISCOVER_HEADER = `
  01 01 06 00            # op BOOTREQUEST, htype Ethernet, hlen 6, hops 0
  6e d0 19 48            # xid
  00 04 00 00            # secs 4, flags 0 (unicast ok)
  00000000 00000000      # ciaddr, yiaddr
  00000000 00000000      # siaddr, giaddr
  525400123456 ${zeros(10)}  # chaddr
  ${zeros(64)}           # sname
  ${zeros(128)}          # file
  63 82 53 63            # magic cookie
`;
const IPXE_DISCOVER_OPTIONS = `
  35 01 01                                   # 53 DHCPDISCOVER
  39 02 05 c0                                # 57 max message size 1472
  5d 02 00 00                                # 93 arch 0 (BIOS x86)
  5e 03 01 02 01                             # 94 UNDI 2.1
  3c 20 ${ascii('PXEClient:Arch:00000:UNDI:002001')}   # 60 (32 bytes)
  4d 04 ${ascii('iPXE')}                     # 77 user class, plain string
  37 0d 01 03 06 07 0c 0f 11 1a 2b 3c 42 43 af   # 55 (13 codes)
  af 0a b1 05 01 80 86 10 0e eb 01 01        # 175 (10 bytes): bus id 177 = PCI 8086:100e, 235 = 1
  3d 07 01 525400123456                      # 61 client id
  61 11 00 ${GUID}                           # 97 type 0 + GUID
  ff                                         # END
`;
const DISCOVER_NO_PAD = hex(IPXE_DISCOVER_HEADER + IPXE_DISCOVER_OPTIONS);
// iPXE pads its packets; 20 zero bytes after END stand in for that padding.
const DISCOVER = Buffer.concat([DISCOVER_NO_PAD, Buffer.alloc(20)]);

function decodeOk(buf: Buffer): DhcpPacket {
  const r = decodeDhcpPacket(buf);
  if (!r.ok) throw new Error(`expected ok, got ${r.error}: ${r.detail}`);
  return r.packet;
}

describe('decode: a real iPXE DISCOVER', () => {
  const p = decodeOk(DISCOVER);

  it('reads the fixed fields', () => {
    expect(p.op).toBe(1);
    expect(p.htype).toBe(1);
    expect(p.hlen).toBe(6);
    expect(p.xid).toBe(0x6ed01948);
    expect(p.secs).toBe(4);
    expect(p.flags).toBe(0);
    expect([p.ciaddr, p.yiaddr, p.siaddr, p.giaddr]).toEqual(['0.0.0.0', '0.0.0.0', '0.0.0.0', '0.0.0.0']);
    expect(clientMac(p)).toBe(MAC);
    expect(p.sname).toBe('');
    expect(p.file).toBe('');
    expect(p.overload).toBe(0);
  });

  it('reads the typed options', () => {
    const o = p.options;
    expect(getMessageType(o)).toBe(DhcpMessageType.DISCOVER);
    expect(getVendorClass(o)).toBe('PXEClient:Arch:00000:UNDI:002001');
    expect(isPxeClient(o)).toBe(true);
    expect(getClientArchList(o)).toEqual([0]);
    expect(getClientArch(o)).toBe(ClientArch.BIOS_X86);
    expect(getClientNdi(o)).toEqual({ type: 1, major: 2, minor: 1 });
    expect(getUserClasses(o)).toEqual(['iPXE']);
    expect(isIpxeClient(o)).toBe(true);
    expect(getParameterRequestList(o)).toEqual([1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 175]);
    expect(getClientId(o)?.toString('hex')).toBe('01525400123456');
    expect(getClientMachineId(o)?.toString('hex')).toBe(GUID);
    expect(formatGuid(getClientMachineId(o)!)).toBe('00112233-4455-6677-8899-aabbccddeeff');
    expect(decodeSuboptions(o.get(DhcpOption.IPXE_ENCAP)!)?.get(0xeb)).toEqual(Buffer.from([1]));
    expect(getServerId(o)).toBeUndefined();
  });

  it('every truncation before END is an error, never a throw', () => {
    for (let n = 0; n < DISCOVER_NO_PAD.length; n++) {
      const r = decodeDhcpPacket(DISCOVER.subarray(0, n));
      expect(r.ok, `length ${n}`).toBe(false);
      if (!r.ok) expect(['truncated', 'bad-cookie', 'option-overrun', 'missing-end']).toContain(r.error);
    }
    // Cutting only the padding after END leaves a valid packet.
    for (let n = DISCOVER_NO_PAD.length; n <= DISCOVER.length; n++) expect(decodeDhcpPacket(DISCOVER.subarray(0, n)).ok).toBe(true);
  });
});

describe('decode: errors', () => {
  it('bad cookie (plain BOOTP)', () => {
    const b = Buffer.from(DISCOVER);
    b.writeUInt32BE(0, 236);
    expect(decodeDhcpPacket(b)).toMatchObject({ ok: false, error: 'bad-cookie' });
  });
  it('hlen larger than chaddr', () => {
    const b = Buffer.from(DISCOVER);
    b[2] = 17;
    expect(decodeDhcpPacket(b)).toMatchObject({ ok: false, error: 'bad-hlen' });
  });
  it('an option running past the end', () => {
    const b = hex(IPXE_DISCOVER_HEADER + '35 01 01  3c 20 505845');
    expect(decodeDhcpPacket(b)).toMatchObject({ ok: false, error: 'option-overrun' });
  });
  it('a code byte with no length byte', () => {
    expect(decodeDhcpPacket(hex(IPXE_DISCOVER_HEADER + '35'))).toMatchObject({ ok: false, error: 'option-overrun' });
  });
  it('no END option', () => {
    expect(decodeDhcpPacket(hex(IPXE_DISCOVER_HEADER + '35 01 01 00 00'))).toMatchObject({ ok: false, error: 'missing-end' });
  });
  it('option 52 out of range', () => {
    expect(decodeDhcpPacket(hex(IPXE_DISCOVER_HEADER + '34 01 04 ff'))).toMatchObject({ ok: false, error: 'bad-overload' });
    expect(decodeDhcpPacket(hex(IPXE_DISCOVER_HEADER + '34 02 01 01 ff'))).toMatchObject({ ok: false, error: 'bad-overload' });
  });
  it('random garbage never throws', () => {
    let s = 0x9e3779b9;
    const rnd = (): number => {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      return s;
    };
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(DISCOVER.subarray(0, 240 + (rnd() % 120)));
      for (let k = 0; k < 1 + (rnd() % 8); k++) b[240 + (rnd() % Math.max(1, b.length - 240))] = rnd() & 0xff;
      expect(() => decodeDhcpPacket(b)).not.toThrow();
      const junk = Buffer.alloc(rnd() % 600);
      for (let k = 0; k < junk.length; k++) junk[k] = rnd() & 0xff;
      if (junk.length >= 240) junk.writeUInt32BE(0x63825363, 236);
      expect(() => decodeDhcpPacket(junk)).not.toThrow();
    }
  });
});

describe('RFC 3396 long options and option 52 overload', () => {
  it('joins split instances of one code in order', () => {
    const p = decodeOk(hex(IPXE_DISCOVER_HEADER + `43 03 ${ascii('abc')} 35 01 01 43 02 ${ascii('de')} ff`));
    expect(p.options.get(DhcpOption.BOOTFILE_NAME)?.toString()).toBe('abcde');
  });

  it('encodes a 600-byte value as 255 + 255 + 90 and reads it back', () => {
    const long = Buffer.alloc(600, 0x61);
    const b = encodeDhcpPacket({ op: 2, xid: 1, chaddr: Buffer.alloc(6), options: [[DhcpOption.BOOTFILE_NAME, long]] });
    expect(b.subarray(240, 242)).toEqual(Buffer.from([67, 255]));
    expect(b.subarray(240 + 257, 240 + 259)).toEqual(Buffer.from([67, 255]));
    expect(b.subarray(240 + 514, 240 + 516)).toEqual(Buffer.from([67, 90]));
    expect(b[240 + 516 + 90]).toBe(0xff);
    expect(decodeOk(b).options.get(DhcpOption.BOOTFILE_NAME)).toEqual(long);
  });

  it('reads options from file then sname when option 52 = 3', () => {
    const sname = `43 02 ${ascii('yz')} ff`;
    const file = `43 02 ${ascii('mn')} 3c 09 ${ascii('PXEClient')} ff`;
    const b = hex(`
      01 01 06 00 00000001 0000 0000 ${zeros(16)} 525400123456 ${zeros(10)}
      ${sname} ${zeros(64 - 5)}
      ${file} ${zeros(128 - 16)}
      63825363
      35 01 01 34 01 03 43 02 ${ascii('ab')} ff`);
    const p = decodeOk(b);
    expect(p.overload).toBe(3);
    expect(p.file).toBe('');
    expect(p.sname).toBe('');
    // RFC 3396 §7: options field, then file, then sname.
    expect(p.options.get(DhcpOption.BOOTFILE_NAME)?.toString()).toBe('abmnyz');
    expect(isPxeClient(p.options)).toBe(true);
  });

  it('overload 1 leaves sname as a name; an overrun inside file is an error', () => {
    const ok = hex(`01 01 06 00 00000001 0000 0000 ${zeros(16)} ${zeros(16)}
      ${ascii('boothost')} ${zeros(56)} 35 01 01 ff ${zeros(124)} 63825363 34 01 01 ff`);
    const p = decodeOk(ok);
    expect(p.sname).toBe('boothost');
    expect(getMessageType(p.options)).toBe(1);
    const bad = hex(`01 01 06 00 00000001 0000 0000 ${zeros(16)} ${zeros(16)}
      ${zeros(64)} ${zeros(126)} 43 05 63825363 34 01 01 ff`);
    expect(decodeDhcpPacket(bad)).toMatchObject({ ok: false, error: 'option-overrun' });
  });
});

describe('client detection', () => {
  const withOptions = (opts: string): DhcpPacket => decodeOk(hex(IPXE_DISCOVER_HEADER + opts + ' ff'));

  it('user class: RFC 3004 counted form and iPXE plain string', () => {
    expect(decodeUserClass(Buffer.from('iPXE'))).toEqual(['iPXE']);
    expect(decodeUserClass(hex(`04 ${ascii('iPXE')}`))).toEqual(['iPXE']);
    expect(decodeUserClass(hex(`03 ${ascii('abc')} 02 ${ascii('de')}`))).toEqual(['abc', 'de']);
    expect(decodeUserClass(hex(`05 ${ascii('abc')}`))).toEqual(['\x05abc']);
    expect(encodeUserClass(['iPXE', 'x'])).toEqual(hex(`04 ${ascii('iPXE')} 01 78`));
  });

  it('iPXE by option 175 alone, or by user class alone; a PXE ROM is neither', () => {
    expect(isIpxeClient(withOptions(`af 03 eb 01 01`).options)).toBe(true);
    expect(isIpxeClient(withOptions(`4d 05 04 ${ascii('iPXE')}`).options)).toBe(true);
    const rom = withOptions(`35 01 01 5d 02 00 07 3c 20 ${ascii('PXEClient:Arch:00007:UNDI:003016')}`).options;
    expect(isIpxeClient(rom)).toBe(false);
    expect(isPxeClient(rom)).toBe(true);
    expect(getClientArch(rom)).toBe(ClientArch.EFI_X64);
    expect(isUefiArch(getClientArch(rom))).toBe(true);
  });

  it('architecture from option 93, else from the vendor class', () => {
    expect(getClientArch(withOptions(`5d 02 00 09`).options)).toBe(9);
    expect(getClientArch(withOptions(`5d 04 00 10 00 07`).options)).toBe(16);
    expect(getClientArch(withOptions(`3c 20 ${ascii('PXEClient:Arch:00006:UNDI:003016')}`).options)).toBe(6);
    expect(getClientArch(withOptions(`5d 01 00`).options)).toBeUndefined();
    expect(isUefiArch(ClientArch.BIOS_X86)).toBe(false);
    expect(isUefiArch(ClientArch.EFI_ARM64)).toBe(true);
  });

  it('non-PXE vendor classes are not PXE clients', () => {
    expect(isPxeClient(withOptions(`3c 08 ${ascii('MSFT 5.0')}`).options)).toBe(false);
    expect(isPxeClient(withOptions(`35 01 01`).options)).toBe(false);
  });
});

describe('our replies (golden)', () => {
  const request = decodeOk(DISCOVER);

  it('the OFFER to a BIOS DISCOVER', () => {
    const got = buildProxyReply('10.77.0.1', {
      type: DhcpMessageType.OFFER,
      request,
      choice: { filename: 'undionly.kpxe' },
    });
    const fileField = ascii('undionly.kpxe') + zeros(128 - 13);
    const want = hex(`
      02 01 06 00 6ed01948         # BOOTREPLY, same xid
      0000 8000                    # secs 0, broadcast flag (we broadcast it)
      00000000 00000000            # ciaddr, yiaddr 0.0.0.0: we hand out no address
      0a4d0001 00000000            # siaddr = next server (defaults to us), giaddr
      525400123456 ${zeros(10)}
      ${zeros(64)} ${fileField}
      63825363
      35 01 02                     # DHCPOFFER
      36 04 0a4d0001               # 54 server identifier
      3c 09 ${ascii('PXEClient')}  # 60
      61 11 00 ${GUID}             # 97 echoed
      2b 04 06 01 08 ff            # 43: PXE_DISCOVERY_CONTROL = 8 (use this file), END
      43 0d ${ascii('undionly.kpxe')}
      ff`);
    expect(got.toString('hex')).toBe(want.toString('hex'));
  });

  it('the ACK on 4011 keeps ciaddr, clears nothing else, and may carry a URL only in option 67', () => {
    const req = decodeOk(DISCOVER);
    req.ciaddr = '10.77.0.50';
    const url = 'http://10.77.0.1/boot/' + 'x'.repeat(120) + '.ipxe';
    const got = buildProxyReply('10.77.0.1', {
      type: DhcpMessageType.ACK,
      request: req,
      choice: { filename: url, nextServer: '10.77.0.2' },
    });
    const p = decodeOk(got);
    expect(p.op).toBe(2);
    expect(p.flags).toBe(0);
    expect(p.ciaddr).toBe('10.77.0.50');
    expect(p.yiaddr).toBe('0.0.0.0');
    expect(p.siaddr).toBe('10.77.0.2');
    expect(p.file).toBe('');
    expect(getMessageType(p.options)).toBe(DhcpMessageType.ACK);
    expect(p.options.get(DhcpOption.BOOTFILE_NAME)?.toString()).toBe(url);
    expect(got.length).toBeGreaterThanOrEqual(300);
  });
});
