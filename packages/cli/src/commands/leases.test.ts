import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { EXPIRE_LABEL, generateLeaseId, leaseLabels } from './leases.js';

describe('leases create', () => {
  it('generates ids in ctr shape', () => {
    const ids = new Set(Array.from({ length: 20 }, () => generateLeaseId()));
    for (const id of ids) expect(id).toMatch(/^\d{1,9}-[A-Za-z0-9_-]{4}$/);
    expect(ids.size).toBeGreaterThan(15);
  });

  it('adds the expiry label unless the lifetime is 0', () => {
    const now = new Date(Date.UTC(2024, 4, 1, 12, 0, 0));
    expect(leaseLabels({ a: 'b' }, 86_400_000, now)).toEqual({ a: 'b', [EXPIRE_LABEL]: '2024-05-02T12:00:00Z' });
    expect(leaseLabels({ a: 'b' }, 0, now)).toEqual({ a: 'b' });
    let err: unknown;
    try {
      leaseLabels({}, -1, now);
    } catch (e) {
      err = e;
    }
    expect(isInvalidArgument(err)).toBe(true);
  });
});
