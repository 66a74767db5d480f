import { InvalidArgumentError, parsePackageFacts, treeDigest, type PluginPackageFacts } from '@berth/core';
import { readTarGz, treeFilesOf } from './tar.js';

/** A packed tarball's facts: its package.json's `berth` field with the tree digest of its files. */
export function factsOfTarball(tarball: Buffer): PluginPackageFacts {
  const files = readTarGz(tarball);
  const pkgFile = files.find((f) => f.path === 'package.json');
  if (!pkgFile) throw new InvalidArgumentError('the tarball has no package.json at its top (make it with berth plugin pack)');
  const pkg = JSON.parse(pkgFile.data.toString('utf8')) as { name?: unknown; version?: unknown; berth?: Record<string, unknown> };
  if (!pkg.berth || typeof pkg.berth !== 'object') throw new InvalidArgumentError('the tarball\'s package.json has no "berth" facts (make it with berth plugin pack)');
  const tree = treeFilesOf(files);
  const facts = { schemaVersion: 1, name: pkg.name, version: pkg.version, ...pkg.berth, tree: { digest: treeDigest(tree), files: tree.length, size: tree.reduce((n, f) => n + f.size, 0) } };
  return parsePackageFacts(JSON.stringify(facts));
}

