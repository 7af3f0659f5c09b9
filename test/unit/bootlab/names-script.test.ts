// The names a lab derives, the iPXE scripts it hands out (exact text), the
// HTTP routes, and the boot file a PXE client is told to fetch.

import { describe, expect, it } from 'vitest';
import { clientBackstoreName, clientInitiatorIqn, defaultClientName, labTargetIqn, overlayPath, parseMac } from '../../../src/bootlab/names.js';
import { clientScript, defaultScript, rootPath, unknownClientScript } from '../../../src/bootlab/script.js';
import { routeOf } from '../../../src/bootlab/http-server.js';
import { bootFileFor } from '../../../src/daemon/runtime-bootlab.js';
import { iscsiNameProblem } from '../../../src/protocols/iscsi/names.js';
import { BootlabSchema } from '../../../src/bootlab/schema.js';

describe('MACs', () => {
  it('accepts the usual spellings and gives one canonical form', () => {
    for (const m of ['52:54:00:12:34:56', '52-54-00-12-34-56', '525400123456', '52:54:00:12:34:56'.toUpperCase(), ' 52:54:00:12:34:56 ']) expect(parseMac(m)).toBe('52:54:00:12:34:56');
  });
  it('refuses malformed and multicast addresses', () => {
    for (const m of ['52:54:00:12:34', '52:54:00:12:34:5g', '52:54-00:12:34:56', '5254001234567', '', '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff']) expect(parseMac(m), m).toBeUndefined();
  });
});

describe('derived names', () => {
  it('are valid iSCSI names and stable', () => {
    expect(labTargetIqn('lab1')).toBe('iqn.2026-11.io.lunkit:bootlab.lab1');
    expect(clientInitiatorIqn('lab1', 'pc01')).toBe('iqn.2026-11.io.lunkit.bootlab:lab1.pc01');
    expect(iscsiNameProblem(labTargetIqn('a-long-lab-name-2026'))).toBeUndefined();
    expect(iscsiNameProblem(clientInitiatorIqn('lab1', defaultClientName('52:54:00:12:34:56')))).toBeUndefined();
    expect(clientBackstoreName('lab1', 'pc01')).toBe('bootlab.lab1.pc01');
    expect(overlayPath('/srv/lab1', 'pc01', 3)).toBe('/srv/lab1/pc01.3.qcow2');
  });
});

describe('iPXE scripts', () => {
  const base = { lab: 'lab1', mac: '52:54:00:12:34:56', name: 'pc01', server: '192.0.2.1', iscsiPort: 3260, targetIqn: labTargetIqn('lab1'), initiatorIqn: clientInitiatorIqn('lab1', 'pc01') };
  it('a client script names the initiator and sanboots LUN 0 of the lab target', () => {
    expect(clientScript(base)).toBe(
      [
        '#!ipxe',
        '# lunkit boot lab lab1: client pc01 (52:54:00:12:34:56)',
        'set initiator-iqn iqn.2026-11.io.lunkit.bootlab:lab1.pc01',
        'echo lunkit boot lab lab1: booting pc01 from 192.0.2.1',
        ':boot',
        'sanboot iscsi:192.0.2.1::3260:0:iqn.2026-11.io.lunkit:bootlab.lab1 || goto failed',
        ':failed',
        'echo sanboot failed; retrying in 10 seconds',
        'sleep 10',
        'goto boot',
        '',
      ].join('\n'),
    );
  });
  it('carries CHAP credentials, and refuses values iPXE would mangle', () => {
    const s = clientScript({ ...base, chap: { userid: 'lab1.pc01', password: '0123456789abcdef01234567' } });
    expect(s).toContain('set username lab1.pc01\nset password 0123456789abcdef01234567\n');
    expect(() => clientScript({ ...base, chap: { userid: 'u', password: 'has ${net0/mac} in it' } })).toThrow(/cannot carry/);
  });
  it('default and unknown-client scripts', () => {
    expect(defaultScript('http://192.0.2.1:80')).toBe('#!ipxe\nchain http://192.0.2.1:80/boot/${netX/mac}.ipxe || chain http://192.0.2.1:80/boot/${net0/mac}.ipxe\n');
    const u = unknownClientScript('lab1', '52:54:00:00:00:99', 'http://192.0.2.1:80');
    expect(u).toContain('lunkit bootlab client add lab1 52:54:00:00:00:99');
    expect(u).toContain('chain --replace http://192.0.2.1:80/boot/52:54:00:00:00:99.ipxe');
    expect(rootPath('10.0.0.1', 3261, 0, 'iqn.x:y')).toBe('iscsi:10.0.0.1::3261:0:iqn.x:y');
  });
});

describe('HTTP routes', () => {
  it('maps paths to what they ask for', () => {
    expect(routeOf('/boot/default.ipxe')).toEqual({ kind: 'default' });
    expect(routeOf('/boot/52:54:00:12:34:56.ipxe')).toEqual({ kind: 'client', mac: '52:54:00:12:34:56' });
    expect(routeOf('/boot/52%3A54%3A00%3A12%3A34%3A56.ipxe?x=1')).toEqual({ kind: 'client', mac: '52:54:00:12:34:56' });
    expect(routeOf('/boot/nonsense.ipxe')).toEqual({ kind: 'bad-mac', given: 'nonsense' });
    expect(routeOf('/boot/%E0%A4%A.ipxe').kind).toBe('bad-mac');
    expect(routeOf('/etc/passwd')).toEqual({ kind: 'none' });
    expect(routeOf('/boot/../x.ipxe').kind).toBe('none');
  });
});

describe('boot file by client kind', () => {
  const lab = BootlabSchema.parse({ golden: '/g.img', goldenFormat: 'raw', listen: '192.0.2.1', dir: '/srv/lab1' });
  it('BIOS gets undionly.kpxe, UEFI ipxe.efi, iPXE its script URL', () => {
    expect(bootFileFor(lab, { arch: 0, isIpxe: false })).toEqual({ filename: 'undionly.kpxe', nextServer: '192.0.2.1' });
    expect(bootFileFor(lab, { arch: undefined, isIpxe: false })).toEqual({ filename: 'undionly.kpxe', nextServer: '192.0.2.1' });
    expect(bootFileFor(lab, { arch: 7, isIpxe: false }).filename).toBe('ipxe.efi');
    expect(bootFileFor(lab, { arch: 9, isIpxe: false }).filename).toBe('ipxe.efi');
    expect(bootFileFor(lab, { arch: 0, isIpxe: true }).filename).toBe('http://192.0.2.1:80/boot/default.ipxe');
  });
});
