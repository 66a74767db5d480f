export * from './plugin.js';
export { default } from './plugin.js';
export { ImagesService, toWireImage, fromWireImage } from './images-service.js';
