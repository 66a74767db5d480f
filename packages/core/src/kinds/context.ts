/**
 * What a namespaced operation carries (containerd passes it in context.Context): the namespace, the lease that
 * new resources join, and an abort signal. Implementations that are not namespaced ignore `namespace`.
 */
export interface OpContext {
  readonly namespace: string;
  readonly lease?: string;
  readonly signal?: AbortSignal;
}

export type Labels = Record<string, string>;
