// Compiling JSON Schemas (draft 2020-12) and reporting what a document breaks, by JSON pointer.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { InvalidArgumentError, type AnyValue } from '@berth/core';

// ajv-formats is CommonJS with `exports.default`: under NodeNext its default import is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

/** At most this many errors are listed in one message (the count of the rest follows). */
export const MAX_LISTED_ERRORS = 20;

/**
 * Compiles one schema version. Each version gets an Ajv of its own: schemas may carry an `$id`, and one Ajv refuses
 * a second schema with the same `$id` (a new version of the same schema, or two names sharing a template).
 * `strict` makes unknown keywords and malformed schemas fail here, at registration, instead of being ignored;
 * the type-combination checks are left to the schema's author. Formats are ajv-formats' (email, uri, date-time...).
 */
export function compileJsonSchema(name: string, schema: unknown): ValidateFunction {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new InvalidArgumentError(`schema "${name}": a schema must be a JSON object`);
  }
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    coerceTypes: false,
    useDefaults: false,
    logger: false,
  });
  addFormats(ajv);
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new InvalidArgumentError(`schema "${name}" does not compile: ${(err as Error).message}`, { cause: err });
  }
}

function pointer(instancePath: string, key?: string): string {
  const escaped = key === undefined ? '' : '/' + key.replace(/~/g, '~0').replace(/\//g, '~1');
  return instancePath + escaped || '(root)';
}

/**
 * One entry per ajv error, `<JSON pointer>: <message>`. A missing required property and a property that is not
 * allowed are reported at the property's own pointer (ajv reports both at the parent object).
 */
export function describeSchemaErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'required') out.push(`${pointer(e.instancePath, (e.params as { missingProperty: string }).missingProperty)}: required property is missing`);
    else if (e.keyword === 'additionalProperties') out.push(`${pointer(e.instancePath, (e.params as { additionalProperty: string }).additionalProperty)}: property is not allowed`);
    else if (e.keyword === 'unevaluatedProperties') out.push(`${pointer(e.instancePath, (e.params as { unevaluatedProperty: string }).unevaluatedProperty)}: property is not allowed`);
    else out.push(`${pointer(e.instancePath)}: ${e.message ?? e.keyword}`);
  }
  return [...new Set(out)];
}

/** `a; b; c` with at most `max` entries, then `(and N more)`. */
export function listCapped(items: readonly string[], max = MAX_LISTED_ERRORS): string {
  const shown = items.slice(0, max).join('; ');
  return items.length > max ? `${shown}; (and ${items.length - max} more)` : shown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value's bytes as JSON; InvalidArgument (naming `what`) when they are not UTF-8 JSON text. */
export function parseJsonValue(what: string, value: AnyValue | Uint8Array): unknown {
  const bytes = value instanceof Uint8Array ? value : value.value;
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new InvalidArgumentError(`${what}: value is not JSON: not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`${what}: value is not JSON: ${(err as Error).message}`);
  }
}
