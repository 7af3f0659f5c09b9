import { describe, expect, it } from 'vitest';
import { KEY_TABLE, KEYS, KeyNegotiator, parseNumericValue } from '../../../src/protocols/iscsi/keys.js';

type Pairs = Array<[string, string]>;
const target = (local: Record<string, string> = {}, opts = { discovery: false, leading: true }) =>
  new KeyNegotiator('target', local, opts);
const reply = (pairs: Pairs, key: string) => pairs.filter(([k]) => k === key).map(([, v]) => v);

// What libiscsi 1.19 sends in its operational-stage login PDU (lib/login.c).
const LIBISCSI_OFFER: Pairs = [
  ['InitiatorName', 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test'],
  ['TargetName', 'iqn.2024-01.org.lunkit:t1'],
  ['SessionType', 'Normal'],
  ['HeaderDigest', 'None,CRC32C'],
  ['DataDigest', 'None'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'Yes'],
  ['MaxBurstLength', '262144'],
  ['FirstBurstLength', '262144'],
  ['MaxRecvDataSegmentLength', '262144'],
  ['DataPDUInOrder', 'Yes'],
  ['DefaultTime2Wait', '2'],
  ['DefaultTime2Retain', '0'],
  ['IFMarker', 'No'],
  ['OFMarker', 'No'],
  ['MaxConnections', '1'],
  ['MaxOutstandingR2T', '1'],
  ['ErrorRecoveryLevel', '0'],
  ['DataSequenceInOrder', 'Yes'],
];

describe('key table (RFC 7143 §13)', () => {
  it('has RFC defaults and ranges', () => {
    expect(KEYS.get('MaxRecvDataSegmentLength')).toMatchObject({ kind: 'declarative', min: 512, max: 0xffffff, default: '8192', scope: 'connection' });
    expect(KEYS.get('MaxBurstLength')).toMatchObject({ kind: 'numeric-min', default: '262144', leadingOnly: true, irrelevantInDiscovery: true });
    expect(KEYS.get('FirstBurstLength')).toMatchObject({ kind: 'numeric-min', default: '65536' });
    expect(KEYS.get('DefaultTime2Wait')).toMatchObject({ kind: 'numeric-max', min: 0, max: 3600, default: '2' });
    expect(KEYS.get('DefaultTime2Retain')).toMatchObject({ kind: 'numeric-min', default: '20' });
    expect(KEYS.get('InitialR2T')).toMatchObject({ kind: 'boolean-or', default: 'Yes' });
    expect(KEYS.get('ImmediateData')).toMatchObject({ kind: 'boolean-and', default: 'Yes' });
    expect(KEYS.get('ErrorRecoveryLevel')).toMatchObject({ kind: 'numeric-min', min: 0, max: 2, default: '0' });
    expect(KEYS.get('HeaderDigest')).toMatchObject({ kind: 'list', default: 'None', scope: 'connection' });
    expect(KEYS.get('TargetPortalGroupTag')).toMatchObject({ kind: 'declarative', sender: 'target' });
    expect(new Set(KEY_TABLE.map((k) => k.name)).size).toBe(KEY_TABLE.length);
  });

  it('parses decimal and hex numerical values', () => {
    expect(parseNumericValue('8192')).toBe(8192);
    expect(parseNumericValue('0x2000')).toBe(8192);
    expect(parseNumericValue('-1')).toBeNaN();
    expect(parseNumericValue('12a')).toBeNaN();
    expect(parseNumericValue('')).toBeNaN();
  });
});

describe('KeyNegotiator as target (responder)', () => {
  it('answers libiscsi offers and computes the session parameters', () => {
    const n = target({ MaxRecvDataSegmentLength: '65536', MaxBurstLength: '1048576', FirstBurstLength: '65536', DefaultTime2Retain: '20' });
    const { replies, error } = n.respond(LIBISCSI_OFFER);
    expect(error).toBeUndefined();
    expect(reply(replies, 'HeaderDigest')).toEqual(['None']);
    expect(reply(replies, 'MaxBurstLength')).toEqual(['262144']);
    expect(reply(replies, 'FirstBurstLength')).toEqual(['65536']);
    expect(reply(replies, 'DefaultTime2Retain')).toEqual(['0']);
    expect(reply(replies, 'IFMarker')).toEqual(['No']);
    expect(reply(replies, 'MaxRecvDataSegmentLength')).toEqual(['65536']);
    // Declaratives are not answered.
    expect(reply(replies, 'InitiatorName')).toEqual([]);
    expect(n.pendingDeclarations()).toEqual([]);
    const r = n.result();
    expect(r).toMatchObject({
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: 65536,
      peerMaxRecvDataSegmentLength: 262144,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      immediateData: true,
      initialR2T: true,
      maxOutstandingR2T: 1,
      dataPDUInOrder: true,
      dataSequenceInOrder: true,
      defaultTime2Wait: 2,
      defaultTime2Retain: 0,
      errorRecoveryLevel: 0,
      maxConnections: 1,
      ifMarker: false,
      ofMarker: false,
      sessionType: 'Normal',
    });
    expect(r.declared).toMatchObject({ InitiatorName: LIBISCSI_OFFER[0][1], TargetName: 'iqn.2024-01.org.lunkit:t1', SessionType: 'Normal' });
  });

  it('list: picks the first offered value the target accepts', () => {
    expect(reply(target({ HeaderDigest: 'CRC32C,None' }).respond([['HeaderDigest', 'None,CRC32C']]).replies, 'HeaderDigest')).toEqual(['None']);
    expect(reply(target({ HeaderDigest: 'CRC32C' }).respond([['HeaderDigest', 'None,CRC32C']]).replies, 'HeaderDigest')).toEqual(['CRC32C']);
    const n = target({ DataDigest: 'CRC32C,None' });
    n.respond([['DataDigest', 'CRC32C,None']]);
    expect(n.result().dataDigest).toBe(true);
    // Nothing acceptable -> Reject, key keeps its default.
    const m = target({ HeaderDigest: 'CRC32C' });
    expect(m.respond([['HeaderDigest', 'None']]).replies).toEqual([['HeaderDigest', 'Reject']]);
    expect(m.result().headerDigest).toBe(false);
    expect(target().respond([['HeaderDigest', 'MD5']]).replies).toEqual([['HeaderDigest', 'Reject']]);
  });

  it('boolean-and and boolean-or', () => {
    const n = target({ ImmediateData: 'No', InitialR2T: 'Yes' });
    const { replies } = n.respond([
      ['ImmediateData', 'Yes'],
      ['InitialR2T', 'No'],
    ]);
    expect(replies).toEqual([
      ['ImmediateData', 'No'],
      ['InitialR2T', 'Yes'],
    ]);
    expect(n.result()).toMatchObject({ immediateData: false, initialR2T: true });
    const m = target({ ImmediateData: 'Yes', InitialR2T: 'No' });
    expect(m.respond([['ImmediateData', 'Yes'], ['InitialR2T', 'No']]).replies).toEqual([
      ['ImmediateData', 'Yes'],
      ['InitialR2T', 'No'],
    ]);
    expect(m.result()).toMatchObject({ immediateData: true, initialR2T: false });
  });

  it('numeric-min and numeric-max', () => {
    const n = target({ MaxOutstandingR2T: '4', DefaultTime2Wait: '5', ErrorRecoveryLevel: '2' });
    expect(n.respond([['MaxOutstandingR2T', '16'], ['DefaultTime2Wait', '1'], ['ErrorRecoveryLevel', '1']]).replies).toEqual([
      ['MaxOutstandingR2T', '4'],
      ['DefaultTime2Wait', '5'],
      ['ErrorRecoveryLevel', '1'],
    ]);
    expect(n.result()).toMatchObject({ maxOutstandingR2T: 4, defaultTime2Wait: 5, errorRecoveryLevel: 1 });
  });

  it('FirstBurstLength never exceeds MaxBurstLength in the result', () => {
    const n = target({ MaxBurstLength: '16384', FirstBurstLength: '262144' });
    n.respond([['MaxBurstLength', '16384'], ['FirstBurstLength', '65536']]);
    expect(n.result()).toMatchObject({ maxBurstLength: 16384, firstBurstLength: 16384 });
  });

  it('Reject for invalid values; the key keeps its default', () => {
    const n = target();
    expect(
      n.respond([
        ['ImmediateData', 'maybe'],
        ['MaxBurstLength', '100'],
        ['ErrorRecoveryLevel', '3'],
        ['MaxConnections', 'x'],
        ['DataPDUInOrder', 'Reject'],
      ]).replies,
    ).toEqual([
      ['ImmediateData', 'Reject'],
      ['MaxBurstLength', 'Reject'],
      ['ErrorRecoveryLevel', 'Reject'],
      ['MaxConnections', 'Reject'],
      ['DataPDUInOrder', 'Reject'],
    ]);
    expect(n.result()).toMatchObject({ immediateData: true, maxBurstLength: 262144, errorRecoveryLevel: 0, maxConnections: 1 });
  });

  it('a bad MaxRecvDataSegmentLength declaration is rejected and the default stays', () => {
    const n = target();
    expect(reply(n.respond([['MaxRecvDataSegmentLength', '511']]).replies, 'MaxRecvDataSegmentLength')).toContain('Reject');
    expect(n.result().peerMaxRecvDataSegmentLength).toBe(8192);
  });

  it('NotUnderstood for unknown keys, Reject for IFMarkInt/OFMarkInt (§13.26)', () => {
    const { replies, error } = target().respond([
      ['X-com.example.Foo', '1'],
      ['NoSuchKey', 'Yes'],
      ['IFMarkInt', '2048~8192'],
      ['OFMarkInt', '2048'],
    ]);
    expect(error).toBeUndefined();
    expect(replies).toEqual([
      ['X-com.example.Foo', 'NotUnderstood'],
      ['NoSuchKey', 'NotUnderstood'],
      ['IFMarkInt', 'Reject'],
      ['OFMarkInt', 'Reject'],
    ]);
  });

  it('discovery session: session keys are Irrelevant, digests and MRDSL still negotiate', () => {
    const n = target({ MaxRecvDataSegmentLength: '32768' });
    const { replies, error } = n.respond([
      ['InitiatorName', 'iqn.2024-01.org.x:i'],
      ['SessionType', 'Discovery'],
      ['HeaderDigest', 'None'],
      ['MaxBurstLength', '262144'],
      ['ImmediateData', 'Yes'],
      ['MaxConnections', '1'],
      ['MaxRecvDataSegmentLength', '65536'],
      ['DefaultTime2Wait', '2'],
    ]);
    expect(error).toBeUndefined();
    expect(replies).toEqual([
      ['HeaderDigest', 'None'],
      ['MaxBurstLength', 'Irrelevant'],
      ['ImmediateData', 'Irrelevant'],
      ['MaxConnections', 'Irrelevant'],
      ['MaxRecvDataSegmentLength', '32768'],
      ['DefaultTime2Wait', '2'],
    ]);
    expect(n.result()).toMatchObject({ sessionType: 'Discovery', maxRecvDataSegmentLength: 32768, peerMaxRecvDataSegmentLength: 65536 });
  });

  it('discovery from the constructor option', () => {
    const n = target({}, { discovery: true, leading: true });
    expect(n.respond([['InitialR2T', 'No']]).replies).toEqual([['InitialR2T', 'Irrelevant']]);
  });

  it('leading-only keys on a non-leading connection are Irrelevant', () => {
    const n = target({}, { discovery: false, leading: false });
    expect(n.respond([['MaxBurstLength', '4096'], ['HeaderDigest', 'None']]).replies).toEqual([
      ['MaxBurstLength', 'Irrelevant'],
      ['HeaderDigest', 'None'],
    ]);
  });

  it('a key sent twice is a login error (Initiator Error 0x02 0x00)', () => {
    const n = target();
    expect(n.respond([['MaxBurstLength', '4096']]).error).toBeUndefined();
    const second = n.respond([['MaxBurstLength', '8192']]);
    expect(second.error).toMatchObject({ statusClass: 2, statusDetail: 0 });
    expect(target().respond([['InitiatorName', 'a'], ['InitiatorName', 'b']]).error).toMatchObject({ statusClass: 2, statusDetail: 0 });
  });

  it('a target-only key from the initiator is a login error', () => {
    expect(target().respond([['TargetAlias', 'x']]).error).toMatchObject({ statusClass: 2, statusDetail: 0 });
    expect(target().respond([['TargetPortalGroupTag', '1']]).error).toMatchObject({ statusClass: 2, statusDetail: 0 });
  });

  it('passes CHAP keys through to declared for the auth layer, repeated across PDUs', () => {
    const n = target();
    n.respond([['AuthMethod', 'CHAP,None']]);
    n.respond([['CHAP_A', '5']]);
    const { error } = n.respond([['CHAP_N', 'user'], ['CHAP_R', '0x00']]);
    expect(error).toBeUndefined();
    expect(n.result().declared).toMatchObject({ CHAP_A: '5', CHAP_N: 'user', CHAP_R: '0x00' });
    expect(n.result().authMethod).toBe('None');
    const m = target({ AuthMethod: 'CHAP' });
    expect(m.respond([['AuthMethod', 'None,CHAP']]).replies).toEqual([['AuthMethod', 'CHAP']]);
    expect(m.result().authMethod).toBe('CHAP');
  });

  it('pendingDeclarations owes our MaxRecvDataSegmentLength once if the initiator never declared', () => {
    const n = target({ MaxRecvDataSegmentLength: '131072' });
    n.respond([['HeaderDigest', 'None']]);
    expect(n.result().maxRecvDataSegmentLength).toBe(8192);
    expect(n.pendingDeclarations()).toEqual([['MaxRecvDataSegmentLength', '131072']]);
    expect(n.pendingDeclarations()).toEqual([]);
    expect(n.result().maxRecvDataSegmentLength).toBe(131072);
  });
});

describe('KeyNegotiator as initiator (originator)', () => {
  const mine = {
    InitiatorName: 'iqn.2024-01.org.x:i',
    SessionType: 'Normal',
    HeaderDigest: 'CRC32C,None',
    DataDigest: 'None',
    ImmediateData: 'Yes',
    InitialR2T: 'No',
    MaxBurstLength: '262144',
    FirstBurstLength: '65536',
    MaxRecvDataSegmentLength: '262144',
    DefaultTime2Wait: '2',
    ErrorRecoveryLevel: '0',
  };

  it('talks to a KeyNegotiator target and both agree', () => {
    const ini = new KeyNegotiator('initiator', mine, { discovery: false, leading: true });
    const tgt = target({ HeaderDigest: 'CRC32C,None', ImmediateData: 'No', MaxBurstLength: '131072', MaxRecvDataSegmentLength: '65536' });
    const offers = ini.propose();
    expect(offers.map(([k]) => k)).toContain('HeaderDigest');
    expect(offers.find(([k]) => k === 'TargetAlias')).toBeUndefined();
    const answer = tgt.respond(offers);
    expect(answer.error).toBeUndefined();
    const acc = ini.accept(answer.replies);
    expect(acc.error).toBeUndefined();
    expect(acc.replies).toEqual([]);
    const a = ini.result();
    const b = tgt.result();
    for (const k of ['headerDigest', 'dataDigest', 'maxBurstLength', 'firstBurstLength', 'immediateData', 'initialR2T', 'errorRecoveryLevel'] as const) {
      expect(a[k], k).toBe(b[k]);
    }
    expect(a).toMatchObject({ headerDigest: true, immediateData: false, initialR2T: true, maxBurstLength: 131072 });
    expect(a.maxRecvDataSegmentLength).toBe(b.peerMaxRecvDataSegmentLength);
    expect(a.peerMaxRecvDataSegmentLength).toBe(b.maxRecvDataSegmentLength);
    expect(ini.propose()).toEqual([]);
  });

  it('a reply outside the offer is an error', () => {
    const ini = new KeyNegotiator('initiator', { MaxBurstLength: '65536', HeaderDigest: 'None', ImmediateData: 'No' }, { discovery: false, leading: true });
    ini.propose();
    expect(ini.accept([['MaxBurstLength', '131072']]).error).toMatchObject({ statusClass: 2 });
    const j = new KeyNegotiator('initiator', { HeaderDigest: 'None' }, { discovery: false, leading: true });
    j.propose();
    expect(j.accept([['HeaderDigest', 'CRC32C']]).error).toBeDefined();
    const k = new KeyNegotiator('initiator', { ImmediateData: 'No' }, { discovery: false, leading: true });
    k.propose();
    expect(k.accept([['ImmediateData', 'Yes']]).error).toBeDefined();
  });

  it('omitted answers to AND=No / OR=Yes imply the offer; NotUnderstood/Reject keep defaults', () => {
    const ini = new KeyNegotiator('initiator', { ImmediateData: 'No', InitialR2T: 'Yes', MaxBurstLength: '4096', DefaultTime2Wait: '9' }, { discovery: false, leading: true });
    ini.propose();
    expect(ini.accept([['MaxBurstLength', 'NotUnderstood'], ['DefaultTime2Wait', 'Reject']]).error).toBeUndefined();
    expect(ini.result()).toMatchObject({ immediateData: false, initialR2T: true, maxBurstLength: 262144, defaultTime2Wait: 2 });
  });

  it('answers offers the target originates, and records target declarations', () => {
    const ini = new KeyNegotiator('initiator', { MaxOutstandingR2T: '8' }, { discovery: false, leading: true });
    ini.propose();
    const r = ini.accept([
      ['MaxOutstandingR2T', '4'],
      ['TargetPortalGroupTag', '1'],
      ['TargetAlias', 'disk'],
      ['MaxRecvDataSegmentLength', '16384'],
      ['DataPDUInOrder', 'No'],
    ]);
    expect(r.error).toBeUndefined();
    expect(r.replies).toEqual([['DataPDUInOrder', 'Yes']]);
    expect(ini.result()).toMatchObject({ maxOutstandingR2T: 4, peerMaxRecvDataSegmentLength: 16384, dataPDUInOrder: true });
    expect(ini.result().declared).toMatchObject({ TargetPortalGroupTag: '1', TargetAlias: 'disk' });
  });

  it('a discovery initiator does not offer session-only keys', () => {
    const ini = new KeyNegotiator('initiator', { SessionType: 'Discovery', MaxBurstLength: '4096', HeaderDigest: 'None' }, { discovery: true, leading: true });
    const offers = ini.propose();
    expect(offers).toEqual([
      ['HeaderDigest', 'None'],
      ['SessionType', 'Discovery'],
    ]);
  });
});

describe('responder caps on numeric keys', () => {
  it('answers the smaller of the negotiated value and the cap, never below the key minimum', () => {
    const n = new KeyNegotiator('target', { DefaultTime2Retain: '3600' }, { discovery: false, leading: true, caps: { DefaultTime2Wait: 60, DefaultTime2Retain: 120, MaxBurstLength: 0 } });
    const r = n.respond([
      ['DefaultTime2Wait', '3600'],
      ['DefaultTime2Retain', '3000'],
      ['MaxBurstLength', '65536'],
    ]);
    expect(reply(r.replies, 'DefaultTime2Wait')).toEqual(['60']);
    expect(reply(r.replies, 'DefaultTime2Retain')).toEqual(['120']);
    // A cap below the key's range gives the range minimum, not an invalid value.
    expect(reply(r.replies, 'MaxBurstLength')).toEqual(['512']);
    expect(n.result().defaultTime2Wait).toBe(60);
    expect(n.result().defaultTime2Retain).toBe(120);
  });

  it('leaves values under the cap to the ordinary result functions', () => {
    const n = new KeyNegotiator('target', {}, { discovery: false, leading: true, caps: { DefaultTime2Wait: 60, DefaultTime2Retain: 120 } });
    const r = n.respond([
      ['DefaultTime2Wait', '1'],
      ['DefaultTime2Retain', '5'],
    ]);
    // Time2Wait: max(1, our 2); Time2Retain: min(5, our 20).
    expect(reply(r.replies, 'DefaultTime2Wait')).toEqual(['2']);
    expect(reply(r.replies, 'DefaultTime2Retain')).toEqual(['5']);
  });

  it('peerDeclaration gives what the peer declared', () => {
    const n = target();
    expect(n.peerDeclaration('MaxRecvDataSegmentLength')).toBeUndefined();
    n.respond([['MaxRecvDataSegmentLength', '4096']]);
    expect(n.peerDeclaration('MaxRecvDataSegmentLength')).toBe('4096');
  });
});
