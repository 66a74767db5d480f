// docs/extensions.md runs as written: every block marked `<!-- doc-test -->` is a console session whose `$ `
// commands run (in order, in one shell per block, in one scratch directory, with `berth` the built CLI against a
// fresh berthd) and whose transcript must equal the block; the `<!-- doc-test: ts -->` block is the TypeScript
// client program, run as a module. Build first (the daemon and the CLI).
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, DAEMON_MAIN, run, startBerthd, type Berthd } from './harness.js';

const daemonDeps = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
const pluginDir = (name: string) => fileURLToPath(new URL(`../../plugins/${name}`, import.meta.url));
/** The extensions plugins, loaded through plugin_packages while berthd does not compose them (none once it does). */
const extraPlugins = ['extensions-json', 'services-extensions']
  .filter((name) => !(`@berth/plugin-${name}` in daemonDeps))
  .filter((name) => existsSync(join(pluginDir(name), 'dist')))
  .map(pluginDir);

const DOC = fileURLToPath(new URL('../../../docs/extensions.md', import.meta.url));
const ready = existsSync(DAEMON_MAIN) && existsSync(CLI_MAIN);

interface DocBlock {
  readonly kind: 'console' | 'ts';
  readonly line: number;
  readonly text: string;
}

/** The fenced blocks right after a `<!-- doc-test -->` (console) or `<!-- doc-test: ts -->` marker. */
export function docBlocks(markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = /^<!-- doc-test(?:: (ts))? -->$/.exec(lines[i] as string);
    if (!marker) continue;
    const open = i + 1;
    if (!/^```\w+$/.test(lines[open] ?? '')) throw new Error(`docs/extensions.md:${open + 1}: a doc-test marker must be followed by a fenced block`);
    let close = open + 1;
    while (close < lines.length && lines[close] !== '```') close++;
    blocks.push({ kind: marker[1] === 'ts' ? 'ts' : 'console', line: open + 2, text: lines.slice(open + 1, close).join('\n') + '\n' });
    i = close;
  }
  return blocks;
}

/**
 * A console block as a bash script that prints its own transcript: each `$ command` (with the body of a
 * `<<'EOF'` heredoc) echoed, then run with stderr merged into stdout; output lines of the block are what it must print.
 */
export function transcriptScript(block: string): string {
  const lines = block.trimEnd().split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith('$ ')) continue;
    const command = [line.slice(2)];
    const heredoc = /<<'(\w+)'/.exec(line)?.[1];
    if (heredoc) {
      while (i + 1 < lines.length && lines[i] !== heredoc) command.push(lines[++i] as string);
    }
    const text = command.join('\n');
    out.push(`printf '%s\\n' ${quote(`$ ${text}`)}`, `{\n${text}\n} 2>&1`);
  }
  return out.join('\n') + '\n';
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

describe('docs/extensions.md blocks', () => {
  it('parses the transcript format (a heredoc body is part of its command)', () => {
    const script = transcriptScript("$ cat > a <<'EOF'\nx\nEOF\n$ echo hi\nhi\n");
    expect(script).toBe(`printf '%s\\n' '$ cat > a <<'\\''EOF'\\''\nx\nEOF'\n{\ncat > a <<'EOF'\nx\nEOF\n} 2>&1\nprintf '%s\\n' '$ echo hi'\n{\necho hi\n} 2>&1\n`);
    expect(docBlocks(readFileSync(DOC, 'utf8')).length).toBeGreaterThanOrEqual(5);
  });
});

describe.skipIf(!ready)('docs/extensions.md against berthd', { timeout: 300_000 }, () => {
  let daemon: Berthd;
  let work: string;
  const blocks = docBlocks(readFileSync(DOC, 'utf8'));
  const namespace = `doc-ext-${process.pid}`;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    daemon = await startBerthd({ config: extraPlugins.length > 0 ? `plugin_packages = [${extraPlugins.map((p) => JSON.stringify(p)).join(', ')}]` : '' });
    work = await mkdtemp(join(tmpdir(), 'berth-doc-'));
    const bin = join(work, '.bin');
    await run('mkdir', [bin]);
    await writeFile(join(bin, 'berth'), `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(CLI_MAIN)} "$@"\n`);
    await chmod(join(bin, 'berth'), 0o755);
    env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, BERTH_ADDRESS: daemon.address, BERTH_NAMESPACE: namespace };
  });
  afterAll(async () => {
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('every console session prints what the document shows', async () => {
    const consoles = blocks.filter((b) => b.kind === 'console');
    expect(consoles.length).toBeGreaterThanOrEqual(4);
    for (const block of consoles) {
      const r = await run('bash', ['-c', `cd ${quote(work)}\n${transcriptScript(block.text)}`], { env, timeoutMs: 120_000 });
      expect(r.stdout, `docs/extensions.md block at line ${block.line}`).toBe(block.text);
    }
  });

  it('the TypeScript program runs and its write is there', async () => {
    const [program] = blocks.filter((b) => b.kind === 'ts');
    expect(program, 'the ts doc-test block').toBeDefined();
    const ok = (args: string[]) => daemon.berth(['-n', namespace, ...args]).then((r) => (expect(r.code, r.stderr).toBe(0), r));
    await writeFile(join(work, 'spec.json'), '{"ociVersion":"1.0.2"}');
    await ok(['containers', 'create', '--config', join(work, 'spec.json'), 'api-1']);
    // The module runs inside the test process (vitest compiles the TypeScript), with the environment it documents.
    const file = fileURLToPath(new URL(`./.doc-snippet-${process.pid}.ts`, import.meta.url));
    const saved = { address: process.env.BERTH_ADDRESS, namespace: process.env.BERTH_NAMESPACE, log: console.log };
    const printed: string[] = [];
    try {
      await writeFile(file, program!.text);
      process.env.BERTH_ADDRESS = daemon.address;
      process.env.BERTH_NAMESPACE = namespace;
      console.log = (...args: unknown[]) => void printed.push(args.join(' '));
      await import(/* @vite-ignore */ file);
    } finally {
      console.log = saved.log;
      if (saved.address === undefined) delete process.env.BERTH_ADDRESS;
      else process.env.BERTH_ADDRESS = saved.address;
      if (saved.namespace === undefined) delete process.env.BERTH_NAMESPACE;
      else process.env.BERTH_NAMESPACE = saved.namespace;
      await rm(file, { force: true });
    }
    expect(printed).toEqual(['replicas 2 at revision 2']);
    const got = await ok(['--format', 'json', 'extensions', 'get', 'api-1', 'acme.io/deploy']);
    expect(JSON.parse(got.stdout)).toMatchObject({ revision: 2, json: { replicas: 2 } });
    const query = await ok(['containers', 'ls', '-q', '--where', 'ext."acme.io/deploy".replicas==2']);
    expect(query.stdout).toBe('api-1\n');
    await ok(['containers', 'rm', 'api-1']);
    await ok(['extensions', 'schema', 'rm', 'acme.io/deploy']);
  });
});
