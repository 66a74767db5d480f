import { messageCodec } from '@berth/api';
import { describe, expect, it } from 'vitest';
import { RUNC_OPTIONS_TYPE_URL, decodeRuncOptions, encodeAny, shimOptions, takesRuncOptions } from './runc-options.js';

const runc = (o: Record<string, unknown>) => ({ typeUrl: RUNC_OPTIONS_TYPE_URL, value: messageCodec('containerd.runc.v1.Options').encode(o) });

describe('runc options', () => {
  it('which runtimes take containerd.runc.v1.Options', () => {
    expect(takesRuncOptions('io.containerd.runc.v2', '/usr/bin/containerd-shim-runc-v2')).toBe(true);
    expect(takesRuncOptions('io.containerd.runc.v1', '/usr/bin/containerd-shim-runc-v1')).toBe(true);
    expect(takesRuncOptions('/opt/containerd-shim-runc-v2', '/opt/containerd-shim-runc-v2')).toBe(true);
    expect(takesRuncOptions('io.containerd.kata.v2', '/usr/bin/containerd-shim-kata-v2')).toBe(false);
  });

  it('fills the runc root when unset and keeps BinaryName and SystemdCgroup', () => {
    const out = shimOptions({ runtimeOptions: runc({ binary_name: 'crun', systemd_cgroup: true }) }, true, '/state/runc');
    expect(out?.typeUrl).toBe(RUNC_OPTIONS_TYPE_URL);
    expect(decodeRuncOptions(out)).toMatchObject({ binary_name: 'crun', systemd_cgroup: true, root: '/state/runc' });
  });

  it('keeps a root the client chose, and prefers the task options to the container\'s', () => {
    const out = shimOptions({ taskOptions: runc({ root: '/mine' }), runtimeOptions: runc({ binary_name: 'crun' }) }, true, '/state/runc');
    expect(decodeRuncOptions(out)).toMatchObject({ root: '/mine', binary_name: '' });
  });

  it('gives a runc shim without options the root, and an empty Any (as ctr sends) too', () => {
    expect(decodeRuncOptions(shimOptions({}, true, '/state/runc'))).toMatchObject({ root: '/state/runc' });
    expect(decodeRuncOptions(shimOptions({ runtimeOptions: { typeUrl: RUNC_OPTIONS_TYPE_URL, value: new Uint8Array(0) } }, true, '/r'))).toMatchObject({ root: '/r' });
  });

  it('leaves options of other types, and other shims, alone', () => {
    const other = { typeUrl: 'io.example.Options', value: Buffer.from([1, 2, 3]) };
    expect(shimOptions({ runtimeOptions: other }, true, '/r')).toBe(other);
    expect(shimOptions({}, false, '/r')).toBeUndefined();
    const r = runc({ binary_name: 'crun' });
    expect(shimOptions({ runtimeOptions: r }, false, '/r')).toBe(r);
  });

  it('refuses runc options that do not decode', () => {
    expect(() => shimOptions({ runtimeOptions: { typeUrl: RUNC_OPTIONS_TYPE_URL, value: Buffer.from([0x0a, 0xff]) } }, true, '/r')).toThrow(/cannot be decoded/);
  });

  it('encodes the Any for start\'s stdin', () => {
    const any = runc({ shim_cgroup: '/berth' });
    const bytes = encodeAny(any)!;
    expect(messageCodec('google.protobuf.Any').decode(bytes)).toMatchObject({ type_url: RUNC_OPTIONS_TYPE_URL });
    expect(encodeAny(undefined)).toBeUndefined();
  });
});
