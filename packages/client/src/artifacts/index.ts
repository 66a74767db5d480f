export * from './types.js';
export { parseArtifactManifest, parseDescriptor, parseIndexManifests } from './manifest.js';
export { checkMediaType, createdNow, packArtifact, pushArtifact } from './push.js';
export { resolveArtifact, resolveSubject } from './resolve.js';
export { listReferrers, listReferrersVia, referrersTag, type ReferrersResult } from './referrers.js';
export { pullArtifact, ORAS_UNPACK_ANNOTATION, type PulledFile, type PullResult } from './pull.js';
export { artifactChildLabels, fetchArtifact, fetchArtifactDetailed, type FetchArtifactResult } from './fetch.js';
export { checkTitle } from './titles.js';
