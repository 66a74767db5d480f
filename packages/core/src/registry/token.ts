/**
 * Typed service identifiers. Identity is the `Symbol.for` key, so two copies of core agree on the same token.
 *
 * - A `Token<T>` names a capability. A consumer that requires `token` gets the first loaded provider in composition
 *   order; `token.all` gets every loaded provider as a `ReadonlyMap` keyed by plugin id, in composition order (as
 *   containerd's `GetByType` hands the metadata plugin its snapshotters by name); `token.optional` gets the first
 *   provider or `undefined`.
 * - A token may name role tokens it satisfies (`roles`): a provider of the full content store is also a provider of
 *   the content reader role, so a differ can ask for the reader alone.
 * - A `ContributionPoint<C>` is an extension hook owned by one consumer: every plugin that provides it contributes a
 *   value, contributors initialise before the owner, and a failed contributor never fails the owner.
 */
export interface Token<T> {
  readonly kind: 'token';
  readonly id: string;
  readonly key: symbol;
  /** Role tokens that every provider of this token also provides. */
  readonly roles: readonly AnyToken[];
  /** Requirement: every loaded provider, keyed by plugin id, in composition order. */
  readonly all: AllOf<T>;
  /** Requirement: the first loaded provider, or undefined when none loaded. */
  readonly optional: OptionalOf<T>;
  /** Phantom field carrying the provided type; never set at run time. */
  readonly T?: T;
  /** Phantom, never set: makes a token of a narrower type unusable where a wider one is a role (see `roles`). */
  readonly accepts?: (value: T) => void;
}

/** What can be a role of a token of type T: any token whose type T satisfies. */
export interface RoleToken<T> {
  readonly kind: 'token';
  readonly id: string;
  readonly key: symbol;
  readonly accepts?: (value: T) => void;
}

export interface AllOf<T> {
  readonly kind: 'all';
  readonly token: Token<T>;
  readonly T?: T;
}

export interface OptionalOf<T> {
  readonly kind: 'optional';
  readonly token: Token<T>;
  readonly T?: T;
}

export interface ContributionPoint<C> {
  readonly kind: 'point';
  readonly id: string;
  readonly key: symbol;
  readonly T?: C;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyToken = Token<any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPoint = ContributionPoint<any>;
/** What `provides` may name: a token or a contribution point. */
export type Providable = AnyToken | AnyPoint;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Requirement = AnyToken | AllOf<any> | OptionalOf<any> | AnyPoint;

/** A plugin's `requires`: a record of requirements. */
export type TokenRecord = Readonly<Record<string, Requirement>>;

/** A plugin's `provides`: one token or point, or a record of them (several capabilities of one plugin). */
export type ProvidesSpec = Providable | Readonly<Record<string, Providable>>;

type ValueOf<P> = P extends { readonly T?: infer T } ? T : never;

/** What `init` must return for a `provides` spec: the value itself, or a record with one value per key. */
export type Provided<P> = P extends undefined
  ? unknown
  : P extends Providable
    ? ValueOf<P>
    : { readonly [K in keyof P]: ValueOf<P[K]> };

/** The resolved dependencies handed to `init`, fully typed from `requires`. */
export type Deps<R extends TokenRecord> = {
  readonly [K in keyof R]: R[K] extends { readonly kind: 'optional' }
    ? ValueOf<R[K]> | undefined
    : R[K] extends { readonly kind: 'all' } | { readonly kind: 'point' }
      ? ReadonlyMap<string, ValueOf<R[K]>>
      : ValueOf<R[K]>;
};

export interface TokenOptions<T> {
  /** Tokens for interfaces that T satisfies (a role token of a type T does not satisfy fails to compile). */
  readonly roles?: readonly RoleToken<T>[];
}

function tokenKey(id: string): symbol {
  return Symbol.for(`@berth/token:${id}`);
}

export function createToken<T>(id: string, options: TokenOptions<T> = {}): Token<T> {
  const token = {
    kind: 'token' as const,
    id,
    key: tokenKey(id),
    roles: Object.freeze([...((options.roles ?? []) as readonly AnyToken[])]),
  } as { kind: 'token'; id: string; key: symbol; roles: readonly AnyToken[]; all: AllOf<T>; optional: OptionalOf<T> };
  token.all = Object.freeze({ kind: 'all' as const, token: token as Token<T> });
  token.optional = Object.freeze({ kind: 'optional' as const, token: token as Token<T> });
  return Object.freeze(token) as Token<T>;
}

export function createContributionPoint<C>(id: string): ContributionPoint<C> {
  return Object.freeze({ kind: 'point' as const, id, key: Symbol.for(`@berth/point:${id}`) });
}

export interface RequirementShape {
  readonly target: Providable;
  readonly mode: 'one' | 'optional' | 'all';
}

/** What a requirement asks for: which token or point, and how many providers. */
export function describeRequirement(requirement: Requirement): RequirementShape {
  switch (requirement.kind) {
    case 'token':
      return { target: requirement, mode: 'one' };
    case 'optional':
      return { target: requirement.token, mode: 'optional' };
    case 'all':
      return { target: requirement.token, mode: 'all' };
    case 'point':
      return { target: requirement, mode: 'all' };
  }
}

/** The tokens and points a `provides` spec names, with the key of each in the value `init` returns (none for one). */
export function describeProvides(spec: ProvidesSpec | undefined): Array<{ readonly key?: string; readonly target: Providable }> {
  if (spec === undefined) return [];
  if (isProvidable(spec)) return [{ target: spec }];
  return Object.entries(spec).map(([key, target]) => ({ key, target }));
}

export function isProvidable(value: unknown): value is Providable {
  if (value === null || typeof value !== 'object') return false;
  const kind = (value as { kind?: unknown }).kind;
  return (kind === 'token' || kind === 'point') && typeof (value as { key?: unknown }).key === 'symbol';
}

/** A token with every role it satisfies, transitively, itself first. */
export function withRoles(token: AnyToken): AnyToken[] {
  const out: AnyToken[] = [];
  const visit = (t: AnyToken) => {
    if (out.some((o) => o.key === t.key)) return;
    out.push(t);
    for (const role of t.roles) visit(role);
  };
  visit(token);
  return out;
}

/** A typed stand-in for a token (tests; host services): `override(contentStoreToken, store)` checks the instance type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Override<T = any> {
  readonly token: Token<T>;
  readonly value: T;
}

export function override<T>(token: Token<T>, value: NoInfer<T>): Override<T> {
  return Object.freeze({ token, value });
}
