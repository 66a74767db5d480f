// Users and groups from the container's /etc/passwd and /etc/group, as containerd's WithUser, WithUserID,
// WithUsername and WithAdditionalGIDs resolve them (oci/spec_opts.go), parsed as runc's libcontainer/user does.
import { isAbsolute } from 'node:path';
import { InvalidArgumentError, NotFoundError } from '@berth/core';
import { directoryRootFs, type RootFs } from './rootfs.js';
import type { SpecContext, SpecOpt } from './spec.js';
import type { OciSpec } from './types.js';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** runc's limit (and containerd's): ids above MaxInt32 are names, not numbers. */
const MAX_ID = 2 ** 31 - 1;

/** Go's strconv.Atoi with the error ignored (runc's parseParts): a malformed number is 0. */
function atoi(text: string | undefined): number {
  if (text === undefined || !/^[+-]?\d+$/.test(text)) return 0;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : 0;
}

/** A user string part as a number, when it is one within runc's range. */
function idOf(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 0 && n <= MAX_ID ? n : undefined;
}

/** `name:password:uid:gid:gecos:home:shell` lines; blank lines skipped, missing fields empty (runc's ParsePasswd). */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const [name = '', , uid, gid, , home = '', shell = ''] = line.split(':');
    out.push({ name, uid: atoi(uid), gid: atoi(gid), home, shell });
  }
  return out;
}

/** `name:password:gid:member,member` lines; blank and `#` lines skipped (runc's ParseGroup). */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [name = '', , gid, list] = line.split(':');
    out.push({ name, gid: atoi(gid), members: list ? list.split(',') : [] });
  }
  return out;
}

/** The root filesystem an option reads: the context's, else the spec's absolute root path (as containerd). */
function rootFsOf(spec: OciSpec, ctx: SpecContext): RootFs {
  if (ctx.rootfs) return ctx.rootfs;
  const path = spec.root?.path ?? '';
  if (!isAbsolute(path)) throw new InvalidArgumentError('rootfs absolute path is required to resolve users and groups');
  return directoryRootFs(path);
}

async function readPasswd(rootfs: RootFs): Promise<PasswdEntry[] | undefined> {
  const bytes = await rootfs.readFile('/etc/passwd');
  return bytes === undefined ? undefined : parsePasswd(bytes.toString('utf8'));
}

async function readGroup(rootfs: RootFs): Promise<GroupEntry[] | undefined> {
  const bytes = await rootfs.readFile('/etc/group');
  return bytes === undefined ? undefined : parseGroup(bytes.toString('utf8'));
}

function processOf(spec: OciSpec) {
  spec.process ??= { user: { uid: 0, gid: 0 }, cwd: '' };
  return spec.process;
}

/** containerd's ensureAdditionalGids: the primary gid first in additionalGids unless it is there already. */
function ensureAdditionalGids(spec: OciSpec): void {
  const user = processOf(spec).user;
  const gids = user.additionalGids ?? [];
  if (!gids.includes(user.gid)) user.additionalGids = [user.gid, ...gids];
}

/** containerd's WithUIDGID. */
export function withUidGid(uid: number, gid: number): SpecOpt {
  return (spec) => {
    const user = processOf(spec).user;
    user.additionalGids = undefined;
    user.uid = uid;
    user.gid = gid;
    ensureAdditionalGids(spec);
  };
}

/** containerd's WithUserID: the uid's passwd entry gives the gid; without one (or without the file), gid 0. */
export function withUserId(uid: number): SpecOpt {
  return async (spec, ctx) => {
    const user = processOf(spec).user;
    user.additionalGids = undefined;
    try {
      const entry = (await readPasswd(rootFsOf(spec, ctx)))?.find((u) => u.uid === uid);
      [user.uid, user.gid] = entry ? [entry.uid, entry.gid] : [uid, 0];
    } finally {
      ensureAdditionalGids(spec);
    }
  };
}

/** containerd's WithUsername: the name must be in the image's /etc/passwd. */
export function withUsername(name: string): SpecOpt {
  return async (spec, ctx) => {
    const user = processOf(spec).user;
    user.additionalGids = undefined;
    try {
      const users = await readPasswd(rootFsOf(spec, ctx));
      if (users === undefined) throw new NotFoundError(`user ${JSON.stringify(name)}: the image has no /etc/passwd`);
      const entry = users.find((u) => u.name === name);
      if (!entry) throw new NotFoundError(`user ${JSON.stringify(name)} is not in the image's /etc/passwd`);
      [user.uid, user.gid] = [entry.uid, entry.gid];
    } finally {
      ensureAdditionalGids(spec);
    }
  };
}

/**
 * containerd's WithUser: `user`, `uid`, `user:group`, `uid:gid`, `uid:group` or `user:gid` (the OCI image spec's
 * forms). Names are looked up in the image's /etc/passwd and /etc/group; a missing one is NotFound.
 */
export function withUser(userstr: string): SpecOpt {
  return async (spec, ctx) => {
    const parts = userstr.split(':');
    if (parts.length === 1) {
      const uid = idOf(userstr);
      return uid === undefined ? withUsername(userstr)(spec, ctx) : withUserId(uid)(spec, ctx);
    }
    if (parts.length !== 2) throw new InvalidArgumentError(`invalid USER value ${userstr}`);
    const user = processOf(spec).user;
    user.additionalGids = undefined;
    try {
      const [userPart, groupPart] = parts as [string, string];
      let uid = idOf(userPart);
      let gid = idOf(groupPart);
      const username = uid === undefined ? userPart : '';
      const groupname = gid === undefined ? groupPart : '';
      if (username !== '' || groupname !== '') {
        const rootfs = rootFsOf(spec, ctx);
        if (username !== '') {
          const entry = (await readPasswd(rootfs))?.find((u) => u.name === username);
          if (!entry) throw new NotFoundError(`user ${JSON.stringify(username)} is not in the image's /etc/passwd`);
          uid = entry.uid;
        }
        if (groupname !== '') {
          const entry = (await readGroup(rootfs))?.find((g) => g.name === groupname);
          if (!entry) throw new NotFoundError(`group ${JSON.stringify(groupname)} is not in the image's /etc/group`);
          gid = entry.gid;
        }
      }
      user.uid = uid ?? 0;
      user.gid = gid ?? 0;
    } finally {
      ensureAdditionalGids(spec);
    }
  };
}

/**
 * containerd's WithAdditionalGIDs: the groups of /etc/group that list the user (by name, or the name of a uid)
 * as a member, other than its own-named group; no files or no entry means none (the primary gid still comes first).
 */
export function withAdditionalGids(userstr: string): SpecOpt {
  return async (spec, ctx) => {
    const user = processOf(spec).user;
    user.additionalGids = undefined;
    try {
      const rootfs = rootFsOf(spec, ctx);
      let username = userstr;
      const uid = /^[+-]?\d+$/.test(userstr) ? Number(userstr) : undefined;
      if (uid !== undefined) {
        const entry = (await readPasswd(rootfs))?.find((u) => u.uid === uid);
        if (!entry) return;
        username = entry.name;
      }
      const groups = await readGroup(rootfs);
      if (groups === undefined) return;
      user.additionalGids = groups.filter((g) => g.name !== username && g.members.includes(username)).map((g) => g.gid);
    } finally {
      ensureAdditionalGids(spec);
    }
  };
}
