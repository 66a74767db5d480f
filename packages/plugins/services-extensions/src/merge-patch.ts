// JSON Merge Patch (RFC 7396).

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * RFC 7396's MergePatch(target, patch), without changing either: a patch that is not an object replaces the target
 * whole; an object patch turns a non-object target into `{}`, removes the members it sets to null and merges the
 * others recursively. Objects are built with own data properties only, so a `__proto__` member stays a member.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out = new Map<string, unknown>(isObject(target) ? Object.entries(target) : []);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) out.delete(key);
    else out.set(key, applyMergePatch(out.get(key), value));
  }
  return Object.fromEntries(out);
}
