export { default, snapshotterNativePlugin } from './plugin.js';
export { NativeSnapshotter, type NativeSnapshotterOptions } from './native-snapshotter.js';
export { nativeSnapshotterConfigDefaults, nativeSnapshotterConfigSchema, type NativeSnapshotterConfig } from './config.js';
