// CHAP passwords never reach messages, listings or process arguments.

/** An iscsi:// URL without its passwords (user%password@ and target_password=). */
export function redactIscsiUrl(url: string): string {
  return url.replace(/^(iscsi:\/\/[^%:@/]*)[%:][^@/]*@/i, '$1:***@').replace(/(target_password=)[^&]*/gi, '$1***');
}
