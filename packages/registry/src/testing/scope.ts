// What the registry tests set up each time: fake registries and resolvers that are closed after each test, and a
// list of other cleanups, run last first after each test (also when it fails).
import { afterEach } from 'vitest';
import { createResolver, type HttpResolver, type HttpResolverOptions } from '../resolver.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from './fake-registry.js';

export interface RegistryTestScope {
  /** Runs `cleanup` after the current test, before the ones deferred earlier. */
  defer(cleanup: () => unknown): void;
  /** A fake registry on loopback, closed after the test. */
  registry(options?: FakeRegistryOptions): Promise<FakeRegistry>;
  /** A resolver with `defaults` under `options`, closed after the test. */
  resolver(options?: HttpResolverOptions): HttpResolver;
}

/**
 * Registers the afterEach hook of a test file and returns its helpers. `beforeCleanups` runs first in that hook
 * (e.g. to end responses a test left stalled, which would otherwise keep a registry from closing).
 */
export function registryTestScope(defaults: HttpResolverOptions, beforeCleanups?: () => void): RegistryTestScope {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    beforeCleanups?.();
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const defer = (cleanup: () => unknown): void => {
    cleanups.push(cleanup);
  };
  return {
    defer,
    async registry(options = {}) {
      const r = await startFakeRegistry(options);
      defer(() => r.close());
      return r;
    },
    resolver(options = {}) {
      const r = createResolver({ ...defaults, ...options });
      defer(() => r.close());
      return r;
    },
  };
}
