import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { implementService, ServiceNames, StatusCode, type containerd } from '@berth/api';
import {
  fromSystemError,
  nullLogger,
  parseFilters,
  writeFileAtomic,
  type Logger,
  type PluginRecord,
  type PluginRegistryView,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

type Plugin = containerd.services.introspection.v1.PluginInput;

/** Export keys berth adds to containerd's (a plugin's package version, and the tokens and points it serves). */
export const VERSION_EXPORT = 'berth.version';
export const PROVIDES_EXPORT = 'berth.provides';
export const CONTRIBUTES_EXPORT = 'berth.contributes';
/** Exports of the introspection plugin itself: the plugin API version berthd runs and its root directory. */
export const PLUGIN_API_EXPORT = 'berth.plugin_api';
export const ROOT_EXPORT = 'berth.root';

export class IntrospectionService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  private known: string | undefined;
  private loading: Promise<string> | undefined;

  private constructor(
    private readonly plugins: PluginRegistryView,
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.services = [
      implementService(ServiceNames.Introspection, {
        Plugins: async (req) => ({ plugins: await this.list(req.filters) }),
        Server: async () => ({ uuid: await this.uuid() }),
      }),
    ];
  }

  /**
   * The service, with the server UUID of `<dir>/uuid` read (or created) up front. When that fails (a full disk on
   * the first start) the service still starts: `Server` retries and answers the error until it succeeds, as
   * containerd creates the file on first use and fails the call when it cannot.
   */
  static async open(plugins: PluginRegistryView, dir: string, log: Logger = nullLogger): Promise<IntrospectionService> {
    const service = new IntrospectionService(plugins, join(dir, 'uuid'), log);
    await service.uuid().catch((err: unknown) => log.warn('server uuid not available yet; Server calls retry', { error: err }));
    return service;
  }

  /** The persistent server UUID, created (atomically) the first time; concurrent callers share one attempt. */
  uuid(): Promise<string> {
    if (this.known) return Promise.resolve(this.known);
    this.loading ??= this.readOrCreate().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async readOrCreate(): Promise<string> {
    let text: string | undefined;
    try {
      text = (await readFile(this.file, 'utf8')).trim();
    } catch (err) {
      // Anything but a missing file is an error to report, never a reason to hand out a new identity.
      if ((err as { code?: unknown }).code !== 'ENOENT') throw fromSystemError(err);
    }
    if (text !== undefined && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text)) {
      this.known = text;
      return text;
    }
    // Missing, or torn by a crash of an older version that wrote it in place: make one.
    if (text !== undefined) this.log.warn('server uuid file unreadable; writing a new one', { path: this.file });
    const uuid = randomUUID();
    await mkdir(dirname(this.file), { recursive: true });
    await writeFileAtomic(this.file, uuid);
    this.known = uuid;
    return uuid;
  }

  /** Plugins matching the filters (over type, id, platforms, capabilities); disabled plugins are left out. */
  async list(filters: readonly string[] = []): Promise<Plugin[]> {
    const filter = parseFilters(filters);
    const out: Plugin[] = [];
    for (const p of this.plugins.list()) {
      // A `~=` match too costly for the event loop comes back as a Promise (it runs on a worker thread).
      if (p.status !== 'disabled' && (await filter.match((path) => fieldOf(p, path)))) out.push(toWire(p));
    }
    return out;
  }
}

function fieldOf(p: PluginRecord, path: readonly string[]): string | undefined {
  switch (path[0]) {
    case 'type':
      return p.type;
    case 'id':
      return p.id;
    case 'platforms':
      return p.platforms.map((x) => [x.os, x.architecture, x.variant].filter(Boolean).join('/')).join(',') || undefined;
    case 'capabilities':
      return p.capabilities.join(',') || undefined;
    default:
      return undefined;
  }
}

function toWire(p: PluginRecord): Plugin {
  return {
    type: p.type,
    id: p.id,
    requires: [...p.requires],
    platforms: p.platforms.map((x) => ({ os: x.os, architecture: x.architecture, variant: x.variant ?? '' })),
    exports: {
      ...p.exports,
      [VERSION_EXPORT]: p.version,
      ...(p.provides.length ? { [PROVIDES_EXPORT]: p.provides.join(',') } : {}),
      ...(p.contributes.length ? { [CONTRIBUTES_EXPORT]: p.contributes.join(',') } : {}),
    },
    capabilities: [...p.capabilities],
    // containerd reports both skips and failures with code Unknown; ctr tells them apart by "skip plugin".
    init_err: p.error ? { code: StatusCode.UNKNOWN, message: p.error.code ? `${p.error.message} (${p.error.code})` : p.error.message } : null,
  };
}
