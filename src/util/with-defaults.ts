/** `defaults`, overridden by the fields of `partial` that are set (undefined keeps the default). */
export function withDefaults<T extends object>(defaults: Readonly<T>, partial?: Partial<T>): T {
  const out = { ...defaults } as T;
  if (partial) for (const [k, v] of Object.entries(partial)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
