import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { messageCodec } from './codec.js';
import { allServiceNames, findService, serviceDefinition, serviceMethod, serviceMethods, ServiceNames } from './services.js';

type Kind = 'U' | 'SS' | 'CS' | 'BS';

/** containerd-compat.md §1.3: every service with its methods and streaming kind. */
const EXPECTED: Record<string, Record<string, Kind>> = {
  'containerd.services.containers.v1.Containers': {
    Get: 'U', List: 'U', ListStream: 'SS', Create: 'U', Update: 'U', Delete: 'U',
  },
  'containerd.services.content.v1.Content': {
    Info: 'U', Update: 'U', List: 'SS', Delete: 'U', Read: 'SS', Status: 'U', ListStatuses: 'U', Write: 'BS', Abort: 'U',
  },
  'containerd.services.diff.v1.Diff': { Apply: 'U', Diff: 'U' },
  'containerd.services.events.v1.Events': { Publish: 'U', Forward: 'U', Subscribe: 'SS' },
  'containerd.services.images.v1.Images': { Get: 'U', List: 'U', Create: 'U', Update: 'U', Delete: 'U' },
  'containerd.services.introspection.v1.Introspection': { Plugins: 'U', Server: 'U' },
  'containerd.services.leases.v1.Leases': {
    Create: 'U', Delete: 'U', List: 'U', AddResource: 'U', DeleteResource: 'U', ListResources: 'U',
  },
  'containerd.services.namespaces.v1.Namespaces': { Get: 'U', List: 'U', Create: 'U', Update: 'U', Delete: 'U' },
  'containerd.services.snapshots.v1.Snapshots': {
    Prepare: 'U', View: 'U', Mounts: 'U', Commit: 'U', Remove: 'U', Stat: 'U', Update: 'U', List: 'SS', Usage: 'U', Cleanup: 'U',
  },
  'containerd.services.tasks.v1.Tasks': Object.fromEntries(
    ['Create', 'Start', 'Delete', 'DeleteProcess', 'Get', 'List', 'Kill', 'Exec', 'ResizePty', 'CloseIO', 'Pause', 'Resume',
      'ListPids', 'Checkpoint', 'Update', 'Metrics', 'Wait'].map((m) => [m, 'U' as Kind]),
  ),
  'containerd.services.version.v1.Version': { Version: 'U' },
  'containerd.services.streaming.v1.Streaming': { Stream: 'BS' },
  'containerd.services.transfer.v1.Transfer': { Transfer: 'U' },
  'containerd.services.events.ttrpc.v1.Events': { Forward: 'U' },
  'containerd.task.v2.Task': Object.fromEntries(
    ['State', 'Create', 'Start', 'Delete', 'Pids', 'Pause', 'Resume', 'Checkpoint', 'Kill', 'Exec', 'ResizePty', 'CloseIO',
      'Update', 'Wait', 'Stats', 'Connect', 'Shutdown'].map((m) => [m, 'U' as Kind]),
  ),
  'grpc.health.v1.Health': { Check: 'U', Watch: 'SS' },
};

function kindOf(m: { requestStream: boolean; responseStream: boolean }): Kind {
  if (m.requestStream && m.responseStream) return 'BS';
  if (m.requestStream) return 'CS';
  if (m.responseStream) return 'SS';
  return 'U';
}

/** Reads the service table of containerd-compat.md §1.3, when the shared reference is present. */
function servicesFromCompatDoc(path: string): Record<string, Record<string, Kind | undefined>> {
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf('### 1.3');
  const end = text.indexOf('Key messages', start);
  const out: Record<string, Record<string, Kind | undefined>> = {};
  for (const line of text.slice(start, end).split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4) continue;
    const service = /`([\w.]+\.[A-Z]\w*)`/.exec(cells[1] ?? '')?.[1];
    if (!service) continue;
    const allUnary = /all U\b/.test(cells[2] ?? '');
    const methods: Record<string, Kind | undefined> = {};
    const cell = (cells[2] ?? '').replace(/\([^)]*\)/g, '').replace(/\*\*/g, '').replace(/—.*$/, '');
    for (const part of cell.split(',')) {
      const m = /^\s*([A-Z]\w*)(?:\s+(U|SS|CS|BS)\b)?/.exec(part);
      if (m) methods[m[1]!] = (m[2] as Kind | undefined) ?? (allUnary ? 'U' : undefined);
    }
    out[service] = methods;
  }
  return out;
}

