import type { Logger } from '@berth/core';
import type { ServicesDiffConfig } from './config.js';

/** The implementation: a plain class, never the registry (STYLE §1). */
export class ServicesDiff {
  constructor(private readonly config: ServicesDiffConfig, private readonly log: Logger) {}

  greet(name: string): string {
    this.log.debug('greeting', { name });
    return `${this.config.greeting}, ${name}`;
  }
}
