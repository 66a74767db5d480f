import { implementService, publishEvent, ServiceNames, type containerd } from '@berth/api';
import {
  InvalidArgumentError,
  isNotFound,
  namespaceOf,
  type EventPublisher,
  type Labels,
  type NamespaceStore,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

type Namespace = containerd.services.namespaces.v1.NamespaceInput;

export class NamespacesService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    private readonly store: NamespaceStore,
    private readonly events: EventPublisher,
  ) {
    this.services = [
      implementService(ServiceNames.Namespaces, {
        // containerd answers a name it has never seen with empty labels, not NotFound (its store reads a missing
        // bucket as no labels), and clients rely on it: containerd.New(WithDefaultNamespace(ns)) reads the
        // namespace's default-runtime label on connect, so a Go client of a fresh namespace would fail.
        Get: async (req) => ({ namespace: await this.get(req.name).catch((err: unknown) => {
          if (isNotFound(err)) return { name: req.name, labels: {} };
          throw err;
        }) }),
        List: async () => ({ namespaces: await this.list() }),
        Create: async (req, ctx) => {
          const { name, labels } = required(req.namespace);
          await store.create(name, labels);
          await this.publish(ctx, '/namespaces/create', 'containerd.events.NamespaceCreate', { name, labels });
          return { namespace: { name, labels } };
        },
        Update: async (req, ctx) => {
          const { name, labels } = required(req.namespace);
          const paths = req.update_mask?.paths ?? [];
          // containerd's rule: with a mask only `labels.<key>` paths; a bare `labels` (replace all) is refused too.
          for (const path of paths) {
            if (!path.startsWith('labels.')) throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field`);
          }
          const updated = await store.update(name, labels, paths.length > 0 ? paths : undefined);
          await this.publish(ctx, '/namespaces/update', 'containerd.events.NamespaceUpdate', { name, labels: updated });
          return { namespace: { name, labels: updated } };
        },
        Delete: async (req, ctx) => {
          await store.delete(req.name);
          await this.publish(ctx, '/namespaces/delete', 'containerd.events.NamespaceDelete', { name: req.name });
        },
      }),
    ];
  }

  /** Every namespace with its labels; one deleted while we read is left out rather than failing the list. */
  private async list(): Promise<Namespace[]> {
    const found = await Promise.all((await this.store.list()).map((name) => this.get(name).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    })));
    return found.filter((ns): ns is Namespace => ns !== undefined);
  }

  private async get(name: string): Promise<Namespace> {
    return { name, labels: await this.store.labels(name) };
  }

  /** containerd publishes in the namespace of the request; a request without one publishes nothing. */
  private async publish(
    ctx: RpcContext,
    topic: string,
    type: 'containerd.events.NamespaceCreate' | 'containerd.events.NamespaceUpdate' | 'containerd.events.NamespaceDelete',
    event: { name: string; labels?: Labels },
  ): Promise<void> {
    const namespace = namespaceOf(ctx);
    if (namespace) await publishEvent(this.events, namespace, topic, type, event);
  }
}

function required(ns: containerd.services.namespaces.v1.Namespace | null): { name: string; labels: Labels } {
  if (!ns?.name) throw new InvalidArgumentError('namespace name is required');
  return { name: ns.name, labels: { ...ns.labels } };
}
