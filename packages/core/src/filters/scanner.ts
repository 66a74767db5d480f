/**
 * The tokenizer of the filter syntax. It follows containerd's scanner rule for rule (token kinds, what starts a
 * quoted literal, when a run of characters is a value rather than a field), so that positions in error messages
 * and the edge cases of the grammar agree. Positions are UTF-16 indices into the input.
 */

export const EOF = -1;
export const ILLEGAL = -2;

export type TokenKind = 'eof' | 'illegal' | 'quoted' | 'separator' | 'operator' | 'value' | 'field' | 'other';

export interface Token {
  readonly kind: TokenKind;
  /** Index of the token's first character (the input length for `eof`). */
  readonly pos: number;
  readonly text: string;
}

const isSpace = (ch: number): boolean =>
  (ch >= 0x09 && ch <= 0x0d) ||
  ch === 0x20 ||
  ch === 0x85 ||
  ch === 0xa0 ||
  ch === 0x1680 ||
  (ch >= 0x2000 && ch <= 0x200a) ||
  ch === 0x2028 ||
  ch === 0x2029 ||
  ch === 0x202f ||
  ch === 0x205f ||
  ch === 0x3000;

const isAlpha = (ch: number): boolean => (ch >= 0x41 && ch <= 0x5a) || (ch >= 0x61 && ch <= 0x7a);
const isDigit = (ch: number): boolean => ch >= 0x30 && ch <= 0x39;
export const isFieldChar = (ch: number): boolean => ch === 0x5f || isAlpha(ch) || isDigit(ch);
/** `"`, `/` and `|` open a quoted literal (the latter two are meant for regular expressions). */
const isQuoteChar = (ch: number): boolean => ch === 0x22 || ch === 0x2f || ch === 0x7c;
const isSeparatorChar = (ch: number): boolean => ch === 0x2c || ch === 0x2e;
const isOperatorChar = (ch: number): boolean => ch === 0x3d || ch === 0x21 || ch === 0x7e;
const GRAPHIC = /[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}]/u;
const isValueChar = (ch: number): boolean =>
  ch >= 0 && ch !== 0x2c && !isSpace(ch) && GRAPHIC.test(String.fromCodePoint(ch));

function digitValue(ch: number): number {
  if (ch >= 0x30 && ch <= 0x39) return ch - 0x30;
  if (ch >= 0x61 && ch <= 0x66) return ch - 0x61 + 10;
  if (ch >= 0x41 && ch <= 0x46) return ch - 0x41 + 10;
  return 16;
}

export class Scanner {
  /** Start of the character read last. */
  private pos = 0;
  /** End of the character read last: where the next one starts. */
  private end = 0;
  /** After an operator, the next unquoted run is a value (which may hold `.`, `=`, …), not a field. */
  private inValue = false;
  /** The first error met while scanning; the parser reports it with an `illegal` token. */
  error = '';

  constructor(readonly input: string) {}

  /** Where the next character starts. */
  get offset(): number {
    return this.end;
  }

  /** The next character without consuming it (EOF or ILLEGAL included). */
  peek(): number {
    const { pos, end } = this;
    const ch = this.next();
    this.pos = pos;
    this.end = end;
    return ch;
  }

  scan(): Token {
    let ch = this.next();
    while (isSpace(ch)) ch = this.next();
    const pos = this.pos;
    const text = () => this.input.slice(pos, this.end);

    if (ch === EOF) return { kind: 'eof', pos, text: '' };
    if (ch === ILLEGAL) return { kind: 'illegal', pos, text: '' };
    if (isQuoteChar(ch)) return { kind: this.scanQuoted(ch) ? 'quoted' : 'illegal', pos, text: text() };
    if (isSeparatorChar(ch)) {
      this.inValue = false;
      return { kind: 'separator', pos, text: text() };
    }
    if (isOperatorChar(ch)) {
      while (isOperatorChar(this.peek())) this.next();
      this.inValue = true;
      return { kind: 'operator', pos, text: text() };
    }
    if (this.inValue) {
      while (isValueChar(this.peek())) this.next();
      this.inValue = false;
      return { kind: 'value', pos, text: text() };
    }
    if (isFieldChar(ch)) {
      while (isFieldChar(this.peek())) this.next();
      return { kind: 'field', pos, text: text() };
    }
    return { kind: 'other', pos, text: text() };
  }

  private next(): number {
    if (this.end >= this.input.length) {
      this.pos = this.input.length;
      return EOF;
    }
    this.pos = this.end;
    const ch = this.input.codePointAt(this.end)!;
    this.end += ch > 0xffff ? 2 : 1;
    if (ch >= 0xd800 && ch <= 0xdfff) return this.fail('rune error');
    if (ch === 0) return this.fail('unexpected null');
    return ch;
  }

  private fail(message: string): number {
    if (!this.error) this.error = message;
    return ILLEGAL;
  }

  /** Consumes a quoted literal up to its closing quote; false when unterminated or holding a bad escape. */
  private scanQuoted(quote: number): boolean {
    let legal = true;
    let ch = this.next();
    while (ch !== quote) {
      if (ch === 0x0a || ch < 0) {
        this.fail('quoted literal not terminated');
        return false;
      }
      if (ch === 0x5c) {
        const [after, ok] = this.scanEscape(quote);
        ch = after;
        if (!ok) legal = false;
      } else {
        ch = this.next();
      }
    }
    return legal;
  }

  /** After a backslash: returns the character following the escape and whether the escape was legal. */
  private scanEscape(quote: number): [number, boolean] {
    const ch = this.next();
    if (ch === quote || (ch >= 0 && 'abfnrtv\\'.includes(String.fromCodePoint(ch)))) return [this.next(), true];
    if (ch >= 0x30 && ch <= 0x37) return this.scanDigits(ch, 8, 3);
    if (ch === 0x78) return this.scanDigits(this.next(), 16, 2); // \x
    if (ch === 0x75) return this.scanDigits(this.next(), 16, 4); // \u
    if (ch === 0x55) return this.scanDigits(this.next(), 16, 8); // \U
    this.fail('illegal escape sequence');
    return [ch, false];
  }

  private scanDigits(first: number, base: number, count: number): [number, boolean] {
    let ch = first;
    let n = count;
    while (n > 0 && digitValue(ch) < base) {
      ch = this.next();
      n--;
    }
    if (n > 0) {
      this.fail('illegal numeric escape sequence');
      return [ch, false];
    }
    return [ch, true];
  }
}
