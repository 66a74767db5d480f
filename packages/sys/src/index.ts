// @berth/sys: Linux primitives Node lacks. Nothing here loads koffi until a function needs it.
export * from './constants.js';
export { type SysError } from './errors.js';
export { type PathArg } from './path.js';
export { ffiStatus, NO_FFI_ENV } from './binding.js';
export {
  mount,
  umount2,
  unmountAll,
  mountAll,
  parseMountOptions,
  compactLowerdir,
  MOUNT_DATA_MAX,
  type Mount,
  type MountCallOptions,
} from './mount.js';
export { mknod, mkfifo } from './nodes.js';
export { lsetxattr, lgetxattr, llistxattr } from './xattr.js';
export { lutimens, futimens, type Timespec } from './times.js';
export { peerCredentials, type PeerCredentials } from './peercred.js';
export { execve, mallocTrim } from './process.js';
export { spawnPiped, decodeWaitStatus, type SpawnOptions, type SpawnedChild, type ChildExit } from './spawn.js';
export { sdNotify, bindDatagramSocket, unixAddress, NOTIFY_SOCKET_ENV, type DatagramSocket } from './notify.js';
export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
