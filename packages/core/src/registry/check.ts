import semver from 'semver';
import { FailedPreconditionError } from '../errdefs/errdefs.js';
import { PluginCycleError } from '../config/errors.js';
import { topologicalOrder } from './graph.js';
import { coreTokens } from './host.js';
import { isPluginManifest, PLUGIN_API_VERSION, pluginUri, type AnyPluginManifest } from './manifest.js';
import { describeProvides, describeRequirement, withRoles, type AnyToken, type TokenRecord } from './token.js';

/** One reason a selection of plugins cannot run, with the error code the host would use for it at load time. */
export type CompositionProblem =
  | { readonly code: 'BERTH_ERR_PLUGIN_MANIFEST'; readonly message: string; readonly plugin?: string }
  | {
      readonly code: 'BERTH_ERR_PLUGIN_API_MISMATCH';
      readonly message: string;
      readonly plugin: string;
      readonly pluginVersion: string;
      readonly range: string;
      readonly coreVersion: string;
    }
  | {
      readonly code: 'BERTH_ERR_PLUGIN_DEP_MISSING';
      readonly message: string;
      readonly plugin: string;
      /** The requirement's key in the plugin's `requires`. */
      readonly dependency: string;
      readonly token: string;
    }
  | { readonly code: 'BERTH_ERR_PLUGIN_CYCLE'; readonly message: string; readonly path: readonly string[] };

export interface CompositionCheckOptions {
  /** The plugin API version ranges are checked against (default: this core's PLUGIN_API_VERSION). */
  readonly pluginApiVersion?: string;
  /** Tokens the program answers itself, besides core's host tokens (coreTokens). */
  readonly hostTokens?: readonly AnyToken[];
  /** URIs left out of the composition (as `disabled_plugins` would): neither checked nor providing anything. */
  readonly disabled?: readonly string[];
}

export interface CompositionReport {
  readonly ok: boolean;
  readonly problems: readonly CompositionProblem[];
  /** The plugins' URIs in an order where each comes after what it depends on (empty when there is a cycle). */
  readonly order: readonly string[];
}

/** Every problem of a selection at once; `problems` holds them one by one, each with its own code. */
export class CompositionInvalidError extends FailedPreconditionError {
  readonly problems: readonly CompositionProblem[];
  constructor(problems: readonly CompositionProblem[], subject = 'plugin selection') {
    super(`${subject} cannot run:\n  ${problems.map((p) => p.message).join('\n  ')}`, { code: 'BERTH_ERR_COMPOSITION_INVALID' });
    this.problems = problems;
  }
}

/**
 * Checks a selection of plugins without running any of it: envelopes and duplicate URIs, every `pluginApi` range
 * against the core's plugin API version, a provider for every token a plugin requires (optional requirements,
 * `all(...)` and contribution points may have none), and cycles in the requires graph. A plugin refused for its
 * API range provides nothing, so a plugin that needed it is reported too. The host runs the same rules at load
 * time but isolates failures there; a build refuses the selection instead.
 */
export function checkComposition(plugins: readonly unknown[], options: CompositionCheckOptions = {}): CompositionReport {
  const apiVersion = options.pluginApiVersion ?? PLUGIN_API_VERSION;
  const disabled = new Set(options.disabled ?? []);
  const hostKeys = new Set<symbol>([...Object.values(coreTokens), ...(options.hostTokens ?? [])].map((t) => t.key));
  const problems: CompositionProblem[] = [];
  const accepted: AnyPluginManifest[] = [];
  const seen = new Set<string>();
  /** Token key -> URIs of accepted providers, and of refused ones (named when a dependent misses them). */
  const providers = new Map<symbol, string[]>();
  const refusedProviders = new Map<symbol, string[]>();

  for (const [index, manifest] of plugins.entries()) {
    if (!isPluginManifest(manifest)) {
      problems.push({ code: 'BERTH_ERR_PLUGIN_MANIFEST', message: `entry ${index + 1} is not a plugin manifest (made by definePlugin)` });
      continue;
    }
    const uri = pluginUri(manifest);
    if (disabled.has(uri)) continue;
    if (seen.has(uri)) {
      problems.push({ code: 'BERTH_ERR_PLUGIN_MANIFEST', plugin: uri, message: `plugin ${uri} is selected twice` });
      continue;
    }
    seen.add(uri);
    const range = semver.validRange(manifest.pluginApi);
    const fits = range !== null && semver.satisfies(apiVersion, range, { includePrerelease: semver.prerelease(apiVersion) !== null });
    if (!fits) {
      problems.push({
        code: 'BERTH_ERR_PLUGIN_API_MISMATCH',
        plugin: uri,
        pluginVersion: manifest.version,
        range: manifest.pluginApi,
        coreVersion: apiVersion,
        message: `plugin ${uri}@${manifest.version} requires plugin API ${manifest.pluginApi}, but the core provides ${apiVersion}`,
      });
    }
    const into = fits ? providers : refusedProviders;
    for (const { target } of describeProvides(manifest.provides as never)) {
      for (const t of target.kind === 'token' ? withRoles(target) : [target]) into.set(t.key, [...(into.get(t.key) ?? []), uri]);
    }
    if (fits) accepted.push(manifest);
  }

  const edges = new Map<string, string[]>();
  for (const manifest of accepted) {
    const uri = pluginUri(manifest);
    const deps: string[] = [];
    for (const [name, requirement] of Object.entries((manifest.requires ?? {}) as TokenRecord)) {
      const { target, mode } = describeRequirement(requirement);
      if (hostKeys.has(target.key)) continue;
      const found = (providers.get(target.key) ?? []).filter((p) => p !== uri);
      deps.push(...found);
      if (found.length > 0 || mode !== 'one') continue;
      const refused = (refusedProviders.get(target.key) ?? []).filter((p) => p !== uri);
      problems.push({
        code: 'BERTH_ERR_PLUGIN_DEP_MISSING',
        plugin: uri,
        dependency: name,
        token: target.id,
        message:
          `plugin ${uri} requires "${target.id}" (as ${name}), which no plugin in the selection provides` +
          (refused.length > 0 ? ` (${refused.join(', ')} would, but is refused above)` : ''),
      });
    }
    edges.set(uri, [...new Set(deps)]);
  }

  let order: string[] = [];
  try {
    order = topologicalOrder([...edges.keys()], edges);
  } catch (err) {
    if (!(err instanceof PluginCycleError)) throw err;
    problems.push({ code: 'BERTH_ERR_PLUGIN_CYCLE', path: err.path, message: `the plugins ${err.path.join(' → ')} require each other in a cycle` });
  }
  return { ok: problems.length === 0, problems, order };
}

/** checkComposition, throwing CompositionInvalidError with every problem when there is any. */
export function assertComposition(plugins: readonly unknown[], options: CompositionCheckOptions & { subject?: string } = {}): readonly string[] {
  const report = checkComposition(plugins, options);
  if (!report.ok) throw new CompositionInvalidError(report.problems, options.subject);
  return report.order;
}
