import { spawnSync } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../cli.js';
import { CliContext } from '../context.js';
import { bashCompletion, zshCompletion } from './completion.js';

function program() {
  const io = { stdin: Readable.from([]), stdout: new PassThrough(), stderr: new PassThrough() };
  return createProgram(new CliContext(io));
}

/** What bash completes for the words typed so far (the last one is being completed). */
function complete(script: string, words: readonly string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _berth; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('bash completion', () => {
  const script = bashCompletion(program());

  it('completes the top-level commands, from the program itself', () => {
    const top = complete(script, ['berth', '']);
    for (const c of ['version', 'plugins', 'namespaces', 'content', 'leases', 'events', 'completion']) expect(top).toContain(c);
    expect(complete(script, ['berth', 'le'])).toEqual(['leases']);
  });

  it('completes subcommands after global options and their values', () => {
    const content = complete(script, ['berth', '--address', '/x.sock', '-n', 'ns1', 'content', 'l']);
    expect(content).toContain('ls');
    expect(content.every((c) => c.startsWith('l'))).toBe(true);
    expect(content).not.toContain('list');
    // An alias is a path of its own.
    expect(complete(script, ['berth', 'ns', 'cr'])).toEqual(['create']);
  });

  it("completes a command's flags and the global ones", () => {
    const flags = complete(script, ['berth', 'namespaces', 'ls', '--']);
    expect(flags).toContain('--quiet');
    expect(flags).toContain('--address');
    expect(flags).not.toContain('--nonexistent');
  });

  it('completes the containers and extensions commands and their flags', () => {
    expect(complete(script, ['berth', 'containers', ''])).toEqual(['create', 'ls', 'info', 'rm', 'label', 'update']);
    expect(complete(script, ['berth', 'c', 'ls', '--w'])).toEqual(['--where']);
    expect(complete(script, ['berth', 'extensions', ''])).toEqual(['schema', 'get', 'set', 'patch', 'rm', 'watch']);
    expect(complete(script, ['berth', 'ext', 'schema', ''])).toEqual(['add', 'ls', 'get', 'rm']);
    expect(complete(script, ['berth', 'extensions', 'set', 'c1', 'acme.io/x', '--r'])).toEqual(['--revision']);
  });

  it('completes the choices of an option that has them, nothing for a free value', () => {
    expect(complete(script, ['berth', '--format', ''])).toEqual(['table', 'json']);
    expect(complete(script, ['berth', 'completion', '--timeout', ''])).toEqual([]);
  });

  it('runs under zsh through bashcompinit (same functions)', () => {
    const zsh = zshCompletion(program());
    expect(zsh.startsWith('#compdef berth\n')).toBe(true);
    expect(zsh).toContain('bashcompinit');
    expect(zsh).toContain(script);
  });
});
