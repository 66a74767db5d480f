import type { JSONSchemaType } from '@berth/core';

export interface ServicesDiffConfig {
  /** What the greeting starts with. */
  readonly greeting: string;
}

export const servicesDiffConfigDefaults: ServicesDiffConfig = { greeting: 'hello' };

export const servicesDiffConfigSchema: JSONSchemaType<ServicesDiffConfig> = {
  $id: 'io.containerd.grpc.v1.diff',
  type: 'object',
  additionalProperties: false,
  properties: { greeting: { type: 'string', minLength: 1 } },
  required: ['greeting'],
};
