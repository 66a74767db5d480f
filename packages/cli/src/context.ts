// What every command gets: the global options, the output streams, a BerthClient made on first use, and the
// client-side plugins of plugins.ts, resolved on first use.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BerthClient, isServiceError } from '@berth/client';
import { InvalidArgumentError, isUnavailable, wireMessageOf, type OpContext, type PluginHost, type Token } from '@berth/core';
import { parseTimeout } from './args.js';
import { formatTable, type TableOptions } from './format.js';

export const DEFAULT_ADDRESS = '/run/berth/berth.sock';
export const DEFAULT_NAMESPACE = 'default';
export const OUTPUT_FORMATS = ['table', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Global options as commander hands them over (strings, env and defaults already applied). */
export interface RawGlobalOptions {
  address?: string;
  namespace?: string;
  format?: string;
  timeout?: string;
  lease?: string;
}

export interface GlobalOptions {
  readonly address: string;
  readonly namespace: string;
  readonly format: OutputFormat;
  /** Deadline of each unary request in ms; 0 = none. */
  readonly timeoutMs: number;
  /** Lease sent with every request (`containerd-lease`), if any. */
  readonly lease?: string;
}

export function resolveGlobalOptions(raw: RawGlobalOptions): GlobalOptions {
  const format = raw.format ?? 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new InvalidArgumentError(`unknown format ${JSON.stringify(format)} (expected ${OUTPUT_FORMATS.join(' or ')})`);
  }
  return {
    address: raw.address || DEFAULT_ADDRESS,
    namespace: raw.namespace || DEFAULT_NAMESPACE,
    format: format as OutputFormat,
    timeoutMs: raw.timeout ? parseTimeout(raw.timeout) : 0,
    ...(raw.lease ? { lease: raw.lease } : {}),
  };
}

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable & { readonly isTTY?: boolean };
}

/** Thrown by a command whose failures were already printed: exit 1 without another message. */
export class ReportedFailure extends Error {
  constructor() {
    super('failures were reported');
    this.name = 'ReportedFailure';
  }
}

/**
 * The root the CLI's PluginHost reports to its plugins. The CLI's plugins keep nothing on disk (none requires
 * `coreTokens.dirs`), so this directory is never made.
 */
export function cliPluginRoot(): string {
  return join(tmpdir(), `berth-cli-${process.getuid?.() ?? 'user'}`);
}

export class CliContext {
  private client: BerthClient | undefined;
  private host: PluginHost | undefined;
  private globals: GlobalOptions | undefined;
  /** The exit code a command chose (`berth run`: the container's exit status); undefined is 0. */
  exitCode: number | undefined;

  constructor(readonly io: CliIo) {}

  /** Set by the root command's preAction hook, before any command runs. */
  setGlobals(globals: GlobalOptions): void {
    this.globals = globals;
  }

  get options(): GlobalOptions {
    if (!this.globals) throw new Error('global options are not parsed yet');
    return this.globals;
  }

  get json(): boolean {
    return this.options.format === 'json';
  }

  /** The client of the daemon at --address, created on first use. */
  berth(): BerthClient {
    this.client ??= new BerthClient({
      address: this.options.address,
      namespace: this.options.namespace,
      lease: this.options.lease,
      timeoutMs: this.options.timeoutMs || undefined,
    });
    return this.client;
  }

  /** What a kind interface call carries: the global namespace and lease. */
  get op(): OpContext {
    const { namespace, lease } = this.options;
    return lease ? { namespace, lease } : { namespace };
  }

  /**
   * The instance for a token from the CLI's plugins (cliPlugins), initialising only its dependency closure; the
   * host is made on first use and gets the client under clientToken.
   */
  async resolve<T>(token: Token<T>): Promise<T> {
    // The composition (and with it the plugin host, tsyringe and ajv) loads only for commands that use a kind.
    this.host ??= (await import('./composition.js')).createCliHost(this.options.address, this.berth());
    return this.host.resolve(token);
  }


  write(text: string): void {
    this.io.stdout.write(text);
  }

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  table(rows: readonly (readonly string[])[], options?: TableOptions): void {
    this.io.stdout.write(formatTable(rows, options));
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** An error on stderr (`berth: <message>`) for a command that goes on and fails at the end. */
  error(message: string): void {
    this.io.stderr.write(`berth: ${message}\n`);
  }

  /** A warning on stderr that does not fail the command (ctr logs these). */
  warn(message: string): void {
    this.io.stderr.write(`berth: warning: ${message}\n`);
  }

  /** The text after `berth: ` for a failure. */
  describeError(err: unknown): string {
    const cause = (err as { cause?: unknown } | null)?.cause;
    if (isUnavailable(err) && isServiceError(cause) && cause.details.startsWith('No connection established')) {
      const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/.exec(cause.details)?.[1];
      return `cannot connect to berthd at ${this.globals?.address ?? DEFAULT_ADDRESS}${last ? `: ${last}` : ''}`;
    }
    return wireMessageOf(err);
  }

  /** Closes the plugins (reverse init order), then the client. */
  async close(): Promise<void> {
    const host = this.host;
    this.host = undefined;
    await host?.close();
    this.client?.close();
    this.client = undefined;
  }
}
