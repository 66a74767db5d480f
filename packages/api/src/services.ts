// Service descriptions built from the Root: method lists for transports and grpc-js compatible definitions.
import protobuf from 'protobufjs';
import { codecOfType } from './codec.js';
import { protoRoot } from './proto-root.js';

/** Full names of the services in packages/api/proto. */
export const ServiceNames = {
  Containers: 'containerd.services.containers.v1.Containers',
  Content: 'containerd.services.content.v1.Content',
  Diff: 'containerd.services.diff.v1.Diff',
  Events: 'containerd.services.events.v1.Events',
  Images: 'containerd.services.images.v1.Images',
  Introspection: 'containerd.services.introspection.v1.Introspection',
  Leases: 'containerd.services.leases.v1.Leases',
  Namespaces: 'containerd.services.namespaces.v1.Namespaces',
  Snapshots: 'containerd.services.snapshots.v1.Snapshots',
  /** containerd 2's bidirectional streams of Any, named by id, that Transfer sends progress and auth requests on. */
  Streaming: 'containerd.services.streaming.v1.Streaming',
  Tasks: 'containerd.services.tasks.v1.Tasks',
  /** containerd 2's Transfer service (daemon-side pull). */
  Transfer: 'containerd.services.transfer.v1.Transfer',
  Version: 'containerd.services.version.v1.Version',
  /** Served over ttrpc on `<grpc address>.ttrpc` for shims' events. */
  TtrpcEvents: 'containerd.services.events.ttrpc.v1.Events',
  /** Served by runtime v2 shims over ttrpc. */
  ShimTask: 'containerd.task.v2.Task',
  Health: 'grpc.health.v1.Health',
  /** Berth's own: JSON Schemas of container extensions, by extension name. */
  ExtensionSchemas: 'berth.services.extensions.v1.Schemas',
  /** Berth's own: one extension of one container, with revisions; watch and query. */
  Extensions: 'berth.services.extensions.v1.Extensions',
} as const;

export type ServiceNameConstant = (typeof ServiceNames)[keyof typeof ServiceNames];

export interface ServiceMethod {
  /** Method name as in the proto, e.g. `ListStream`. */
  readonly name: string;
  /** Full message names, without a leading dot. */
  readonly requestType: string;
  readonly responseType: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/**
 * Structurally what @grpc/grpc-js calls a MethodDefinition: `server.addService(def, impl)` and
 * `makeGenericClientConstructor(def, name)` accept a record of these.
 */
export interface GrpcMethodDefinition<Req = unknown, Res = unknown, ReqIn = Req, ResIn = Res> {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly requestSerialize: (value: ReqIn) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => Req;
  readonly responseSerialize: (value: ResIn) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => Res;
  /** lowerCamelCase alias, as @grpc/proto-loader sets it. */
  readonly originalName: string;
}

export type GrpcServiceDefinition = Readonly<Record<string, GrpcMethodDefinition>>;

const methodLists = new Map<string, readonly ServiceMethod[]>();
const definitions = new Map<string, GrpcServiceDefinition>();

function stripDot(name: string): string {
  return name.startsWith('.') ? name.slice(1) : name;
}

/** The protobufjs Service, or undefined when the Root has no such service. */
export function findService(fullServiceName: string): protobuf.Service | undefined {
  const found = protoRoot().lookup(`.${stripDot(fullServiceName)}`);
  return found instanceof protobuf.Service ? found : undefined;
}

function requireService(fullServiceName: string): protobuf.Service {
  const service = findService(fullServiceName);
  if (!service) throw new Error(`protobuf service ${fullServiceName}: not found`);
  return service;
}

/** The methods of a service in declaration order. Throws when the service is unknown. */
export function serviceMethods(fullServiceName: string): readonly ServiceMethod[] {
  const existing = methodLists.get(fullServiceName);
  if (existing) return existing;
  const list = methodsOf(requireService(fullServiceName));
  methodLists.set(fullServiceName, list);
  return list;
}

/** The methods of a protobufjs Service of any Root, in declaration order. */
export function methodsOf(service: protobuf.Service): readonly ServiceMethod[] {
  const list = service.methodsArray.map((m): ServiceMethod => {
    m.resolve();
    if (!m.resolvedRequestType || !m.resolvedResponseType) {
      throw new Error(`protobuf method ${service.fullName}.${m.name}: unresolved types`);
    }
    return Object.freeze({
      name: m.name,
      requestType: stripDot(m.resolvedRequestType.fullName),
      responseType: stripDot(m.resolvedResponseType.fullName),
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
    });
  });
  return Object.freeze(list);
}

/** One method of a service, or undefined. */
export function serviceMethod(fullServiceName: string, method: string): ServiceMethod | undefined {
  if (!findService(fullServiceName)) return undefined;
  return serviceMethods(fullServiceName).find((m) => m.name === method);
}

function lowerCamel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * A grpc-js compatible service definition (record of method name to MethodDefinition) built from the Root,
 * without importing @grpc/grpc-js. Serializers use the shared codec, so handlers see the decoded shapes.
 */
export function serviceDefinition(fullServiceName: string): GrpcServiceDefinition {
  const existing = definitions.get(fullServiceName);
  if (existing) return existing;
  const frozen = definitionOf(requireService(fullServiceName));
  definitions.set(fullServiceName, frozen);
  return frozen;
}

/** The grpc-js compatible definition of a protobufjs Service of any Root (a plugin's own protos). */
export function definitionOf(service: protobuf.Service): GrpcServiceDefinition {
  const name = stripDot(service.fullName);
  const def: Record<string, GrpcMethodDefinition> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    if (!m.resolvedRequestType || !m.resolvedResponseType) throw new Error(`protobuf method ${name}.${m.name}: unresolved types`);
    const req = codecOfType(m.resolvedRequestType);
    const res = codecOfType(m.resolvedResponseType);
    def[m.name] = Object.freeze({
      path: `/${name}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: (value: unknown) => req.encode(value),
      requestDeserialize: (bytes: Buffer) => req.decode(bytes),
      responseSerialize: (value: unknown) => res.encode(value),
      responseDeserialize: (bytes: Buffer) => res.decode(bytes),
      originalName: lowerCamel(m.name),
    });
  }
  return Object.freeze(def);
}

/** Full names of every service in the Root. */
export function allServiceNames(): string[] {
  const names: string[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) names.push(stripDot(obj.fullName));
      if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type) walk(obj);
    }
  };
  walk(protoRoot());
  return names.sort();
}
