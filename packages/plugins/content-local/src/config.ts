import type { JSONSchemaType } from '@berth/core';

/** The section `[plugins."io.containerd.content.v1.content"]` of the daemon config. */
export interface ContentLocalConfig {
  /** Directory of the store; default: the plugin's root dir, `<root>/io.containerd.content.v1.content`. */
  root_path?: string;
}

export const contentLocalConfigSchema: JSONSchemaType<ContentLocalConfig> = {
  $id: 'io.containerd.content.v1.content',
  type: 'object',
  properties: {
    root_path: { type: 'string', nullable: true, minLength: 1 },
  },
  required: [],
  additionalProperties: false,
};

export const contentLocalConfigDefaults: ContentLocalConfig = {};
