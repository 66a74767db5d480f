/** Kind strings: containerd's own where the capability is containerd's, `io.berth.<kind>.v<N>` otherwise. */
export const PluginKind = {
  Internal: 'io.containerd.internal.v1',
  Content: 'io.containerd.content.v1',
  Snapshotter: 'io.containerd.snapshotter.v1',
  Metadata: 'io.containerd.metadata.v1',
  Differ: 'io.containerd.differ.v1',
  Runtime: 'io.containerd.runtime.v2',
  Monitor: 'io.containerd.monitor.v1',
  GC: 'io.containerd.gc.v1',
  GRPC: 'io.containerd.grpc.v1',
  TTRPC: 'io.containerd.ttrpc.v1',
  Event: 'io.containerd.event.v1',
  Streaming: 'io.containerd.streaming.v1',
  Service: 'io.containerd.service.v1',
  Extensions: 'io.berth.extensions.v1',
} as const;
export type PluginKindName = (typeof PluginKind)[keyof typeof PluginKind];
