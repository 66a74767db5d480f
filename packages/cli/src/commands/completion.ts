// `berth completion bash|zsh`: a completion script generated from the program's own command tree, so every
// command and flag added later completes without touching this file. Namespace names come from the daemon (through
// `berth namespaces ls -q` at completion time, with the --address the command line already has).
import { Argument, type Command, type Option } from 'commander';
import type { CliContext } from '../context.js';

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;

/** What the script needs to know of one command: its subcommands (names and aliases) and its flags. */
interface Node {
  readonly path: string;
  readonly subcommands: readonly string[];
  readonly flags: readonly string[];
}

function flagsOf(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
}

function walk(command: Command, path: string, out: Node[]): void {
  const subs = command.commands.filter((c) => c.name() !== 'help');
  // Aliases are understood on the command line but not offered: one name per command keeps the list short.
  out.push({ path, subcommands: subs.map((c) => c.name()), flags: [...flagsOf(command.options), '--help'] });
  for (const sub of subs) for (const name of [sub.name(), ...sub.aliases()]) walk(sub, `${path} ${name}`, out);
}

/** Every option of the tree that takes a value, with its choices when it has a fixed set. */
function valuedOptions(command: Command, out = new Map<string, readonly string[] | undefined>()): Map<string, readonly string[] | undefined> {
  for (const o of command.options) {
    if (!o.required && !o.optional) continue;
    for (const f of [o.short, o.long]) if (f) out.set(f, o.argChoices);
  }
  for (const sub of command.commands) valuedOptions(sub, out);
  return out;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** The bash script (zsh runs the same one through bashcompinit). */
export function bashCompletion(program: Command): string {
  const nodes: Node[] = [];
  walk(program, 'berth', nodes);
  const valued = valuedOptions(program);
  const choices = [...valued].filter((e): e is [string, readonly string[]] => e[1] !== undefined);
  return `# berth completion for bash; load it with: source <(berth completion bash)
declare -A _berth_subcommands=(
${nodes.map((n) => `  [${quote(n.path)}]=${quote(n.subcommands.join(' '))}`).join('\n')}
)
declare -A _berth_flags=(
${nodes.map((n) => `  [${quote(n.path)}]=${quote(n.flags.join(' '))}`).join('\n')}
)
_berth_valued=${quote(` ${[...valued.keys()].join(' ')} `)}

# Namespace names from the daemon this command line talks to.
_berth_namespaces() {
  local args=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -a | --address) args=(--address "\${COMP_WORDS[i + 1]}") ;; esac
  done
  "\${COMP_WORDS[0]}" "\${args[@]}" --timeout 2s namespaces ls -q 2>/dev/null
}

_berth() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD - 1]}" path=berth word next i skip=0
  # The command path typed so far: words that name a subcommand of the path before them; option values skipped.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    if [[ $word == -* ]]; then
      [[ $_berth_valued == *" $word "* ]] && skip=1
      continue
    fi
    next="$path $word"
    [[ -n \${_berth_flags[$next]+set} ]] && path=$next
  done
  case "$prev" in
    -n | --namespace) COMPREPLY=($(compgen -W "$(_berth_namespaces)" -- "$cur")); return ;;
${choices.map(([flag, values]) => `    ${flag}) COMPREPLY=($(compgen -W ${quote(values.join(' '))} -- "$cur")); return ;;`).join('\n')}
  esac
  # A value nothing can guess (a path, a duration): leave it to the shell's default.
  [[ $_berth_valued == *" $prev "* ]] && return
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "\${_berth_flags[$path]} \${_berth_flags[berth]}" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "\${_berth_subcommands[$path]}" -- "$cur"))
  fi
}
complete -o default -F _berth berth
`;
}

/** zsh: its bash-compatibility layer runs the bash script unchanged. */
export function zshCompletion(program: Command): string {
  return `#compdef berth
# berth completion for zsh; load it with: source <(berth completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

export function registerCompletion(program: Command, ctx: CliContext): void {
  program
    .command('completion')
    .description('print a shell completion script (bash or zsh): source <(berth completion bash)')
    .addArgument(new Argument('<shell>', 'the shell').choices([...COMPLETION_SHELLS]))
    .action((shell: (typeof COMPLETION_SHELLS)[number]) => {
      ctx.io.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
    });
}
