// CHAP passwords never reach messages, listings or process arguments.

/** An iscsi:// URL without its passwords (user%password@ and target_password=). */
export function redactIscsiUrl(url: string): string {
  return url.replace(/^(iscsi:\/\/[^%:@/]*)[%:][^@/]*@/i, '$1:***@').replace(/(target_password=)[^&]*/gi, '$1***');
}

/** True when the URL itself carries a CHAP password (user%password@ or target_password=). */
export function urlHasPassword(url: string): boolean {
  return redactIscsiUrl(url) !== url;
}
