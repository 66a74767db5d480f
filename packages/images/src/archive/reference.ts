// Image names as containerd's archive package treats them: Docker's normalization (`alpine` ->
// `docker.io/library/alpine:latest`) for manifest.json tags, the familiar form for the manifest.json it writes, the
// OCI ref name (the tag only) for index.json, and ctr's --base-name translators.
import { InvalidArgumentError } from '@berth/core';

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

// The distribution reference grammar: path components, an optional domain, a tag, a digest.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);

export interface ParsedReference {
  /** `domain/path`, normalized (`docker.io/library/alpine`). */
  readonly name: string;
  readonly tag?: string;
  readonly digest?: string;
}

function splitDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  let domain: string;
  let rest: string;
  if (slash < 0 || (!/[.:]/.test(name.slice(0, slash)) && name.slice(0, slash) !== 'localhost')) [domain, rest] = [DEFAULT_DOMAIN, name];
  else [domain, rest] = [name.slice(0, slash), name.slice(slash + 1)];
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = OFFICIAL_PREFIX + rest;
  return [domain, rest];
}

/** Docker's ParseNormalizedNamed: a reference with the default domain and `library/` filled in. */
export function parseNormalizedNamed(ref: string): ParsedReference {
  const m = REFERENCE.exec(ref);
  const [domain, rest] = m ? splitDomain(m[1] as string) : ['', ''];
  if (!m || rest.toLowerCase() !== rest || (domain + '/' + rest).length > 255) {
    throw new InvalidArgumentError(`invalid reference ${JSON.stringify(ref)}`);
  }
  return { name: `${domain}/${rest}`, ...(m[2] ? { tag: m[2] } : {}), ...(m[3] ? { digest: m[3] } : {}) };
}

function formatReference(r: ParsedReference): string {
  return `${r.name}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** Docker's ParseDockerRef: normalized, `:latest` when neither tag nor digest, the tag dropped when both. */
export function normalizeReference(ref: string): string {
  let r: ParsedReference;
  try {
    r = parseNormalizedNamed(ref);
  } catch (err) {
    throw new InvalidArgumentError(`normalize image ref ${JSON.stringify(ref)}: ${(err as Error).message}`, { cause: err });
  }
  if (r.digest) return formatReference({ name: r.name, digest: r.digest });
  return formatReference({ name: r.name, tag: r.tag ?? 'latest' });
}

/** The familiar form Docker shows (`alpine:latest`, `me/app:1`), with `:latest` added when untagged. */
export function familiarizeReference(ref: string): string {
  let r: ParsedReference;
  try {
    r = parseNormalizedNamed(ref);
  } catch (err) {
    throw new InvalidArgumentError(`failed to parse ${JSON.stringify(ref)}: ${(err as Error).message}`, { cause: err });
  }
  if (!r.tag && !r.digest) r = { ...r, tag: 'latest' };
  let name = r.name;
  if (name.startsWith(`${DEFAULT_DOMAIN}/`)) {
    name = name.slice(DEFAULT_DOMAIN.length + 1);
    if (name.startsWith(OFFICIAL_PREFIX) && !name.slice(OFFICIAL_PREFIX.length).includes('/')) name = name.slice(OFFICIAL_PREFIX.length);
  }
  return formatReference({ ...r, name });
}

/**
 * The OCI ref name containerd writes for a full name: what follows the repository (containerd's reference.Parse
 * `Object`: the tag, `tag@digest` or `@digest`), or the name itself when it does not parse as `host/path`.
 */
export function ociReferenceName(name: string): string {
  if (name.includes('://')) return name;
  const slash = name.indexOf('/');
  // Without a path, Go's URL parser takes it all as the host: empty object, or a parse error (then the name).
  if (slash < 0) return /^[^:@]*(?::\d*)?$/.test(name) ? '' : name;
  const path = name.slice(slash);
  const at = path.search(/[:@]/);
  if (at < 0) return '';
  const object = path.slice(at);
  return object.startsWith(':') ? object.slice(1) : object;
}

function isImagePrefix(s: string, prefix: string): boolean {
  if (!s.startsWith(prefix)) return false;
  return s.length === prefix.length || ['/', ':', '@'].includes(s[prefix.length] as string);
}

/**
 * ctr's `--base-name` translators of OCI ref names: a bare tag becomes `<base>:<tag>`; a full reference is kept
 * (`filter`: only when it starts with the base name, else dropped as '').
 */
export function refTranslator(base: string, filter: boolean): (ref: string) => string {
  return (ref) => {
    if (/[/:@]/.test(ref)) return filter && !isImagePrefix(ref, base) ? '' : ref;
    return `${base}:${ref}`;
  };
}
