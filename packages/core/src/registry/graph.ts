import { PluginCycleError } from '../config/errors.js';

/**
 * Depth-first cycle detection over `edges` (node -> the nodes it depends on). Throws PluginCycleError with the
 * path `a → b → a` of the first cycle found; returns the nodes in dependency-first order otherwise.
 */
export function topologicalOrder(nodes: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    const s = state.get(node);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw new PluginCycleError([...stack.slice(stack.indexOf(node)), node]);
    }
    state.set(node, 'visiting');
    stack.push(node);
    for (const dep of edges.get(node) ?? []) visit(dep);
    stack.pop();
    state.set(node, 'done');
    order.push(node);
  };
  for (const node of nodes) visit(node);
  return order;
}
