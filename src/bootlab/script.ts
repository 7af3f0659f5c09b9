// The iPXE scripts a lab hands out (https://ipxe.org/scripting). A client's
// script names it to the target (`set initiator-iqn`), carries its CHAP
// credentials if the lab has them, and sanboots LUN 0 of the lab target;
// sanboot also installs the iBFT, through which the booted OS finds the same
// target, LUN and initiator name. An unknown machine gets a script that says
// what to register and retries, so registering it is all an operator does.

import { clientInitiatorIqn, labTargetIqn } from './names.js';
import type { BootlabConfig } from './schema.js';

export interface ClientScriptInput {
  lab: string;
  mac: string;
  name: string;
  /** The lab's address and iSCSI port. */
  server: string;
  iscsiPort: number;
  targetIqn: string;
  initiatorIqn: string;
  chap?: { userid: string; password: string } | undefined;
}

/** iPXE reads a `set` value to the end of the line and expands ${...}: only plain tokens go in. */
function plain(v: string, what: string): string {
  if (!/^[A-Za-z0-9._:@+=/-]+$/.test(v)) throw new Error(`${what} has characters an iPXE script cannot carry: ${JSON.stringify(v)}`);
  return v;
}

/** iPXE's SAN URI: iscsi:<server>:<protocol>:<port>:<LUN>:<target> (protocol empty = TCP). */
export function rootPath(server: string, port: number, lun: number, targetIqn: string): string {
  return `iscsi:${server}::${port}:${lun}:${targetIqn}`;
}

export function clientScript(i: ClientScriptInput): string {
  const lines = [
    '#!ipxe',
    `# lunkit boot lab ${i.lab}: client ${i.name} (${i.mac})`,
    `set initiator-iqn ${plain(i.initiatorIqn, 'the initiator name')}`,
  ];
  if (i.chap) lines.push(`set username ${plain(i.chap.userid, 'the CHAP user')}`, `set password ${plain(i.chap.password, 'the CHAP secret')}`);
  lines.push(
    `echo lunkit boot lab ${i.lab}: booting ${i.name} from ${i.server}`,
    ':boot',
    `sanboot ${rootPath(i.server, i.iscsiPort, 0, plain(i.targetIqn, 'the target name'))} || goto failed`,
    ':failed',
    'echo sanboot failed; retrying in 10 seconds',
    'sleep 10',
    'goto boot',
    '',
  );
  return lines.join('\n');
}

/** A registered client's script, from its lab's configuration. */
export function labClientScript(lab: string, l: BootlabConfig, mac: string): string {
  const c = l.clients[mac];
  return clientScript({
    lab,
    mac,
    name: c.name,
    server: l.listen,
    iscsiPort: l.ports.iscsi,
    targetIqn: labTargetIqn(lab),
    initiatorIqn: clientInitiatorIqn(lab, c.name),
    chap: l.chap ? c.chap : undefined,
  });
}

/** Chains to the machine's own script by the MAC of the NIC it booted from. */
export function defaultScript(httpBase: string): string {
  return ['#!ipxe', `chain ${httpBase}/boot/\${netX/mac}.ipxe || chain ${httpBase}/boot/\${net0/mac}.ipxe`, ''].join('\n');
}

/** What an unregistered machine sees: its MAC, the command to register it, then a retry. */
export function unknownClientScript(lab: string, mac: string, httpBase: string): string {
  return [
    '#!ipxe',
    `echo lunkit boot lab ${lab}: this machine (MAC ${mac}) is not registered.`,
    `echo Register it with: lunkit bootlab client add ${lab} ${mac}`,
    'echo Retrying in 30 seconds...',
    'sleep 30',
    `chain --replace ${httpBase}/boot/${mac}.ipxe`,
    '',
  ].join('\n');
}
