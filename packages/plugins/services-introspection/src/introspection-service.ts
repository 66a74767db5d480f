import { randomUUID } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { implementService, ServiceNames, StatusCode, type containerd } from '@berth/api';
import { parseFilters, type PluginRecord, type PluginRegistryView, type RpcServiceImplementation, type RpcServices } from '@berth/core';

type Plugin = containerd.services.introspection.v1.PluginInput;

/** Export key under which each plugin's package version is reported (containerd has no such field). */
export const VERSION_EXPORT = 'berth.version';

export class IntrospectionService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  private constructor(
    private readonly plugins: PluginRegistryView,
    readonly uuid: string,
  ) {
    this.services = [
      implementService(ServiceNames.Introspection, {
        Plugins: async (req) => ({ plugins: await this.list(req.filters) }),
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
    exports: { ...p.exports, [VERSION_EXPORT]: p.version },
    capabilities: [...p.capabilities],
    // containerd reports both skips and failures with code Unknown; ctr tells them apart by "skip plugin".
    init_err: p.error ? { code: StatusCode.UNKNOWN, message: p.error.code ? `${p.error.message} (${p.error.code})` : p.error.message } : null,
  };
}
