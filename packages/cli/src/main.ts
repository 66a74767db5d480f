#!/usr/bin/env node
import { runCli } from './cli.js';

// A closed pipe on stdout (`berth content get … | head`) ends the command quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const io = {
  // Only `content ingest` reads stdin; touching process.stdin earlier would open it for every command.
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
};
void runCli(process.argv.slice(2), io).then((code) => process.stdout.write('', () => process.exit(code)));
