// The progress line that the commands writing blobs show on a TTY. Writing itself is core's writeBlob over the
// content store the CLI's composition provides (a proxy of berthd's).
import type { CliContext } from './context.js';

/** A `\r`-rewritten progress line on a TTY, at most every 100 ms; `render` makes its text. done() ends the line once. */
export function progressLine<A extends unknown[]>(ctx: CliContext, render: (...args: A) => string): { update(...args: A): void; done(): void } {
  let last = 0;
  let text = '';
  const draw = () => ctx.io.stderr.write(`\r\x1b[K${text}`);
  return {
    update(...args) {
      text = render(...args);
      const now = Date.now();
      if (now - last >= 100) {
        last = now;
        draw();
      }
    },
    done() {
      if (text) {
        draw();
        ctx.io.stderr.write('\n');
        text = '';
      }
    },
  };
}

