import { once } from 'node:events';
import { implementService, ServiceNames, type grpc } from '@berth/api';
import { NotFoundError, type RpcContext, type RpcServiceImplementation, type RpcServices } from '@berth/core';

type Status = grpc.health.v1.HealthCheckResponse.ServingStatus;

/** The overall server ('') and every served service report SERVING; unknown service names are NotFound. */
export class HealthService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly known: ReadonlySet<string> = new Set(Object.values(ServiceNames))) {
    this.services = [
      implementService(ServiceNames.Health, {
        Check: async (req) => ({ status: this.status(req.service) }),
        Watch: (req, ctx) => this.watch(req.service, ctx),
      }),
    ];
  }

  private status(service: string): Status {
    if (service === '' || this.known.has(service)) return 'SERVING';
    throw new NotFoundError(`unknown service ${service}`);
  }

  private async *watch(service: string, ctx: RpcContext): AsyncIterable<{ status: Status }> {
    yield { status: service === '' || this.known.has(service) ? 'SERVING' : 'SERVICE_UNKNOWN' };
    if (!ctx.signal.aborted) await once(ctx.signal, 'abort');
  }
}
