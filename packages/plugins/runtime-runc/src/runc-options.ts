// containerd.runc.v1.Options (runtime/v2/runc/options/oci.proto): what the runc shims read from Create's options
// (binary_name, root, systemd_cgroup, ...) and, on `start`'s stdin, shim_cgroup. berth passes the client's options
// through and only fills `root` when it is unset, so that runc's state lives under berthd's state dir rather than
// containerd's /run/containerd/runc.
import { messageCodec, type containerd } from '@berth/api';
import { InvalidArgumentError, type AnyValue } from '@berth/core';

export const RUNC_OPTIONS_TYPE_URL = 'containerd.runc.v1.Options';
const TYPE_NAME = 'containerd.runc.v1.Options';

/** Runtimes whose shims take containerd.runc.v1.Options. */
export function takesRuncOptions(runtime: string, shimBinary: string): boolean {
  return runtime === 'io.containerd.runc.v2' || runtime === 'io.containerd.runc.v1' || /(^|\/)containerd-shim-runc-v[12]$/.test(shimBinary);
}

const typeNameOf = (url: string): string => url.replace(/^.*\//, '');

/** The runc options in an Any, or undefined when it holds something else. InvalidArgument when undecodable. */
export function decodeRuncOptions(any: AnyValue | undefined): containerd.runc.v1.Options | undefined {
  if (!any || typeNameOf(any.typeUrl) !== TYPE_NAME) return undefined;
  try {
    return messageCodec(TYPE_NAME).decode(any.value);
  } catch (err) {
    throw new InvalidArgumentError(`runtime options (${any.typeUrl}) cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The options to hand the shim: containerd's choice (the task's own options, else the container's runtime
 * options), with the runc root defaulted to `defaultRoot` for runc shims. Options of another type are passed
 * unchanged; runc shims without options get `{ root: defaultRoot }`.
 */
export function shimOptions(input: { taskOptions?: AnyValue; runtimeOptions?: AnyValue }, runc: boolean, defaultRoot: string): AnyValue | undefined {
  const chosen = input.taskOptions ?? input.runtimeOptions;
  if (!runc) return chosen;
  const decoded = chosen ? decodeRuncOptions(chosen) : ({} as Partial<containerd.runc.v1.Options>);
  if (!decoded) return chosen;
  if (decoded.root) return chosen;
  const value = messageCodec(TYPE_NAME).encode({ ...decoded, root: defaultRoot });
  return { typeUrl: chosen?.typeUrl || RUNC_OPTIONS_TYPE_URL, value };
}

/** The marshalled Any `start` reads on stdin (containerd writes proto.Marshal(opts)). */
export function encodeAny(any: AnyValue | undefined): Uint8Array | undefined {
  if (!any) return undefined;
  return messageCodec('google.protobuf.Any').encode({ type_url: any.typeUrl, value: Buffer.from(any.value) });
}
