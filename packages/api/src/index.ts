export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export { PROTO_DIR, loadProtoRoot, protoFiles, protoRoot } from './proto-root.js';
export {
  conversionOptions,
  messageCodec,
  encodedMessage,
  codecOfType,
  findMessageType,
  anyOf,
  packAny,
  unpackAny,
  jsonAny,
  unpackJsonAny,
  typeNameOfUrl,
  type MessageCodec,
  type AnyMessage,
  type AnyInput,
} from './codec.js';
export { ProtoDecodeError, isProtoDecodeError, checkEncoding, MAX_NESTING_DEPTH } from './strict-decode.js';
export {
  ServiceNames,
  serviceDefinition,
  definitionOf,
  methodsOf,
  serviceMethods,
  serviceMethod,
  findService,
  allServiceNames,
  type ServiceNameConstant,
  type ServiceMethod,
  type GrpcMethodDefinition,
  type GrpcServiceDefinition,
} from './services.js';
export {
  StatusCode,
  ERRDEF_TO_STATUS,
  STATUS_TO_ERRDEF,
  RpcStatusError,
  hasStatusCode,
  defaultErrorToStatus,
  type StatusCodeValue,
  type RpcStatus,
} from './status.js';
export type { RpcCallOptions } from './rpc-types.js';
export { loadProtoSource, resolveService, type ResolvedService } from './service-protos.js';
export * from './ttrpc/index.js';
export type * from './generated/types.js';
export { implementService, toTimestamp, fromTimestamp, GO_ZERO_TIME_SECONDS, toAnyValue, fromAnyValue, publishEvent, containerToWire } from './service-impl.js';
export { encodeContainer, containerMessage, containersResponse } from './container-wire.js';
