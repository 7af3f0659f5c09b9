// The iscsi backstore type as the rest of lunkit sees it through the
// registry: its config schema, `lunkit backstore create iscsi` (no secret on
// the command line), listings with the URL redacted, the control methods
// (no resize), and the targetcli export naming the type LIO cannot hold.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackstoreConfigSchema, openBackstore } from '../../../src/backstores/registry.js';
import { backstoreRows } from '../../../src/cli/commands/backstore.js';
import { UsageError } from '../../../src/cli/output.js';
import { backstoreCreateParams } from '../../../src/cli/params.js';
import { buildTree, renderTree } from '../../../src/cli/tree.js';
import { emptyConfigDoc } from '../../../src/daemon/config-doc.js';
import { ControlError } from '../../../src/daemon/errors.js';
import { CONFIG_OPS } from '../../../src/daemon/config-ops.js';
import { exportTargetcli } from '../../../src/daemon/targetcli/to-targetcli.js';

const URL0 = 'iscsi://10.0.0.5:3261/iqn.2003-01.org.example:disk1/0';

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('no UsageError');
}

describe('iscsi backstore config', () => {
  it('takes a URL naming target and LUN, session options and CHAP', () => {
    const c = BackstoreConfigSchema.parse({ type: 'iscsi', url: URL0, connections: 4, erl: 2, chap: { userid: 'me', passwordFile: '/etc/lunkit/s' } });
    expect(c).toEqual({ type: 'iscsi', url: URL0, connections: 4, erl: 2, chap: { userid: 'me', passwordFile: '/etc/lunkit/s' }, readOnly: false, removable: false });
  });

  it.each([
    [{ type: 'iscsi', url: 'http://x/y/0' }, /start with iscsi:\/\//],
    [{ type: 'iscsi', url: 'iscsi://10.0.0.5/iqn.2003-01.org.example:disk1' }, /no LUN after the target name/],
    [{ type: 'iscsi', url: URL0, erl: 3 }, /./],
    [{ type: 'iscsi', url: URL0, chap: { userid: 'me' } }, /password or passwordFile/],
    [{ type: 'iscsi', url: URL0, chap: { userid: 'me', password: 'p', passwordFile: '/f' } }, /password or passwordFile/],
    [{ type: 'iscsi', url: URL0, mutualChap: { userid: 't', password: 'secret' } }, /mutual CHAP needs one-way CHAP/],
    [{ type: 'iscsi', url: URL0, size: '1G' }, /size/],
  ])('refuses %j', (raw, re) => {
    const r = BackstoreConfigSchema.safeParse(raw);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(re);
  });

  it('a URL with a password is shown redacted in backstore list and ls', () => {
    const doc = emptyConfigDoc();
    doc.backstores.far = BackstoreConfigSchema.parse({ type: 'iscsi', url: 'iscsi://me%sekrit12345@10.0.0.5/iqn.2003-01.org.example:d/1' });
    const rows = backstoreRows(doc);
    expect(rows).toEqual([['far', 'iscsi', '-', 'iscsi://me:***@10.0.0.5/iqn.2003-01.org.example:d/1', '']]);
    const text = renderTree(buildTree(doc), 10);
    expect(text).toContain('o- iscsi ... [Storage Objects: 1]');
    expect(text).toContain('o- far ... [iscsi://me:***@10.0.0.5/iqn.2003-01.org.example:d/1]');
    expect(text).not.toContain('sekrit');
  });

  it('reads a CHAP secret file when it opens, and says which file it could not read', async () => {
    const c = BackstoreConfigSchema.parse({ type: 'iscsi', url: 'iscsi://127.0.0.1:1/iqn.2003-01.org.example:d/0', chap: { userid: 'me', passwordFile: '/nonexistent/lunkit-secret' } });
    await expect(openBackstore('far', c)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('/nonexistent/lunkit-secret') });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunkit-chap-'));
    try {
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '\n');
      const c2 = BackstoreConfigSchema.parse({ type: 'iscsi', url: 'iscsi://127.0.0.1:1/iqn.2003-01.org.example:d/0', chap: { userid: 'me', passwordFile: empty } });
      await expect(openBackstore('far', c2)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('no secret') });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lunkit backstore create iscsi', () => {
  it('builds the config from the options; the secret stays in its file', () => {
    expect(
      backstoreCreateParams({ type: 'iscsi', name: 'far', url: URL0, connections: 2, erl: 1, chapUserid: 'me', chapPasswordFile: 'far.secret', readOnly: true, cwd: '/etc/lunkit' }),
    ).toEqual({
      name: 'far',
      backstore: { type: 'iscsi', url: URL0, connections: 2, erl: 1, chap: { userid: 'me', passwordFile: '/etc/lunkit/far.secret' }, readOnly: true },
    });
  });

  it.each([
    [{ type: 'iscsi', name: 'd' }, /needs --url iscsi:\/\//],
    [{ type: 'iscsi', name: 'd', url: 'iscsi://me%pw@10.0.0.5/iqn.x:y/0' }, /keep CHAP secrets off the command line/],
    [{ type: 'iscsi', name: 'd', url: `${URL0}?target_user=t&target_password=p` }, /keep CHAP secrets off the command line/],
    [{ type: 'iscsi', name: 'd', url: URL0, size: '1G' }, /--size does not apply to a iscsi backstore/],
    [{ type: 'iscsi', name: 'd', url: URL0, chapUserid: 'me' }, /--chap-userid and --chap-password-file go together/],
    [{ type: 'iscsi', name: 'd', url: URL0, mutualChapUserid: 't', mutualChapPasswordFile: '/f' }, /mutual CHAP needs --chap-userid/],
    [{ type: 'iscsi', name: 'd', url: URL0, connections: 0 }, /--connections must be an integer 1..65535/],
    [{ type: 'iscsi', name: 'd', url: URL0, erl: 3 }, /--erl is 0, 1 or 2/],
    [{ type: 'ramdisk', name: 'd', size: '1M', connections: 2 }, /--connections does not apply to a ramdisk backstore/],
  ])('refuses %j', (args, re) => {
    expect(usage(() => backstoreCreateParams(args)).message).toMatch(re);
  });
});

describe('the daemon and targetcli through the registry', () => {
  it('backstore.create checks the iscsi config; resize is refused with the reason', () => {
    const doc = CONFIG_OPS['backstore.create'](emptyConfigDoc(), { name: 'far', backstore: { type: 'iscsi', url: URL0 } }).doc;
    expect(doc.backstores.far).toMatchObject({ type: 'iscsi', url: URL0 });
    let err: unknown;
    try {
      CONFIG_OPS['backstore.resize'](doc, { name: 'far', size: '1G' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).message).toBe(`backstore "far" is an iSCSI initiator: its size is the remote LUN's`);
  });

  it('the targetcli export names the type LIO cannot hold and leaves its LUNs out', () => {
    const IQN = 'iqn.2026-11.io.lunkit:t1';
    const { doc, unsupported } = exportTargetcli({
      backstores: { far: { type: 'iscsi', url: 'iscsi://me%sekrit12345@10.0.0.5/iqn.2003-01.org.example:d/1' } },
      iscsi: { targets: { [IQN]: { tpgs: { '1': { portals: ['127.0.0.1:3260'], luns: { '0': 'far' }, attributes: { generateNodeAcls: true } } } } } },
    });
    expect(doc.storage_objects).toEqual([]);
    expect(unsupported).toEqual([
      'backstores.far (iscsi iscsi://me:***@10.0.0.5/iqn.2003-01.org.example:d/1): LIO has no iSCSI initiator backstore; LUNs using it are left out',
      `iscsi.targets["${IQN}"].tpgs["1"].luns["0"] (far): its backstore cannot move to LIO; LUN left out`,
    ]);
  });
});
