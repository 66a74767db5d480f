// Message encoding and decoding with one set of conversion options, so that every consumer sees the same shapes:
// snake_case field names, 64-bit integers as numbers, enums as their names, bytes as Buffers, absent scalars as
// their defaults, absent sub-messages as null. Any stays { type_url, value } (never expanded).
// Decoding is strict (strict-decode.ts): a malformed encoding throws a ProtoDecodeError and is never partially
// decoded, on every path that uses this codec (gRPC in both directions, ttrpc envelopes and payloads, Any values).
import protobuf from 'protobufjs';
import type { MessageInputs, MessageName, Messages, google } from './generated/types.js';
import { protoRoot } from './proto-root.js';
import { decodeStrictly } from './strict-decode.js';

export const conversionOptions: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

export interface MessageCodec<T, TInput = T> {
  /** Full protobuf name, without a leading dot. */
  readonly name: string;
  encode(obj: TInput): Buffer;
  /** Throws a ProtoDecodeError when `buf` is not a well-formed encoding of the message. */
  decode(buf: Uint8Array): T;
}

const codecs = new Map<string, MessageCodec<unknown, unknown>>();

function toBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The protobufjs Type of a message, or undefined when the name is not a message of the Root. */
export function findMessageType(fullName: string): protobuf.Type | undefined {
  const found = protoRoot().lookup(fullName.startsWith('.') ? fullName : `.${fullName}`);
  return found instanceof protobuf.Type ? found : undefined;
}

function requireMessageType(fullName: string): protobuf.Type {
  const type = findMessageType(fullName);
  if (!type) throw new Error(`protobuf message ${fullName}: not found`);
  return type;
}

/**
 * Encoder/decoder of one message type. With a known message name the types are inferred from the generated
 * declarations: encode takes the `...Input` shape, decode returns the decoded shape.
 */
export function messageCodec<N extends MessageName>(fullName: N): MessageCodec<Messages[N], MessageInputs[N]>;
export function messageCodec<T, TInput = T>(fullName: string): MessageCodec<T, TInput>;
export function messageCodec(fullName: string): MessageCodec<unknown, unknown> {
  const existing = codecs.get(fullName);
  if (existing) return existing;
  const codec = codecOfType(requireMessageType(fullName));
  codecs.set(fullName, codec);
  return codec;
}

const codecsByType = new WeakMap<protobuf.Type, MessageCodec<unknown, unknown>>();

const ENCODED = Symbol.for('@berth/api.EncodedMessage');

interface EncodedMessage {
  readonly [ENCODED]: { readonly name: string; readonly bytes: Buffer };
}

/**
 * A message already encoded, for a hot path that writes its bytes itself (container-wire.ts): typed as the message's
 * input so a handler can return or yield it wherever that message goes, and sent as these bytes by the codec of that
 * message (any other codec refuses it). The caller vouches that `bytes` is a well-formed encoding of `name`.
 */
export function encodedMessage<N extends MessageName>(name: N, bytes: Buffer): MessageInputs[N] {
  const message: EncodedMessage = { [ENCODED]: { name, bytes } };
  return message as unknown as MessageInputs[N];
}

function encodedBytes(obj: unknown, name: string): Buffer | undefined {
  const encoded = typeof obj === 'object' && obj !== null ? (obj as Partial<EncodedMessage>)[ENCODED] : undefined;
  if (!encoded) return undefined;
  if (encoded.name !== name) throw new Error(`an encoded ${encoded.name} message cannot be sent as ${name}`);
  return encoded.bytes;
}

/** The codec of a message type of any Root (a plugin's own protos), with the same conversions and checks. */
export function codecOfType(type: protobuf.Type): MessageCodec<unknown, unknown> {
  const existing = codecsByType.get(type);
  if (existing) return existing;
  const name = type.fullName.replace(/^\./, '');
  const codec: MessageCodec<unknown, unknown> = {
    name,
    encode(obj) {
      const encoded = encodedBytes(obj, name);
      if (encoded) return encoded;
      const message = type.fromObject((obj ?? {}) as Record<string, unknown>);
      pruneDefaults(type, message as unknown as Record<string, unknown>, 0);
      return toBuffer(type.encode(message).finish());
    },
    decode(buf) {
      return decodeStrictly(type, toBuffer(buf), conversionOptions);
    },
  };
  codecsByType.set(type, codec);
  return codec;
}

