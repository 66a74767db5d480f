import { InvalidArgumentError } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { MAX_WIRE_MESSAGE, toServiceError, toWireStatus } from './errgrpc.js';

describe('toWireStatus', () => {
  it('keeps short messages whole, with the errdef suffix Go clients match', () => {
    expect(toWireStatus(new InvalidArgumentError('digest "x" failed validation'))).toMatchObject({
      code: 3,
      message: 'digest "x" failed validation: invalid argument',
      errdef: 'invalid-argument',
    });
  });

  it('bounds a message that echoes a huge request, keeping its start and its suffix', () => {
    const huge = 'a'.repeat(1 << 20);
    const wire = toWireStatus(new InvalidArgumentError(`identifier "${huge}" greater than maximum length`));
    expect(wire.message.length).toBeLessThanOrEqual(MAX_WIRE_MESSAGE);
    expect(wire.message.startsWith('identifier "aaa')).toBe(true);
    expect(wire.message.endsWith('greater than maximum length: invalid argument')).toBe(true);
    expect(wire.message).toContain('characters left out');
    expect(toServiceError(new InvalidArgumentError(huge)).details!.length).toBeLessThanOrEqual(MAX_WIRE_MESSAGE);
  });
});
