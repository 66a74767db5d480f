import { implementService, ServiceNames, type containerd } from '@berth/api';
import {
  InvalidArgumentError,
  opContextOf,
  type Descriptor,
  type Differ,
  type Mount,
  type RpcServiceImplementation,
  type RpcServices,
} from '@berth/core';

/**
 * containerd.services.diff.v1.Diff over the differ (containerd's services/diff local service with one differ,
 * `walking`). The request's namespace and lease reach the differ, so a Diff's layer lands in that namespace and
 * lease; Apply's stream-processor payloads are not used (berth has no stream processors).
 */
export class DiffService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(differ: Differ) {
    this.services = [
      implementService(ServiceNames.Diff, {
        Apply: async (req, ctx) => {
          const op = opContextOf(ctx); // the namespace first: none is FailedPrecondition, whatever else is wrong
          if (!req.diff) throw new InvalidArgumentError('diff descriptor is required');
          const applied = await differ.apply(op, fromWireDescriptor(req.diff), req.mounts.map(fromWireMount));
          return { applied: toWireDescriptor(applied) };
        },
        Diff: async (req, ctx) => {
          const op = opContextOf(ctx);
          const desc = await differ.compare(op, req.left.map(fromWireMount), req.right.map(fromWireMount), {
            mediaType: req.media_type,
            ref: req.ref,
            labels: { ...req.labels },
          });
          return { diff: toWireDescriptor(desc) };
        },
      }),
    ];
  }
}

function fromWireDescriptor(d: containerd.types.Descriptor): Descriptor {
  return { mediaType: d.media_type, digest: d.digest, size: d.size, annotations: { ...d.annotations } };
}

function toWireDescriptor(d: Descriptor): containerd.types.DescriptorInput {
  return { media_type: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations ?? {} };
}

function fromWireMount(m: containerd.types.Mount): Mount {
  return { type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] };
}
