// Tokens of what @berth/client provides to a composition (the CLI's client-side plugins require them).
import { createToken } from '@berth/core';
import type { BerthClient } from './client.js';

/** The connected client of berthd: the CLI provides it to its PluginHost, proxy plugins require it. */
export const clientToken = createToken<BerthClient>('berth-client');
