export { default, overlaySnapshotterPlugin } from './plugin.js';
export { OverlaySnapshotter, UPPERDIR_LABEL, RECORDS_FILE, type OverlaySnapshotterOptions } from './overlay-snapshotter.js';
export { overlayConfigSchema, overlayConfigDefaults, type OverlayConfig } from './config.js';
export { probeOverlay, type ProbeResult } from './probe.js';
