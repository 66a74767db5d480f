// What `berth pull` (and `berth push`: uploading/mounted) shows while it runs: one line per blob (state, bytes, rate, ETA) and a total. On a TTY the
// block is redrawn in place (cursor up, erase line) at most every `intervalMs`; otherwise state changes print as they
// happen and a snapshot of what is still moving prints every `intervalMs`, with no escape codes. `json` writes each
// event as one JSON line for programs; `quiet` prints nothing. Events come from the Transfer service's Progress
// messages (daemon-side pull) or from @berth/images' onProgress (--local), in one neutral shape.
import { binarySize } from './format.js';

export type BlobState = 'waiting' | 'downloading' | 'uploading' | 'unpacking' | 'done' | 'exists' | 'mounted';
export type ProgressMode = 'tty' | 'plain' | 'json' | 'quiet';

/** One progress event: a blob (`name` = its ingest ref, `layer-sha256:…`) or, without a name, a status line. */
export interface ProgressEvent {
  readonly event: string;
  readonly name: string;
  readonly progress: number;
  readonly total: number;
}

/** containerd 2's event words (and berth's own) as states; anything else is a status line. */
export function stateOf(event: string): BlobState | undefined {
  switch (event) {
    case 'waiting':
    case 'resolving':
      return 'waiting';
    case 'downloading':
      return 'downloading';
    case 'uploading':
      return 'uploading';
    case 'unpacking':
      return 'unpacking';
    case 'mounted':
      return 'mounted';
    case 'complete':
    case 'done':
      return 'done';
    case 'already exists':
    case 'exists':
      return 'exists';
    default:
      return undefined;
  }
}

interface Blob {
  readonly name: string;
  state: BlobState;
  progress: number;
  total: number;
  /** When bytes first moved, and from which offset (a resumed download counts from there). */
  startedAt?: number;
  startOffset: number;
  /** When the download finished (done or unpacking): rate and ETA freeze there. */
  endedAt?: number;
}

export interface RendererOptions {
  readonly mode: ProgressMode;
  readonly write: (text: string) => void;
  /** Milliseconds since some origin; injectable for tests. */
  readonly now?: () => number;
  /** TTY redraws and plain snapshots at most this often (default 100 ms on a TTY, 1000 ms otherwise). */
  readonly intervalMs?: number;
}

/** `0123456789ab` from `layer-sha256:0123…`: ctr's refs cut to podman's 12 hex digits. */
export function shortName(name: string): string {
  const m = /^(?:(\w+)-)?sha256:([0-9a-f]{12})[0-9a-f]*$/.exec(name);
  return m ? `${m[1] ? `${m[1]}-` : ''}sha256:${m[2]}` : name;
}

