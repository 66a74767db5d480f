// What the snapshots commands print: ctr's kind names, mount commands and snapshot tree, and berth's JSON shapes.
import type { Mount, SnapshotInfo, SnapshotKind } from '@berth/core';
import { formatDate } from '../format.js';

const KIND_NAMES: Readonly<Record<SnapshotKind, string>> = { active: 'Active', view: 'View', committed: 'Committed' };

/** The kind as ctr prints it (containerd's Kind.String). */
export function kindName(kind: SnapshotKind): string {
  return KIND_NAMES[kind];
}

export function snapshotJson(info: SnapshotInfo) {
  return {
    name: info.name,
    parent: info.parent,
    kind: info.kind,
    labels: info.labels,
    created_at: formatDate(info.createdAt),
    updated_at: formatDate(info.updatedAt),
  };
}

export function mountJson(m: Mount) {
  return { type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] };
}

/**
 * `--mounts` of prepare and view: the mounts as ctr prints them (Go's JSON of containerd 1.6's mount.Mount, field
 * names capitalised, 4-space indent), so a script written for ctr reads berth's output unchanged.
 */
export function goMountsJson(mounts: readonly Mount[]): string {
  return JSON.stringify(
    mounts.map((m) => ({ Type: m.type, Source: m.source, Options: [...m.options] })),
    null,
    4,
  );
}

/** One `mount` command per mount, with `target` as the mount point, exactly as ctr prints them. */
export function mountCommands(target: string, mounts: readonly Mount[]): string {
  return mounts.map((m) => `mount -t ${m.type} ${m.source} ${target} -o ${m.options.join(',')}\n`).join('');
}

export interface SnapshotTreeNode {
  readonly name: string;
  /** Absent for a parent that the listing did not include (ctr's placeholder). */
  readonly kind?: SnapshotKind;
  readonly children: SnapshotTreeNode[];
}

/**
 * The snapshots as a forest, as ctr's tree builds it: nodes in listing order, children in listing order under
 * their parent, a parent the listing lacks shown as a root of its own. Parent links cannot form a cycle (a parent is
 * committed before its child exists), but a damaged listing must not hang the command: a node is placed once.
 */
export function snapshotTree(infos: readonly SnapshotInfo[]): SnapshotTreeNode[] {
  const nodes = new Map<string, { name: string; kind?: SnapshotKind; parent: string; children: string[] }>();
  const order: string[] = [];
  const node = (name: string) => {
    let n = nodes.get(name);
    if (!n) {
      n = { name, parent: '', children: [] };
      nodes.set(name, n);
      order.push(name);
    }
    return n;
  };
  for (const info of infos) {
    const n = node(info.name);
    n.kind = info.kind;
    n.parent = info.parent;
    if (info.parent !== '') node(info.parent).children.push(info.name);
  }
  const placed = new Set<string>();
  const build = (name: string): SnapshotTreeNode => {
    placed.add(name);
    const n = nodes.get(name) as NonNullable<ReturnType<typeof nodes.get>>;
    const children = n.children.filter((c) => !placed.has(c)).map(build);
    return { name, ...(n.kind ? { kind: n.kind } : {}), children };
  };
  return order.filter((name) => nodes.get(name)?.parent === '').map(build);
}

/** ctr's tree text: ` name` for a root, then two spaces per level and `\_` before each child's ` name`. */
export function formatTree(roots: readonly SnapshotTreeNode[]): string {
  const lines: string[] = [];
  const walk = (n: SnapshotTreeNode, level: number) => {
    lines.push(`${'  '.repeat(level)}${level > 0 ? '\\_' : ''} ${n.name}`);
    for (const child of n.children) walk(child, level + 1);
  };
  for (const root of roots) walk(root, 0);
  return lines.map((l) => `${l}\n`).join('');
}
