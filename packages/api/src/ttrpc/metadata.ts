// ttrpc metadata travels as a list of key/value pairs, one pair per value, keys lower-cased.
import type { ttrpc } from '../generated/types.js';

export type MetadataInput = Readonly<Record<string, string | readonly string[]>>;

export function toKeyValues(...sources: (MetadataInput | undefined)[]): ttrpc.KeyValueInput[] {
  const merged = new Map<string, readonly string[]>();
  for (const source of sources) {
    if (!source) continue;
    for (const [key, value] of Object.entries(source)) {
      merged.set(key.toLowerCase(), typeof value === 'string' ? [value] : value);
    }
  }
  const out: ttrpc.KeyValueInput[] = [];
  for (const [key, values] of merged) for (const value of values) out.push({ key, value });
  return out;
}

/** Lower-case keys, first value of each (the shape of RpcContext.metadata). */
export function firstValues(list: readonly ttrpc.KeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of list) {
    const k = key.toLowerCase();
    if (!Object.hasOwn(out, k)) out[k] = value;
  }
  return out;
}