/** `4s`, `1m05s`, `2h03m`. */
export function formatEta(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(bytes: number, ms: number): string {
  return ms > 0 ? `${binarySize((bytes * 1000) / ms)}/s` : '-';
}

export class PullProgressRenderer {
  private readonly blobs = new Map<string, Blob>();
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly startedAt: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  /** Lines of the block drawn last (TTY): what the next redraw moves up over. */
  private drawn = 0;
  private dirty = false;

  constructor(private readonly options: RendererOptions) {
    this.now = options.now ?? (() => performance.now());
    this.intervalMs = options.intervalMs ?? (options.mode === 'tty' ? 100 : 1000);
    this.startedAt = this.now();
  }

  update(event: ProgressEvent): void {
    const { mode, write } = this.options;
    if (mode === 'quiet') return;
    if (mode === 'json') {
      const state = stateOf(event.event);
      write(`${JSON.stringify({ event: event.event, ...(state ? { state } : {}), name: event.name, progress: event.progress, total: event.total })}\n`);
      return;
    }
    const state = stateOf(event.event);
    if (!event.name || !state) {
      // Status lines (`Pulling from …`) print above the block, once; `saved` names the image.
      if (!event.name) this.printAbove(event.event);
      return;
    }
    const now = this.now();
    let blob = this.blobs.get(event.name);
    const previous = blob?.state;
    if (!blob) {
      blob = { name: event.name, state, progress: 0, total: 0, startOffset: 0 };
      this.blobs.set(event.name, blob);
    }
    if ((state === 'downloading' || state === 'uploading') && blob.startedAt === undefined) {
      blob.startedAt = now;
      blob.startOffset = event.progress;
    }
    if ((state === 'done' || state === 'unpacking') && blob.startedAt !== undefined) blob.endedAt ??= now;
    blob.state = state;
    blob.progress = Math.max(event.progress, state === 'done' || state === 'exists' || state === 'mounted' ? event.total : 0);
    blob.total = event.total;
    this.dirty = true;
    if (mode === 'plain' && previous !== state) {
      write(`${this.blobLine(blob, now)}\n`);
      // The next snapshot comes a whole interval after the last line printed.
      this.lastDraw = now;
      return;
    }
    this.maybeDraw(now);
  }

  /** Called by the command's timer: redraws (TTY) or prints a snapshot (plain) when due. */
  tick(): void {
    this.maybeDraw(this.now());
  }

  /** The final state: the whole block once more (TTY) or the total (plain). */
  finish(): void {
    const { mode, write } = this.options;
    if (mode === 'quiet' || mode === 'json') return;
    const now = this.now();
    if (mode === 'tty') this.redraw(now);
    else write(`${this.totalLine(now)}\n`);
  }

  private maybeDraw(now: number): void {
    if (!this.dirty && this.options.mode === 'tty') return;
    if (now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    if (this.options.mode === 'tty') this.redraw(now);
    else if (this.options.mode === 'plain') this.snapshot(now);
  }

  private printAbove(text: string): void {
    const { mode, write } = this.options;
    if (mode === 'tty') {
      write(`${this.moveUp()}\x1b[2K${text}\n`);
      this.drawn = 0;
      this.dirty = this.blobs.size > 0;
    } else write(`${text}\n`);
  }

  private moveUp(): string {
    return this.drawn > 0 ? `\x1b[${this.drawn}A\r` : '';
  }

  private redraw(now: number): void {
    const lines = [...this.blobs.values()].map((b) => this.blobLine(b, now));
    lines.push(this.totalLine(now));
    this.options.write(`${this.moveUp()}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
    this.drawn = lines.length;
    this.dirty = false;
  }

  /** Plain mode's periodic lines: the blobs still moving, then the total; nothing when nothing moves. */
  private snapshot(now: number): void {
    if (!this.dirty) return;
    const moving = [...this.blobs.values()].filter((b) => b.state === 'downloading' || b.state === 'uploading');
    if (moving.length === 0) return;
    this.options.write(`${[...moving.map((b) => this.blobLine(b, now)), this.totalLine(now)].join('\n')}\n`);
    this.dirty = false;
  }

  private blobLine(blob: Blob, now: number): string {
    const head = `${shortName(blob.name).padEnd(25)}  ${blob.state.padEnd(11)}  `;
    switch (blob.state) {
      case 'waiting':
        return `${head}${blob.total > 0 ? binarySize(blob.total) : ''}`.trimEnd();
      case 'downloading':
      case 'uploading': {
        const bytes = `${binarySize(blob.progress)}/${binarySize(blob.total)}`;
        const elapsed = now - (blob.startedAt ?? now);
        const moved = blob.progress - blob.startOffset;
        const rate = formatRate(moved, elapsed);
        const eta = moved > 0 && elapsed > 0 ? `  ETA ${formatEta(((blob.total - blob.progress) * elapsed) / moved / 1000)}` : '';
        return `${head}${bytes.padEnd(21)}  ${rate}${eta}`;
      }
      default: {
        const elapsed = blob.startedAt !== undefined ? (blob.endedAt ?? now) - blob.startedAt : 0;
        const rate = blob.state !== 'exists' && blob.state !== 'mounted' && elapsed > 0 ? `  ${formatRate(blob.progress - blob.startOffset, elapsed)}` : '';
        return `${head}${binarySize(blob.total)}${rate}`;
      }
    }
  }

  private totalLine(now: number): string {
    let total = 0;
    let have = 0;
    let moved = 0;
    for (const b of this.blobs.values()) {
      total += b.total;
      have += b.progress;
      if (b.state !== 'exists' && b.state !== 'mounted') moved += b.progress - b.startOffset;
    }
    const elapsed = now - this.startedAt;
    return `total: ${binarySize(have)}/${binarySize(total)}  ${formatRate(moved, elapsed)}  elapsed ${(elapsed / 1000).toFixed(1)}s`;
  }
}
