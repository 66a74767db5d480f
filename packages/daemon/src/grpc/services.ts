// What the plugins contribute to rpcServicesPoint, checked at each plugin's init (so a wrong service or method
// name marks that plugin `error` and the daemon serves the rest), and the definitions the servers bind.
import { resolveService, type GrpcServiceDefinition, type ResolvedService } from '@berth/api';
import type { RpcServiceImplementation, RpcServices } from '@berth/core';

interface Claim {
  readonly plugin: string;
  readonly proto: string;
}

/** The checked contributions: every implementation with its resolved service, and who claimed which method. */
export class ServiceCatalog {
  private readonly resolved = new WeakMap<RpcServiceImplementation, ResolvedService>();
  /** `<transport> /<service>/<method>` to the plugin serving it. */
  private readonly claims = new Map<string, Claim>();
  /** Each service name to the protos that describe it (two plugins cannot describe one service differently). */
  private readonly described = new Map<string, Claim>();

  /**
   * Checks one plugin's contribution: each service exists (in berth's API or in the plugin's own protos), each handler
   * names a method of it, ttrpc carries unary methods of berth's API only, and no method is served twice.
   */
  check(value: RpcServices, plugin: { readonly uri: string }): void {
    if (!value || !Array.isArray(value.services)) throw new Error(`plugin ${plugin.uri}: its contribution to rpc.services has no services list`);
    const pending: Array<[string, Claim]> = [];
    const resolved: Array<[RpcServiceImplementation, ResolvedService]> = [];
    for (const impl of value.services) {
      const service = resolveService(impl.service, impl.proto);
      const proto = impl.proto ? impl.proto.files.join(',') : '(berth)';
      const transports = impl.transports ?? ['grpc'];
      for (const transport of transports) {
        if (transport !== 'grpc' && transport !== 'ttrpc') throw new Error(`service ${impl.service}: unknown transport ${JSON.stringify(transport)}`);
      }
      if (transports.includes('ttrpc') && impl.proto) throw new Error(`service ${impl.service}: ttrpc serves berth's own services only`);
      for (const [name, handler] of Object.entries(impl.handlers)) {
        const method = service.methods.find((m) => m.name === name);
        if (!method) throw new Error(`service ${impl.service} has no method ${name} (it has ${service.methods.map((m) => m.name).join(', ')})`);
        if (typeof handler !== 'function') throw new Error(`service ${impl.service}: the handler of ${name} is not a function`);
        if (transports.includes('ttrpc') && (method.requestStream || method.responseStream)) {
          throw new Error(`service ${impl.service}: ${name} streams, which ttrpc 1.1 does not carry`);
        }
        for (const transport of transports) {
          const key = `${transport} /${impl.service}/${name}`;
          const taken = this.claims.get(key);
          if (taken) throw new Error(`${key.replace(/^\S+ /, '')} over ${transport} is already served by ${taken.plugin}`);
          pending.push([key, { plugin: plugin.uri, proto }]);
        }
      }
      const description = this.described.get(impl.service);
      if (description && description.proto !== proto) {
        throw new Error(`service ${impl.service} is already described by other protos (${description.plugin})`);
      }
      resolved.push([impl, service]);
    }
    for (const [key, claim] of pending) this.claims.set(key, claim);
    for (const [impl, service] of resolved) {
      this.resolved.set(impl, service);
      if (!this.described.has(impl.service)) this.described.set(impl.service, { plugin: plugin.uri, proto: impl.proto ? impl.proto.files.join(',') : '(berth)' });
    }
  }

  /**
   * Checked implementations merged by service (several plugins may serve methods of one service, as containerd's
   * Tasks lives beside others; `check` made sure no method is served twice), each with the definition to bind.
   */
  merged(impls: readonly RpcServiceImplementation[]): Array<{ impl: RpcServiceImplementation; definition: GrpcServiceDefinition }> {
    const byName = new Map<string, { impl: RpcServiceImplementation; definition: GrpcServiceDefinition }>();
    for (const impl of impls) {
      const service = this.resolved.get(impl);
      if (!service) throw new Error(`service ${impl.service} was not checked`);
      const prev = byName.get(impl.service);
      byName.set(impl.service, {
        impl: prev ? { ...prev.impl, handlers: { ...prev.impl.handlers, ...impl.handlers } } : impl,
        definition: service.definition,
      });
    }
    return [...byName.values()];
  }
}
