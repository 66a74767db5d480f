// The OCI runtime spec (runtime-spec 1.0.2, the version containerd 1.6 vendors) as the JSON it is stored as: the
// fields berth fills, in the order Go's encoding/json writes them, so a spec made here reads like one made by
// containerd's oci package (`ctr containers info`). Optional fields are the ones Go marks `omitempty`.

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface OciCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args?: string[];
  commandLine?: string;
  env?: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface OciRoot {
  path: string;
  readonly?: boolean;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciMemory {
  limit?: number;
  reservation?: number;
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
}

export interface OciCpu {
  shares?: number;
  quota?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
}

export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: OciMemory;
  cpu?: OciCpu;
  pids?: { limit: number };
  [other: string]: unknown;
}

export interface OciNamespace {
  type: string;
  path?: string;
}

export interface OciSeccomp {
  defaultAction: string;
  architectures?: string[];
  flags?: string[];
  syscalls?: unknown[];
  [other: string]: unknown;
}

export interface OciLinux {
  uidMappings?: unknown[];
  gidMappings?: unknown[];
  sysctl?: Record<string, string>;
  resources?: OciResources;
  cgroupsPath?: string;
  namespaces?: OciNamespace[];
  devices?: unknown[];
  seccomp?: OciSeccomp;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  [other: string]: unknown;
}

export interface OciSpec {
  ociVersion: string;
  process?: OciProcess;
  root?: OciRoot;
  hostname?: string;
  mounts?: OciMount[];
  hooks?: unknown;
  annotations?: Record<string, string>;
  linux?: OciLinux;
  [other: string]: unknown;
}
