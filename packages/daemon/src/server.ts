import type { Server as HttpServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import type { Server as NetServer } from 'node:net';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { TtrpcServer } from '@berth/api';
import {
  metricsCollectorsPoint,
  PluginHost,
  rpcServicesPoint,
  type MetricsCollector,
  ttrpcAddressOf,
  type AnyPluginManifest,
  type Logger,
  type RpcServiceImplementation,
  type ServerConfig,
  type ServerInfo,
} from '@berth/core';
import { bindService } from './grpc/bind.js';
import { ServiceCatalog } from './grpc/services.js';
import { widenFlowControlWindows } from './grpc/flow-control.js';
import { toWireStatus } from './grpc/errgrpc.js';
import { ffiStatus } from '@berth/sys';
import { listenUnix, systemListenBacklog } from './listen.js';
import { MemoryTrimmer } from './memory-trim.js';
import { GrpcMetrics, type MethodMeterFactory } from './grpc-metrics.js';
import { buildInfo, Scraper, serveMetrics } from './metrics-http.js';
import { ProcessMetrics } from './process-metrics.js';
import { requireSameUser } from './peer-auth.js';
import { ownerOnlySocket, prepareSocketPath, removeSocket, secureSocket } from './socket.js';
import { PACKAGE_VERSION } from './version.js';

const noop = (): void => {};

export const DAEMON_VERSION = `v${PACKAGE_VERSION}`;
export const DAEMON_REVISION = `berth-${PACKAGE_VERSION}`;

export interface DaemonOptions {
  readonly config: ServerConfig;
  readonly plugins: readonly AnyPluginManifest[];
  readonly sources?: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** The config file, named in config errors. */
  readonly configSource?: string;
  /** The program's name in log lines (default berthd). */
  readonly name?: string;
  /** What `ctr version` reports (default berthd's own version and revision). */
  readonly version?: string;
  readonly revision?: string;
}

/**
 * berthd: a composition of plugins served over gRPC (unix socket), ttrpc (`<address>.ttrpc`, for shims) and,
 * when configured, HTTP metrics. Services are mounted only after every plugin has been initialised.
 */
export class Daemon {
  private grpc?: Server;
  /** berthd owns the gRPC listener (for its backlog) and hands accepted sockets to grpc-js. */
  private grpcListener?: NetServer;
  private ttrpc?: TtrpcServer;
  private metricsServer?: HttpServer;
  private readonly catalog: ServiceCatalog;
  private trimmer?: MemoryTrimmer;
  private processMetrics?: ProcessMetrics;
  private stopping?: Promise<void>;
  metricsPort?: number;

  private constructor(
    readonly host: PluginHost,
    readonly info: ServerInfo,
    private readonly options: DaemonOptions,
    catalog: ServiceCatalog,
  ) {
    this.catalog = catalog;
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const { config, log } = options;
    const info: ServerInfo = {
      root: config.root,
      state: config.state,
      grpcAddress: config.grpc.address,
      ttrpcAddress: ttrpcAddressOf(config),
      version: options.version ?? DAEMON_VERSION,
      revision: options.revision ?? DAEMON_REVISION,
    };
    // Fail early, before any plugin runs, when another daemon holds the socket.
    await prepareSocketPath(info.grpcAddress);
    await prepareSocketPath(info.ttrpcAddress);
    await mkdir(config.root, { recursive: true, mode: 0o711 });
    await mkdir(config.state, { recursive: true, mode: 0o711 });
    // Every contribution of services is checked at its plugin's init: a bad one fails that plugin only.
    const catalog = new ServiceCatalog();
    const host = PluginHost.create({
      plugins: options.plugins,
      server: info,
      pluginConfig: config.plugins,
      disabled: config.disabled_plugins,
      required: config.required_plugins,
      sources: options.sources,
      configSource: options.configSource,
      log,
      validators: [{ target: rpcServicesPoint, validate: (value, plugin) => catalog.check(value as never, plugin) }],
    });
    const daemon = new Daemon(host, info, options, catalog);
    try {
      await host.initAll();
      await daemon.serve();
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    return daemon;
  }

  private async serve(): Promise<void> {
    const { config, log } = this.options;
    const trimmer = (this.trimmer = new MemoryTrimmer({ log }));
    // The gRPC series exist only when metrics are served; every finished call marks the trimmer busy either way.
    const grpcMetrics = config.metrics.address ? new GrpcMetrics(config.metrics.grpc_histogram) : undefined;
    const observe: MethodMeterFactory = (service, method, type) => {
      const meter = grpcMetrics?.meter(service, method, type);
      if (!meter) return { started: noop, received: noop, sent: noop, handled: trimmer.activity };
      return {
        started: () => meter.started(),
        received: () => meter.received(),
        sent: () => meter.sent(),
        handled: (code, seconds) => {
          trimmer.activity();
          meter.handled(code, seconds);
        },
      };
    };
    const implementations = [...this.host.all(rpcServicesPoint).values()].flatMap((s) => s.services);

    // The gRPC socket comes last: clients (and the test harness) take it answering as berthd being up, so the
    // ttrpc socket and the metrics endpoint are already there by then.
    const ffi = ffiStatus();
    if (!ffi.loaded) log.error('ttrpc: the peer check (SO_PEERCRED) cannot run, so every ttrpc connection will be refused', { reason: ffi.reason });
    this.ttrpc = new TtrpcServer({
      errorToStatus: (err) => toWireStatus(err),
      onError: (err) => log.warn('ttrpc connection error', { error: err }),
      authorizePeer: requireSameUser(log),
    });
    for (const { impl } of this.catalog.merged(implementations.filter((i) => i.transports?.includes('ttrpc')))) {
      this.ttrpc.register(impl.service, impl.handlers);
    }
    await this.ttrpc.listen(this.info.ttrpcAddress, { backlog: systemListenBacklog() });
    // Owner-only whatever [grpc] gid says: only the daemon's own shims talk ttrpc (and the peer check refuses others).
    await ownerOnlySocket(this.info.ttrpcAddress);

    if (config.metrics.address) {
      const processMetrics = (this.processMetrics = new ProcessMetrics());
      const build = buildInfo(this.info.version, this.info.revision);
      const collectors = (): ReadonlyMap<string, MetricsCollector> =>
        new Map<string, MetricsCollector>([
          ['berthd', build],
          ['berthd.process', processMetrics],
          ['berthd.grpc', grpcMetrics!],
          ...this.host.metricsRegistries(),
          ...[...this.host.all(metricsCollectorsPoint)].map(([id, c]) => [`collector ${id}`, c] as const),
        ]);
      const scraper = new Scraper(collectors, { timeoutMs: config.metrics.collector_timeout_ms, log });
      const { server, port } = await serveMetrics(config.metrics.address, () => scraper.scrape());
      this.metricsServer = server;
      this.metricsPort = port;
    }
    this.grpc = new Server({
      'grpc.max_receive_message_length': config.grpc.max_recv_message_size,
      'grpc.max_send_message_length': config.grpc.max_send_message_size,
      // Channelz bookkeeping costs on every call and nothing here serves it.
      'grpc.enable_channelz': 0,
    });
    const grpcImpls = implementations.filter((i) => (i.transports ?? ['grpc']).includes('grpc'));
    for (const { impl, definition } of this.catalog.merged(grpcImpls)) bindService(this.grpc, impl, definition, log, observe);
    // grpc-js's bindAsync listens with Node's default backlog (511), which bursts of connects overflow; the
    // injector serves sockets accepted by a listener berthd made with the system backlog, with the same HTTP/2
    // settings, sessions and shutdown as a bound port.
    const injector = this.grpc.createConnectionInjector(ServerCredentials.createInsecure());
    if (!widenFlowControlWindows(this.grpc)) log.warn('cannot widen grpc flow-control windows: content transfers will be slower');
    this.grpcListener = await listenUnix(this.info.grpcAddress, (socket) => {
      trimmer.activity();
      injector.injectConnection(socket);
    });
    this.grpcListener.on('error', (err) => log.warn('grpc listener error', { error: err }));
    await secureSocket(this.info.grpcAddress, config.grpc.uid, config.grpc.gid);

    log.info(`${this.options.name ?? 'berthd'} successfully booted`, {
      address: this.info.grpcAddress,
      ttrpc: this.info.ttrpcAddress,
      metrics: config.metrics.address || undefined,
      plugins: this.host.list().filter((p) => p.status === 'ok').length,
    });
  }

  /** Stops serving, then closes the plugins in reverse order. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.trimmer?.close();
      const { log } = this.options;
      // Stop accepting first (close() returns at once; its callback waits for the accepted sockets), then let
      // grpc-js end its sessions gracefully.
      const listener = this.grpcListener;
      const listenerClosed = listener ? new Promise<void>((resolve) => listener.close(() => resolve())) : Promise.resolve();
      if (this.grpc) {
        const grpc = this.grpc;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            grpc.forceShutdown();
            resolve();
          }, 2000);
          grpc.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // The sessions are gone, so their sockets are closing; do not wait long for the last of them.
      await Promise.race([listenerClosed, new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
      await this.ttrpc?.close();
      await new Promise<void>((resolve) => (this.metricsServer ? this.metricsServer.close(() => resolve()) : resolve()));
      this.processMetrics?.close();
      await this.host.close();
      await removeSocket(this.info.grpcAddress);
      await removeSocket(this.info.ttrpcAddress);
      log.info(`${this.options.name ?? 'berthd'} stopped`);
    })();
    return this.stopping;
  }
}
