import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errdefs/errdefs.js';

/** Every config problem found, reported at once: each line names the section (plugin URI) and the path. */
export class ConfigInvalidError extends InvalidArgumentError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source?: string) {
    super(`invalid configuration${source ? ` in ${source}` : ''}:\n  ${problems.join('\n  ')}`, { code: 'BERTH_ERR_CONFIG_INVALID' });
    this.problems = problems;
  }
}

export class PluginApiMismatchError extends FailedPreconditionError {
  constructor(uri: string, pluginVersion: string, range: string, provided: string) {
    super(
      `plugin ${uri}@${pluginVersion} requires plugin API ${range}, but this host provides ${provided}`,
      { code: 'BERTH_ERR_PLUGIN_API_MISMATCH' },
    );
  }
}

export class PluginDependencyMissingError extends NotFoundError {
  constructor(uri: string, tokenId: string) {
    super(`plugin ${uri} requires "${tokenId}", which no loaded plugin provides`, { code: 'BERTH_ERR_PLUGIN_DEP_MISSING' });
  }
}

export class PluginCycleError extends FailedPreconditionError {
  readonly path: readonly string[];
  constructor(path: readonly string[]) {
    super(`plugin dependency cycle: ${path.join(' → ')}`, { code: 'BERTH_ERR_PLUGIN_CYCLE' });
    this.path = path;
  }
}

export class PluginManifestError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, { code: 'BERTH_ERR_PLUGIN_MANIFEST' });
  }
}
