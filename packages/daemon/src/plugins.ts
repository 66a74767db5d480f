// THE list of plugins berthd composes, in order (order breaks ties between providers of one token).
import { exchangePlugin, streamManagerPlugin, type AnyPluginManifest } from '@berth/core';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import extensionsJsonPlugin from '@berth/plugin-extensions-json';
import gcSchedulerPlugin from '@berth/plugin-gc-scheduler';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import metricsCgroupsPlugin from '@berth/plugin-metrics-cgroups';
import runtimeRuncPlugin from '@berth/plugin-runtime-runc';
import snapshotterNativePlugin from '@berth/plugin-snapshotter-native';
import overlaySnapshotterPlugin from '@berth/plugin-snapshotter-overlay';
import containersServicePlugin from '@berth/plugin-services-containers';
import contentServicePlugin from '@berth/plugin-services-content';
import diffServicePlugin from '@berth/plugin-services-diff';
import eventsServicePlugin from '@berth/plugin-services-events';
import extensionsServicePlugin from '@berth/plugin-services-extensions';
import healthServicePlugin from '@berth/plugin-services-healthcheck';
import imagesServicePlugin from '@berth/plugin-services-images';
import introspectionServicePlugin from '@berth/plugin-services-introspection';
import leasesServicePlugin from '@berth/plugin-services-leases';
import namespacesServicePlugin from '@berth/plugin-services-namespaces';
import snapshotsServicePlugin from '@berth/plugin-services-snapshots';
import streamingServicePlugin from '@berth/plugin-services-streaming';
import tasksServicePlugin from '@berth/plugin-services-tasks';
import transferServicePlugin from '@berth/plugin-services-transfer';
import versionServicePlugin from '@berth/plugin-services-version';

export const daemonPlugins: readonly AnyPluginManifest[] = [
  contentLocalPlugin,
  overlaySnapshotterPlugin,
  snapshotterNativePlugin,
  extensionsJsonPlugin,
  metadataLmdbPlugin,
  exchangePlugin,
  runtimeRuncPlugin,
  metricsCgroupsPlugin,
  streamManagerPlugin,
  gcSchedulerPlugin,
  differWalkingPlugin,
  introspectionServicePlugin,
  containersServicePlugin,
  contentServicePlugin,
  diffServicePlugin,
  eventsServicePlugin,
  extensionsServicePlugin,
  healthServicePlugin,
  imagesServicePlugin,
  leasesServicePlugin,
  namespacesServicePlugin,
  snapshotsServicePlugin,
  streamingServicePlugin,
  tasksServicePlugin,
  transferServicePlugin,
  versionServicePlugin,
];
