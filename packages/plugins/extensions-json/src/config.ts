import type { JSONSchemaType } from '@berth/core';

/** `[plugins."io.berth.extensions.v1.json"]` */
export interface ExtensionsJsonConfig {
  /**
   * Absolute paths of schema files loaded at start (see README: each holds one `{name, schema, indexed_paths}`
   * object or an array of them). Their schemas cannot be replaced or deleted through the API.
   */
  schemas: string[];
  /** Refuse (InvalidArgument) every extension whose name has no registered schema; off: store those untouched, as containerd. */
  require_registered: boolean;
}

export const extensionsJsonConfigDefaults: ExtensionsJsonConfig = {
  schemas: [],
  require_registered: false,
};

export const extensionsJsonConfigSchema: JSONSchemaType<ExtensionsJsonConfig> = {
  $id: 'io.berth.extensions.v1.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    schemas: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    require_registered: { type: 'boolean', default: false },
  },
  required: [],
};