interface PrunePlan {
  /** Singular scalar and enum fields without presence: dropped when they hold the default. */
  readonly scalars: readonly string[];
  /** Message-typed fields to descend into. */
  readonly nested: readonly { readonly name: string; readonly type: protobuf.Type; readonly kind: 'one' | 'list' | 'map' }[];
}

const prunePlans = new WeakMap<protobuf.Type, PrunePlan>();

function prunePlan(type: protobuf.Type): PrunePlan {
  let plan = prunePlans.get(type);
  if (plan) return plan;
  const scalars: string[] = [];
  const nested: { name: string; type: protobuf.Type; kind: 'one' | 'list' | 'map' }[] = [];
  for (const field of type.fieldsArray) {
    field.resolve();
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      nested.push({ name: field.name, type: resolved, kind: field.map ? 'map' : field.repeated ? 'list' : 'one' });
    } else if (!field.map && !field.repeated && !field.partOf && !field.hasPresence) {
      scalars.push(field.name);
    }
  }
  plan = { scalars, nested };
  prunePlans.set(type, plan);
  return plan;
}

function isDefaultScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      return value === 0 && 1 / value > 0;
    case 'string':
      return value === '';
    case 'boolean':
      return value === false;
    case 'object':
      if (value instanceof Uint8Array) return value.length === 0;
      if (value !== null && 'low' in value && 'high' in value) {
        const long = value as { low: number; high: number };
        return long.low === 0 && long.high === 0;
      }
      return false;
    default:
      return false;
  }
}

/**
 * protobufjs writes every field it was given, zeros included; Go (proto3) omits fields holding their default.
 * Dropping them keeps our bytes identical to containerd's and smaller when a decoded object (defaults filled in)
 * is sent back out.
 */
function pruneDefaults(type: protobuf.Type, message: Record<string, unknown>, depth: number): void {
  if (depth > 64) return;
  const plan = prunePlan(type);
  for (const name of plan.scalars) {
    if (Object.hasOwn(message, name) && isDefaultScalar(message[name])) delete message[name];
  }
  for (const { name, type: inner, kind } of plan.nested) {
    const value = message[name];
    if (value == null) continue;
    if (kind === 'one') pruneDefaults(inner, value as Record<string, unknown>, depth + 1);
    else if (kind === 'list') for (const v of value as Record<string, unknown>[]) pruneDefaults(inner, v, depth + 1);
    else for (const v of Object.values(value as Record<string, Record<string, unknown>>)) pruneDefaults(inner, v, depth + 1);
  }
}

export type AnyMessage = google.protobuf.Any;
export type AnyInput = google.protobuf.AnyInput;

/** Packs a protobuf message into an Any under the given type URL (containerd uses the bare full name). */
export function anyOf<N extends MessageName>(typeUrl: string, fullName: N, obj: MessageInputs[N]): AnyMessage;
export function anyOf(typeUrl: string, fullName: string, obj: unknown): AnyMessage;
export function anyOf(typeUrl: string, fullName: string, obj: unknown): AnyMessage {
  return { type_url: typeUrl, value: messageCodec(fullName).encode(obj) };
}

/** Packs a protobuf message into an Any whose type URL is the message's full name, as containerd's typeurl does. */
export function packAny<N extends MessageName>(fullName: N, obj: MessageInputs[N]): AnyMessage {
  return anyOf(fullName, fullName, obj);
}

/** The message name a type URL refers to: the part after the last '/', if any. */
export function typeNameOfUrl(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/**
 * Decodes a protobuf Any whose type URL names a message of the Root (with or without a `host/` prefix).
 * Throws when the type is unknown, e.g. for JSON payloads such as the OCI spec; use unpackJsonAny for those.
 */
export function unpackAny<T = unknown>(any: AnyInput): T {
  const typeUrl = any.type_url ?? '';
  const name = typeNameOfUrl(typeUrl);
  if (!name || !findMessageType(name)) throw new Error(`any type ${JSON.stringify(typeUrl)}: not found`);
  return messageCodec<T>(name).decode(any.value ?? Buffer.alloc(0));
}

/** Wraps a JSON value in an Any, the way containerd carries non-protobuf payloads (OCI spec, extensions). */
export function jsonAny(typeUrl: string, value: unknown): AnyMessage {
  return { type_url: typeUrl, value: Buffer.from(JSON.stringify(value), 'utf8') };
}

/** Parses the JSON payload of an Any made by jsonAny (or by containerd's typeurl for a non-protobuf type). */
export function unpackJsonAny<T = unknown>(any: AnyInput): T {
  const value = any.value ?? new Uint8Array(0);
  return JSON.parse(toBuffer(value).toString('utf8')) as T;
}
