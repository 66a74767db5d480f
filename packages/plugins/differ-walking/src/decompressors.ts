// Which programs decompress layers. Spawned tools beat Node's zlib here (measured in docs/architecture.md, "The
// walking differ"): igzip (ISA-L) first, then pigz, else zlib in the worker; zstd only by its tool (Node 20 has no
// zstd). Looked up once, on the main thread, and handed to the workers.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface Tool {
  readonly file: string;
  readonly args: readonly string[];
}

export interface Decompressors {
  /** undefined: zlib in the worker. */
  readonly gzip: Tool | undefined;
  /** undefined: zstd layers are refused (not implemented). */
  readonly zstd: Tool | undefined;
}

export type GzipChoice = 'auto' | 'igzip' | 'pigz' | 'zlib';

/** The first executable named `name` on PATH. */
export function which(name: string, path = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The decompressors for a configured gzip choice; a named tool that is missing is an error naming it. */
export function findDecompressors(gzip: GzipChoice, zstd: 'auto' | 'none' = 'auto'): Decompressors {
  const tool = (name: string): Tool | undefined => {
    const file = which(name);
    return file ? { file, args: ['-dc'] } : undefined;
  };
  let gz: Tool | undefined;
  switch (gzip) {
    case 'auto':
      gz = tool('igzip') ?? tool('pigz');
      break;
    case 'igzip':
    case 'pigz':
      gz = tool(gzip);
      if (!gz) throw new Error(`gzip_decompressor is ${gzip}, but there is no ${gzip} on PATH (apt-get install ${gzip === 'igzip' ? 'isal' : 'pigz'})`);
      break;
    case 'zlib':
      gz = undefined;
      break;
  }
  return { gzip: gz, zstd: zstd === 'auto' ? tool('zstd') : undefined };
}

export function describeDecompressors(d: Decompressors): string {
  return `gzip: ${d.gzip ? `${d.gzip.file} ${d.gzip.args.join(' ')}` : 'zlib'}; zstd: ${d.zstd ? `${d.zstd.file} ${d.zstd.args.join(' ')}` : 'none'}`;
}
