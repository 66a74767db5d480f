/**
 * Typed service identifiers. Identity is the `Symbol.for` key, so two copies of core agree on the same token.
 * A `MultiToken` may be provided by several plugins (gRPC services): consumers receive every instance.
 */
export interface Token<T> {
  readonly id: string;
  readonly key: symbol;
  readonly multiple: false;
  /** Phantom field carrying the provided type; never set at run time. */
  readonly T?: T;
}

export interface MultiToken<T> {
  readonly id: string;
  readonly key: symbol;
  readonly multiple: true;
  readonly T?: T;
}

export type AnyToken = Token<unknown> | MultiToken<unknown>;

export function createToken<T>(id: string): Token<T> {
  return Object.freeze({ id, key: Symbol.for(`@berth/token:${id}`), multiple: false as const });
}

export function createMultiToken<T>(id: string): MultiToken<T> {
  return Object.freeze({ id, key: Symbol.for(`@berth/token:${id}`), multiple: true as const });
}

export interface OptionalToken<T> {
  readonly optional: true;
  readonly token: Token<T>;
}

/** Marks a dependency as optional: `init` receives `undefined` when no loaded plugin provides it. */
export function optional<T>(token: Token<T>): OptionalToken<T> {
  return Object.freeze({ optional: true as const, token });
}

/** A plugin's `requires`: a record of tokens. */
export type TokenRecord = Readonly<Record<string, AnyToken | OptionalToken<unknown>>>;

/** The resolved dependencies handed to `init`, fully typed from `requires`. */
export type Deps<R extends TokenRecord> = {
  readonly [K in keyof R]: R[K] extends OptionalToken<infer T>
    ? T | undefined
    : R[K] extends MultiToken<infer T>
      ? readonly T[]
      : R[K] extends Token<infer T>
        ? T
        : never;
};

export function describeRequirement(entry: AnyToken | OptionalToken<unknown>): { token: AnyToken; optional: boolean } {
  return 'optional' in entry ? { token: entry.token as AnyToken, optional: true } : { token: entry, optional: false };
}
