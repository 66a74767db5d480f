import { messageCodec, packAny, toAnyValue, typeNameOfUrl, type containerd } from '@berth/api';
import { DeadlineExceededError, InvalidArgumentError, Mutex, NotImplementedError, type Stream } from '@berth/core';
import type { ResolverOptions } from '@berth/registry';

const AUTH_RESPONSE = 'containerd.types.transfer.AuthResponse';
/** How long a client may take to answer one credential request (containerd waits forever). */
export const AUTH_ANSWER_TIMEOUT_MS = 60_000;

/**
 * What an OCIRegistry source's RegistryResolver asks of the resolver: `default_scheme: http` is --plain-http,
 * `host_dir` a certs.d directory, `headers` go on every request, and `auth_stream` names the stream the client
 * answers credential requests on (containerd 2's credCallback: one AuthRequest, one AuthResponse, one at a time).
 */
export function resolverOptionsOf(
  source: containerd.types.transfer.OCIRegistry,
  authStream: Stream | undefined,
  signal: AbortSignal,
  answerTimeoutMs = AUTH_ANSWER_TIMEOUT_MS,
): ResolverOptions {
  const resolver = source.resolver;
  const scheme = resolver?.default_scheme ?? '';
  if (scheme !== '' && scheme !== 'http' && scheme !== 'https') {
    throw new InvalidArgumentError(`registry default_scheme ${JSON.stringify(scheme)}: expected http or https`);
  }
  const headers = resolver?.headers ?? {};
  return {
    ...(scheme === 'http' ? { plainHttp: true } : {}),
    ...(resolver?.host_dir ? { hostsDir: resolver.host_dir } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(authStream ? { credentials: credentialsOver(authStream, source.reference, signal, answerTimeoutMs) } : {}),
  };
}

function credentialsOver(stream: Stream, reference: string, signal: AbortSignal, answerTimeoutMs: number): NonNullable<ResolverOptions['credentials']> {
  const oneAtATime = new Mutex();
  return (host) =>
    oneAtATime.run(async () => {
      await stream.send(toAnyValue(packAny('containerd.types.transfer.AuthRequest', { host, reference })));
      let reply;
      try {
        reply = await stream.recv({ signal: AbortSignal.any([signal, AbortSignal.timeout(answerTimeoutMs)]) });
      } catch (err) {
        if (signal.aborted) throw err;
        throw new DeadlineExceededError(`auth stream: no answer to the credential request for ${host} within ${answerTimeoutMs / 1000} s`, { cause: err });
      }
      if (!reply) return undefined;
      if (typeNameOfUrl(reply.typeUrl) !== AUTH_RESPONSE) {
        throw new InvalidArgumentError(`auth stream: expected a ${AUTH_RESPONSE}, got ${JSON.stringify(reply.typeUrl)}`);
      }
      let response: containerd.types.transfer.AuthResponse;
      try {
        response = messageCodec(AUTH_RESPONSE).decode(reply.value);
      } catch (err) {
        throw new InvalidArgumentError(`auth stream: ${(err as Error).message}`, { cause: err });
      }
      switch (response.authType) {
        case 'CREDENTIALS':
          return { username: response.username, secret: response.secret };
        case 'REFRESH':
          // A refresh token is a secret without a user name, as containerd's docker authorizer takes it.
          return { username: '', secret: response.secret };
        case 'HEADER':
          throw new NotImplementedError(`auth stream: credentials of type HEADER (a raw Authorization header) for ${host}`);
        default:
          return undefined;
      }
    });
}
