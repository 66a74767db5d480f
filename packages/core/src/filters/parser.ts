/**
 * The grammar (as containerd's filters/parser.go):
 *
 *   selectors := selector ("," selector)*
 *   selector  := fieldpath (operator value)?
 *   fieldpath := field ("." field)*
 *   field     := quoted | [A-Za-z0-9_]+
 *   operator  := "==" | "!=" | "~="
 *   value     := quoted | [^\s,]+
 *
 * Field paths may only be quoted with `"`; a value after `~=` may also be quoted with `/` or `|`.
 */
import { Scanner, EOF, type Token } from './scanner.js';
import { unquote } from './quote.js';

export type Operator = 'present' | '==' | '!=' | '~=';

export interface SelectorSpec {
  readonly fieldpath: readonly string[];
  readonly operator: Operator;
  readonly value: string;
}

/** A syntax error, with containerd's message layout: `parse error: [before >|at|< after]: reason`. */
export class FilterSyntaxError extends Error {
  constructor(
    readonly input: string,
    readonly position: number,
    readonly reason: string,
  ) {
    super(`parse error: ${describe(input, position)}: ${reason}`);
    this.name = 'FilterSyntaxError';
  }
}

function describe(input: string, position: number): string {
  if (position >= input.length) return `[${input}]`;
  const at = String.fromCodePoint(input.codePointAt(position)!);
  return `[${input.slice(0, position)} >|${at}|< ${input.slice(position + at.length)}]`;
}

const COMMA = 0x2c;
const DOT = 0x2e;

/** Parses one non-empty filter into its ANDed selectors; throws FilterSyntaxError. */
export function parseSelectors(input: string): SelectorSpec[] {
  return new Parser(input).selectors();
}

class Parser {
  private readonly scanner: Scanner;

  constructor(private readonly input: string) {
    this.scanner = new Scanner(input);
  }

  selectors(): SelectorSpec[] {
    const all = [this.selector()];
    for (;;) {
      const ch = this.scanner.peek();
      if (ch === EOF) return all;
      if (ch !== COMMA) {
        const at = this.scanner.offset;
        throw this.error(at, `unexpected input: ${String.fromCodePoint(this.input.codePointAt(at)!)}`);
      }
      this.scanner.scan();
      all.push(this.selector());
    }
  }

  private selector(): SelectorSpec {
    const fieldpath = this.fieldpath();
    const ch = this.scanner.peek();
    if (ch === COMMA || ch === EOF) return { fieldpath, operator: 'present', value: '' };
    const operator = this.operator();
    return { fieldpath, operator, value: this.value(operator === '~=') };
  }

  private fieldpath(): string[] {
    const fields = [this.field()];
    while (this.scanner.peek() === DOT) {
      this.scanner.scan();
      fields.push(this.field());
    }
    return fields;
  }

  private field(): string {
    const token = this.scanner.scan();
    switch (token.kind) {
      case 'field':
        return token.text;
      case 'quoted':
        return this.unquote(token, false);
      case 'illegal':
        throw this.error(token.pos, this.scanner.error);
      default:
        throw this.error(token.pos, 'expected field or quoted');
    }
  }

  private operator(): Operator {
    const token = this.scanner.scan();
    if (token.kind === 'illegal') throw this.error(token.pos, this.scanner.error);
    if (token.kind !== 'operator') throw this.error(token.pos, 'expected an operator ("=="|"!="|"~=")');
    if (token.text === '==' || token.text === '!=' || token.text === '~=') return token.text;
    throw this.error(token.pos, `unsupported operator ${JSON.stringify(token.text)}`);
  }

  private value(allowRegexpQuotes: boolean): string {
    const token = this.scanner.scan();
    switch (token.kind) {
      case 'value':
      case 'field':
        return token.text;
      case 'quoted':
        return this.unquote(token, allowRegexpQuotes);
      case 'illegal':
        throw this.error(token.pos, this.scanner.error);
      default:
        throw this.error(token.pos, 'expected value or quoted');
    }
  }

  private unquote(token: Token, allowRegexpQuotes: boolean): string {
    if (!allowRegexpQuotes && !token.text.startsWith('"')) throw this.error(token.pos, 'invalid quote encountered');
    try {
      return unquote(token.text);
    } catch (err) {
      throw this.error(token.pos, `unquoting failed: ${(err as Error).message}`);
    }
  }

  private error(position: number, reason: string): FilterSyntaxError {
    return new FilterSyntaxError(this.input, position, reason);
  }
}
