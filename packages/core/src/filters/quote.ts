/**
 * Decodes a quoted literal of the filter syntax: Go string-literal escapes, with `/` and `|` accepted as quote
 * characters besides `"` (containerd's quote.go does the same, for regular expressions). `\x` and octal escapes
 * produce single bytes, the others code points; the bytes are read back as UTF-8.
 */

export class QuoteSyntaxError extends Error {
  constructor() {
    super('quote syntax error');
    this.name = 'QuoteSyntaxError';
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
const HEX_DIGITS: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };
const QUOTES = ['"', '/', '|'];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function unquote(literal: string): string {
  const quote = literal[0];
  if (literal.length < 2 || quote === undefined || !QUOTES.includes(quote) || literal.at(-1) !== quote) {
    throw new QuoteSyntaxError();
  }
  const body = literal.slice(1, -1);
  if (body.includes('\n')) throw new QuoteSyntaxError();
  if (!body.includes('\\') && !body.includes(quote)) return body;

  const bytes: number[] = [];
  const pushCodePoint = (cp: number) => bytes.push(...encoder.encode(String.fromCodePoint(cp)));
  let i = 0;
  while (i < body.length) {
    const cp = body.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch === quote) throw new QuoteSyntaxError();
    if (ch !== '\\') {
      pushCodePoint(cp);
      i += ch.length;
      continue;
    }
    const kind = body[i + 1];
    if (kind === undefined) throw new QuoteSyntaxError();
    i += 2;
    if (kind in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[kind]!);
    } else if (kind in HEX_DIGITS) {
      const n = HEX_DIGITS[kind]!;
      const digits = body.slice(i, i + n);
      if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(digits)) throw new QuoteSyntaxError();
      const value = parseInt(digits, 16);
      i += n;
      if (kind === 'x') bytes.push(value);
      else if (value > 0x10ffff) throw new QuoteSyntaxError();
      else pushCodePoint(value);
    } else if (kind >= '0' && kind <= '7') {
      const digits = kind + body.slice(i, i + 2);
      if (!/^[0-7]{3}$/.test(digits)) throw new QuoteSyntaxError();
      const value = parseInt(digits, 8);
      if (value > 255) throw new QuoteSyntaxError();
      bytes.push(value);
      i += 2;
    } else if (QUOTES.includes(kind) && kind === quote) {
      bytes.push(kind.charCodeAt(0));
    } else {
      throw new QuoteSyntaxError();
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}
