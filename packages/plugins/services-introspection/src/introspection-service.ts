import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { implementService, ServiceNames, StatusCode, type containerd } from '@berth/api';
import { parseFilters, type PluginRecord, type PluginRegistryView, type RpcServiceImplementation, type RpcServices } from '@berth/core';

type Plugin = containerd.services.introspection.v1.PluginInput;

/** Export keys berth adds to containerd's (a plugin's package version, and the tokens and points it serves). */
export const VERSION_EXPORT = 'berth.version';
export const PROVIDES_EXPORT = 'berth.provides';
export const CONTRIBUTES_EXPORT = 'berth.contributes';

export class IntrospectionService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  private constructor(
    private readonly plugins: PluginRegistryView,
    readonly uuid: string,
  ) {
    this.services = [
      implementService(ServiceNames.Introspection, {
        Plugins: async (req) => ({ plugins: this.list(req.filters) }),
        Server: async () => ({ uuid: this.uuid }),
      }),
    ];
  }

  /** Reads the server UUID from `<dir>/uuid`, creating it (atomically) on first start, as containerd does. */
  static async open(plugins: PluginRegistryView, dir: string): Promise<IntrospectionService> {
    const file = join(dir, 'uuid');
    let uuid = await readFile(file, 'utf8').then((t) => t.trim(), () => '');
    if (!/^[0-9a-f-]{36}$/.test(uuid)) {
      uuid = randomUUID();
      await writeFile(`${file}.tmp`, uuid, { mode: 0o644 });
      await rename(`${file}.tmp`, file);
    }
    return new IntrospectionService(plugins, uuid);
  }

  /** Plugins matching the filters (over type, id, platforms, capabilities); disabled plugins are left out. */
  list(filters: readonly string[] = []): Plugin[] {
    const filter = parseFilters(filters);
    return this.plugins
      .list()
      .filter((p) => p.status !== 'disabled')
      .filter((p) => filter.match((path) => fieldOf(p, path)))
      .map(toWire);
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
