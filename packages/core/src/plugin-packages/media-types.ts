/**
 * The OCI artifact a plugin package is published as (docs/plugins.md, "Publishing and installing"): an OCI 1.1 image
 * manifest with this `artifactType`, the facts below as its config blob and the packed package as its one layer.
 */
export const PLUGIN_ARTIFACT_TYPE = 'application/vnd.berth.plugin.v1';
/** The config blob: PluginPackageFacts as JSON. */
export const PLUGIN_CONFIG_MEDIA_TYPE = 'application/vnd.berth.plugin.config.v1+json';
/** The layer: the package tree as a gzip-compressed tar (regular files and directories only). */
export const PLUGIN_LAYER_MEDIA_TYPE = 'application/vnd.berth.plugin.layer.v1.tar+gzip';
/** A signature attached to a plugin artifact as a referrer (its `subject`). */
export const PLUGIN_SIGNATURE_ARTIFACT_TYPE = 'application/vnd.berth.plugin.signature.v1';
/** The signature artifact's one layer: PluginSignature as JSON. */
export const PLUGIN_SIGNATURE_MEDIA_TYPE = 'application/vnd.berth.plugin.signature.v1+json';
