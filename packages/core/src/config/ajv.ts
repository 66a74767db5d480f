import { Ajv, type ErrorObject } from 'ajv';

/**
 * The one Ajv instance of a process. `useDefaults` fills defaults into what it validates, so callers validate a
 * clone. `strict` makes schema mistakes (unknown keywords) fail when the schema is compiled, i.e. at load time.
 */
export const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, coerceTypes: false });

const compiled = new WeakMap<object, ReturnType<Ajv['compile']>>();

/** Compiles a schema once (cached by object identity). */
export function compileSchema(schema: object): ReturnType<Ajv['compile']> {
  let validate = compiled.get(schema);
  if (!validate) {
    // Schemas carry `$id` = the plugin URI; ajv refuses a second schema with the same $id, so strip it for caching.
    const { $id: _id, ...rest } = schema as Record<string, unknown>;
    validate = ajv.compile(rest);
    compiled.set(schema, validate);
  }
  return validate;
}

/** One readable line per ajv error: `<prefix><instancePath>: <message>`; unknown keys name the key. */
export function describeAjvErrors(prefix: string, errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const path = e.instancePath || '/';
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return `${prefix}${e.instancePath}/${key}: unknown key "${key}"`;
    }
    return `${prefix}${path}: ${e.message ?? 'invalid'}`;
  });
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
