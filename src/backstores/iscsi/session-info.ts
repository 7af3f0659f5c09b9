// What an initiator-backed backstore tells about its session: the attach
// holder records it in its state file (src/attach/state.ts) and
// `lunkit sessions --initiator` prints it. Types only, so readers need not
// load the initiator.

/** One connection of a held session, for `lunkit sessions --initiator`. */
export interface InitiatorConnectionInfo {
  cid: number;
  /** 'active', 'draining' (being removed) or 'failed' (waiting for ERL 2 recovery). */
  state?: 'active' | 'draining' | 'failed' | undefined;
  local?: string | undefined;
  remote: string;
}

/** What the attach holder records about its session (state.ts, `lunkit sessions --initiator`). */
export interface InitiatorSessionInfo {
  target: string;
  portal: string;
  lun: number;
  /** ISID as 12 hex digits. */
  isid: string;
  tsih: number;
  erl: number;
  /** 'recovering' while a connection is recovered or the session reinstated. */
  state?: 'open' | 'recovering' | 'closed' | undefined;
  /** Session reinstatements (ERL 0 recovery: new session, same ISID) so far. */
  reinstatements: number;
  /** Connections recovered inside the session (ERL 2: TASK REASSIGN, same TSIH) so far. */
  connectionRecoveries: number;
  connections: InitiatorConnectionInfo[];
  headerDigest?: boolean | undefined;
  dataDigest?: boolean | undefined;
  inFlight: number;
}
