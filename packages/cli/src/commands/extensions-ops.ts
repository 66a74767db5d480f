// Parsing and output of `berth extensions …`: revisions, schema tables and JSON, extension values, watch lines.
import type { ContainerExtension, ExtensionUpdate } from '@berth/client';
import { InvalidArgumentError, type ExtensionSchema } from '@berth/core';
import { formatDate } from '../format.js';

/** `--revision N`: a non-negative integer (0: the extension must be absent). */
export function parseRevision(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError(`--revision ${JSON.stringify(text)}: expected a non-negative integer (0: the extension must not exist yet)`);
  }
  return Number(text);
}

/** `--index PATH`: dot-separated JSON field names, none empty. */
export function parseIndexedPath(text: string): string {
  if (text === '' || text.split('.').some((part) => part === '')) {
    throw new InvalidArgumentError(`--index ${JSON.stringify(text)}: expected a dot-separated JSON path such as team or owner.email`);
  }
  return text;
}

/** A schema file's document: a JSON object (a JSON Schema); `file` names it in errors. */
export function parseSchemaDocument(textValue: string, file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(textValue);
  } catch (err) {
    throw new InvalidArgumentError(`schema ${file}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidArgumentError(`schema ${file}: a JSON Schema must be an object`);
  return doc as Record<string, unknown>;
}

export function schemaJson(s: ExtensionSchema, options: { document?: boolean } = {}): Record<string, unknown> {
  return {
    name: s.name,
    version: s.version,
    source: s.source,
    indexedPaths: s.indexedPaths,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    ...(options.document === false ? {} : { schema: s.schema }),
  };
}

export function schemaRows(schemas: readonly ExtensionSchema[]): string[][] {
  return [
    ['NAME', 'VERSION', 'SOURCE', 'INDEXED', 'UPDATED'],
    ...schemas.map((s) => [s.name, String(s.version), s.source, s.indexedPaths.join(',') || '-', formatDate(s.updatedAt) || '-']),
  ];
}

/** The value of an extension: its JSON, or undefined when the bytes are not JSON (a value a Go client stored as proto). */
export function extensionValue(e: ContainerExtension): { json: unknown } | { base64: string } {
  const bytes = Buffer.from(e.value.value);
  try {
    return { json: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch {
    return { base64: bytes.toString('base64') };
  }
}

export function extensionJson(e: ContainerExtension): Record<string, unknown> {
  return { container: e.containerId, name: e.name, typeUrl: e.value.typeUrl, revision: e.revision, ...extensionValue(e) };
}

/** What `extensions get` prints by default: the value's JSON, indented (base64 for bytes that are not JSON). */
export function formatExtensionValue(e: ContainerExtension): string {
  const v = extensionValue(e);
  return 'json' in v ? `${JSON.stringify(v.json, null, 2)}\n` : `${v.base64}\n`;
}

/** One `extensions watch` line: `<container> <name> <revision>`, with ` deleted` for a deletion. */
export function formatUpdate(u: ExtensionUpdate): string {
  return `${u.containerId} ${u.name} ${u.revision}${u.deleted ? ' deleted' : ''}`;
}

export function updateJson(u: ExtensionUpdate): Record<string, unknown> {
  return { container: u.containerId, name: u.name, revision: u.revision, deleted: u.deleted };
}
