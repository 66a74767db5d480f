// Docker schema1 manifests (`application/vnd.docker.distribution.manifest.v1+prettyjws`) of the tiny image, signed
// as libtrust signs them, so Debian's docker-registry (distribution 2.8, with `compatibility: schema1: enabled:
// true`) accepts them on PUT: it parses the "pretty" JWS, verifies every signature against the JWK in its header,
// checks that the fsLayers blobs exist and that the manifest's tag is the one in the URL, and stores the payload
// without the signatures (the "canonical" bytes), whose sha256 is the manifest digest.
//
// The pretty JWS: the payload is the manifest JSON indented by 3 spaces without `signatures`; each signature's
// protected header holds `formatLength` (the payload's length up to its closing `\n}`), `formatTail` (that `\n}`,
// base64url) and a time; the ES256 signature (r || s) covers `<protected>.<base64url(payload)>`; the signed manifest
// is the payload cut at formatLength, `,\n   "signatures": [...]` and the tail.
//
// The payload and so the digest are the same on every build; the signature is not (ECDSA draws a random nonce),
// and the registry re-signs what it serves with its own key anyway.
import { generateKeyPairSync, sign } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { FIXTURE_ENV } from './content.mjs';
import { MEDIA_TYPES, sha256 } from './layout.mjs';
import { writeTar } from './tar.mjs';

/** @typedef {import('./layout.mjs').Descriptor} Descriptor */

/**
 * What a schema1 manifest of the image is made of, newest layer first as schema1 orders them.
 * @typedef {object} Schema1Parts
 * @property {string} architecture
 * @property {Descriptor[]} blobs the fsLayers' blobs (gzip tars), newest first: a throwaway empty layer, then busybox
 * @property {string[]} v1Compatibility one JSON string per fsLayer, the first with the image config
 */

const CREATED = '2024-01-01T00:00:00Z';

/** @param {Buffer | string} data */
const b64url = (data) => Buffer.from(data).toString('base64url');

/**
 * Writes the extra blob (an empty layer, as `CMD` instructions left in schema1 images) and returns the parts.
 * @param {import('./layout.mjs').LayoutWriter} writer
 * @param {import('./build.mjs').BuiltManifest} image a one-layer image (tiny)
 * @returns {Promise<Schema1Parts>}
 */
export async function buildSchema1(writer, image) {
  const [layer] = image.layers;
  if (!layer || image.layers.length !== 1) throw new Error('schema1: built from a one-layer image');
  const empty = await writer.blob(gzipSync(writeTar([]), { level: 6 }), MEDIA_TYPES.dockerLayerGzip);
  const baseId = sha256(`berth schema1 base ${layer.diffId}`).slice('sha256:'.length);
  const topId = sha256(`berth schema1 top ${baseId}`).slice('sha256:'.length);
  const { architecture, os } = image.platform;
  const top = {
    architecture,
    config: { Env: FIXTURE_ENV, Cmd: ['/bin/sh'], WorkingDir: '/' },
    container_config: { Cmd: ['/bin/sh', '-c', '#(nop) CMD ["/bin/sh"]'] },
    created: CREATED,
    id: topId,
    os,
    parent: baseId,
    throwaway: true,
  };
  const base = {
    id: baseId,
    created: CREATED,
    container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD busybox-static and its applet links in /'] },
  };
  return {
    architecture,
    blobs: [empty, { ...layer.descriptor, mediaType: MEDIA_TYPES.dockerLayerGzip }],
    v1Compatibility: [JSON.stringify(top), JSON.stringify(base)],
  };
}

/** One key per process: the registry trusts any key whose signature verifies. */
let signingKey;

/**
 * The unsigned payload (the registry's canonical bytes, whose digest is the manifest's digest).
 * @param {Schema1Parts} parts
 * @param {string} name repository (`test/busybox`): the registry checks its format
 * @param {string} tag the tag it will be pushed under: the registry checks that it matches
 */
export function schema1Payload(parts, name, tag) {
  const manifest = {
    schemaVersion: 1,
    name,
    tag,
    architecture: parts.architecture,
    fsLayers: parts.blobs.map((b) => ({ blobSum: b.digest })),
    history: parts.v1Compatibility.map((v1Compatibility) => ({ v1Compatibility })),
  };
  return Buffer.from(JSON.stringify(manifest, null, 3));
}

/**
 * A signed schema1 manifest for `name:tag`, and its digest (the registry's, over the canonical payload).
 * @param {Schema1Parts} parts
 * @param {string} name
 * @param {string} tag
 * @returns {{ manifest: Buffer, digest: string, payload: Buffer }}
 */
export function signSchema1(parts, name, tag) {
  const payload = schema1Payload(parts, name, tag);
  const text = payload.toString('utf8');
  // the payload ends with "\n}" (JSON.stringify with indentation): cut there, after the last non-space before it
  const formatLength = text.trimEnd().slice(0, -1).trimEnd().length;
  const formatTail = payload.subarray(formatLength);
  signingKey ??= generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = signingKey.publicKey.export({ format: 'jwk' });
  const protectedHeader = b64url(JSON.stringify({ formatLength, formatTail: b64url(formatTail), time: CREATED }));
  const signature = sign('sha256', Buffer.from(`${protectedHeader}.${b64url(payload)}`), { key: signingKey.privateKey, dsaEncoding: 'ieee-p1363' });
  const signatures = [{ header: { jwk: { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }, alg: 'ES256' }, signature: b64url(signature), protected: protectedHeader }];
  const indent = '   ';
  const marshalled = JSON.stringify(signatures, null, 3).split('\n').join(`\n${indent}`);
  const manifest = Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n${indent}"signatures": ${marshalled}\n}`)]);
  return { manifest, digest: sha256(payload), payload };
}