describe('services', () => {
  it.each(Object.entries(EXPECTED))('%s has exactly the expected methods and streaming kinds', (service, methods) => {
    const actual = Object.fromEntries(serviceMethods(service).map((m) => [m.name, kindOf(m)]));
    expect(actual).toEqual(methods);
  });

  const compatDoc = '/work/shared/reference/containerd-compat.md';
  it.skipIf(!existsSync(compatDoc))('covers every service and method listed in containerd-compat.md §1.3', () => {
    const listed = servicesFromCompatDoc(compatDoc);
    expect(Object.keys(listed).length).toBeGreaterThanOrEqual(12);
    for (const [service, methods] of Object.entries(listed)) {
      expect(findService(service), service).toBeDefined();
      const actual = new Map(serviceMethods(service).map((m) => [m.name, kindOf(m)]));
      for (const [name, kind] of Object.entries(methods)) {
        expect(actual.has(name), `${service}/${name}`).toBe(true);
        if (kind) expect(actual.get(name), `${service}/${name}`).toBe(kind);
      }
    }
  });

  it('ServiceNames name real services, and every service in the Root has a constant', () => {
    for (const name of Object.values(ServiceNames)) expect(findService(name), name).toBeDefined();
    expect(allServiceNames()).toEqual([...Object.values(ServiceNames)].sort());
  });

  it('serviceMethods reports request and response types', () => {
    expect(serviceMethod(ServiceNames.Containers, 'ListStream')).toEqual({
      name: 'ListStream',
      requestType: 'containerd.services.containers.v1.ListContainersRequest',
      responseType: 'containerd.services.containers.v1.ListContainerMessage',
      requestStream: false,
      responseStream: true,
    });
    expect(serviceMethod(ServiceNames.Version, 'Version')?.requestType).toBe('google.protobuf.Empty');
    expect(serviceMethod(ServiceNames.Introspection, 'Server')?.responseType).toBe(
      'containerd.services.introspection.v1.ServerResponse',
    );
    expect(serviceMethod(ServiceNames.Version, 'Nope')).toBeUndefined();
    expect(serviceMethod('no.such.Service', 'X')).toBeUndefined();
    expect(() => serviceMethods('no.such.Service')).toThrow(/not found/);
  });
});

describe('serviceDefinition', () => {
  it('builds grpc method paths and streaming flags', () => {
    const content = serviceDefinition(ServiceNames.Content);
    expect(Object.keys(content)).toEqual(Object.keys(EXPECTED[ServiceNames.Content]!));
    expect(content.Write).toMatchObject({
      path: '/containerd.services.content.v1.Content/Write',
      requestStream: true,
      responseStream: true,
      originalName: 'write',
    });
    expect(content.Read).toMatchObject({ requestStream: false, responseStream: true });
    expect(content.Info).toMatchObject({ path: '/containerd.services.content.v1.Content/Info', requestStream: false, responseStream: false });
    const events = serviceDefinition(ServiceNames.Events);
    expect(events.Subscribe).toMatchObject({ path: '/containerd.services.events.v1.Events/Subscribe', responseStream: true });
    expect(serviceDefinition(ServiceNames.Containers).ListStream?.originalName).toBe('listStream');
    expect(serviceDefinition(ServiceNames.Health).Check?.path).toBe('/grpc.health.v1.Health/Check');
    expect(serviceDefinition(ServiceNames.TtrpcEvents).Forward?.path).toBe('/containerd.services.events.ttrpc.v1.Events/Forward');
  });

  it('serializes with the shared codec', () => {
    const def = serviceDefinition(ServiceNames.Namespaces).Update!;
    const req = { namespace: { name: 'ns', labels: { a: 'b' } }, update_mask: { paths: ['labels.a'] } };
    const bytes = def.requestSerialize(req);
    expect(bytes.equals(messageCodec('containerd.services.namespaces.v1.UpdateNamespaceRequest').encode(req))).toBe(true);
    expect(def.requestDeserialize(bytes)).toEqual(req);
    const res = def.responseDeserialize(def.responseSerialize({ namespace: { name: 'ns' } }));
    expect(res).toEqual({ namespace: { name: 'ns', labels: {} } });
    const del = serviceDefinition(ServiceNames.Namespaces).Delete!;
    expect(del.responseSerialize(undefined).length).toBe(0);
    expect(del.responseDeserialize(Buffer.alloc(0))).toEqual({});
  });

  it('returns one cached definition per service and rejects unknown services', () => {
    expect(serviceDefinition(ServiceNames.Tasks)).toBe(serviceDefinition(ServiceNames.Tasks));
    expect(Object.isFrozen(serviceDefinition(ServiceNames.Tasks))).toBe(true);
    expect(() => serviceDefinition('containerd.services.nope.v1.Nope')).toThrow(/not found/);
  });
});
