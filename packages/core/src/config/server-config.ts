import { readFile } from 'node:fs/promises';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { compileSchema, deepFreeze, describeAjvErrors } from './ajv.js';
import { ConfigInvalidError } from './errors.js';

/** The daemon's configuration file (TOML, containerd's v2 layout where it overlaps). */
export interface ServerConfig {
  version: number;
  root: string;
  state: string;
  /** Extra plugin packages to load: a path to a package/module, or an installed package name. */
  plugin_packages: string[];
  /** Refuse installed plugin packages (`berth plugin install`) without a valid signature by a trusted key. */
  require_signed_plugins: boolean;
  /** PEM public keys (files, relative to the config's directory) whose plugin signatures are trusted. */
  trusted_plugin_keys: string[];
  disabled_plugins: string[];
  required_plugins: string[];
  grpc: {
    address: string;
    uid: number;
    gid: number;
    max_recv_message_size: number;
    max_send_message_size: number;
  };
  ttrpc: { address: string };
  metrics: {
    address: string;
    /** grpc_server_handling_seconds (containerd's key of the same name). */
    grpc_histogram: boolean;
    /** How long one collector may take in a scrape before it is left out of it. */
    collector_timeout_ms: number;
  };
  debug: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' };
  /** One section per plugin URI, validated against each plugin's own schema. */
  plugins: Record<string, Record<string, unknown>>;
}

export const DEFAULT_ROOT = '/var/lib/berth';
export const DEFAULT_STATE = '/run/berth';
export const DEFAULT_ADDRESS = '/run/berth/berth.sock';

export const serverConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    version: { type: 'integer', enum: [2], default: 2 },
    root: { type: 'string', minLength: 1, default: DEFAULT_ROOT },
    state: { type: 'string', minLength: 1, default: DEFAULT_STATE },
    plugin_packages: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    require_signed_plugins: { type: 'boolean', default: false },
    trusted_plugin_keys: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    disabled_plugins: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    required_plugins: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    grpc: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        address: { type: 'string', minLength: 1, default: DEFAULT_ADDRESS },
        uid: { type: 'integer', minimum: 0, default: 0 },
        gid: { type: 'integer', minimum: 0, default: 0 },
        max_recv_message_size: { type: 'integer', minimum: 1024, default: 16 * 1024 * 1024 },
        max_send_message_size: { type: 'integer', minimum: 1024, default: 16 * 1024 * 1024 },
      },
    },
    ttrpc: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { address: { type: 'string', default: '' } },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        address: { type: 'string', default: '' },
        grpc_histogram: { type: 'boolean', default: true },
        collector_timeout_ms: { type: 'integer', minimum: 1, maximum: 60_000, default: 2000 },
      },
    },
    debug: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { level: { type: 'string', enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info' } },
    },
    plugins: { type: 'object', default: {}, additionalProperties: { type: 'object' } },
  },
} as const;

/** Validates the top-level keys (not the plugin sections) and fills defaults. Throws ConfigInvalidError. */
export function validateServerConfig(raw: unknown, source?: string): ServerConfig {
  const copy = structuredClone(raw ?? {});
  const validate = compileSchema(serverConfigSchema);
  if (!validate(copy)) throw new ConfigInvalidError(describeAjvErrors('', validate.errors), source);
  return copy as ServerConfig;
}

/** Parses TOML text; syntax errors become ConfigInvalidError naming the line. */
export function parseServerConfigToml(text: string, source?: string): unknown {
  try {
    return parseToml(text);
  } catch (err) {
    throw new ConfigInvalidError([(err as Error).message.split('\n')[0] ?? String(err)], source);
  }
}

export async function loadServerConfigFile(path: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigInvalidError([`cannot read config file: ${(err as Error).message}`], path);
  }
  return validateServerConfig(parseServerConfigToml(text, path), path);
}

/** The full default configuration as TOML, including every plugin's section with its defaults. */
export function renderServerConfig(config: ServerConfig): string {
  return stringifyToml(deepFreeze(structuredClone(config)) as unknown as Record<string, unknown>);
}

/** The address of the ttrpc socket: configured, or `<grpc address>.ttrpc` as containerd does. */
export function ttrpcAddressOf(config: ServerConfig): string {
  return config.ttrpc.address || `${config.grpc.address}.ttrpc`;
}
