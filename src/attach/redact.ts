// CHAP passwords never reach messages, listings or process arguments. The
// rule lives with the iSCSI backstore (src/backstores/iscsi/redact.ts).

export { redactIscsiUrl } from '../backstores/iscsi/redact.js';
