export { default, streamingServicePlugin } from './plugin.js';
export { CallStream, StreamingService } from './streaming-service.js';
