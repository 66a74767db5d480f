// Label and namespace details where berthd follows containerd 1.6, driven with Debian's ctr (and raw gRPC for what
// ctr never sends): an empty label key is refused, Namespaces.Get of an unknown name answers empty labels,
// Namespaces.Update refuses a bare `labels` mask.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { hasCtr, hasRoot, startBerthd, type Berthd } from './harness.js';

const NAMESPACES = 'containerd.services.namespaces.v1.Namespaces';

describe.skipIf(!hasRoot() || !hasCtr())('labels and namespaces as containerd', () => {
  let daemon: Berthd;
  beforeAll(async () => {
    daemon = await startBerthd({ logLevel: 'info' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('refuses an empty label key on leases, namespaces and content, keeping nothing of the request', async () => {
    // ctr splits `=v` into key "" and value "v" and sends it as is.
    const lease = await daemon.ctr(['leases', 'create', '--id', 'keyless', '=v']);
    expect(lease.code).toBe(1);
    expect(lease.stderr).toContain('label key required: invalid argument');
    expect((await daemon.ctr(['leases', 'ls', '-q'])).stdout.trim()).toBe('');

    const ns = await daemon.ctr(['namespaces', 'create', 'keyless', 'a=b', '=v']);
    expect(ns.code).toBe(1);
    expect(ns.stderr).toContain('label key required: invalid argument');
    expect((await daemon.ctr(['namespaces', 'ls', '-q'])).stdout).not.toMatch(/^keyless$/m);

    expect((await daemon.ctr(['namespaces', 'create', 'labelled', 'a=b'])).code).toBe(0);
    const label = await daemon.ctr(['namespaces', 'label', 'labelled', '=v']);
    expect(label.code).toBe(1);
    expect(label.stderr).toContain('label key required: invalid argument');
    expect((await daemon.ctr(['namespaces', 'ls'])).stdout).toMatch(/^labelled\s+a=b\s*$/m);

    const ingest = await daemon.ctr(['content', 'ingest', 'ref-keyless'], { input: 'label me', namespace: 'labelled' });
    expect(ingest.code, ingest.stderr).toBe(0);
    const digest = (await daemon.ctr(['content', 'ls', '-q'], { namespace: 'labelled' })).stdout.trim();
    const contentLabel = await daemon.ctr(['content', 'label', digest, '=v'], { namespace: 'labelled' });
    expect(contentLabel.code).toBe(1);
    expect(contentLabel.stderr).toContain('label key required: invalid argument');
    expect((await daemon.ctr(['content', 'rm', digest], { namespace: 'labelled' })).code).toBe(0);
  });

  it('answers Namespaces.Get of an unknown name with empty labels, without creating it', async () => {
    const res = await unaryCall<{ namespace: unknown }>(daemon.address, NAMESPACES, 'Get', { name: 'never-made' });
    expect(res.error).toBeUndefined();
    expect(res.response?.namespace).toEqual({ name: 'never-made', labels: {} });
    expect((await daemon.ctr(['namespaces', 'ls', '-q'])).stdout).not.toMatch(/^never-made$/m);
    // ctr's label command goes straight to Update, which (as in containerd) creates the namespace.
    expect((await daemon.ctr(['namespaces', 'label', 'made-by-label', 'k=v'])).code).toBe(0);
    expect((await daemon.ctr(['namespaces', 'ls'])).stdout).toMatch(/^made-by-label\s+k=v\s*$/m);
  });

  it('refuses Namespaces.Update with a bare labels mask, changing nothing', async () => {
    expect((await daemon.ctr(['namespaces', 'create', 'masked', 'keep=1'])).code).toBe(0);
    for (const paths of [['labels'], ['labels.new', 'labels'], ['name']]) {
      const res = await unaryCall(daemon.address, NAMESPACES, 'Update', {
        namespace: { name: 'masked', labels: { new: 'x' } },
        update_mask: { paths },
      }, { 'containerd-namespace': 'default' });
      expect(res.error?.code, paths.join()).toBe(3);
      expect(res.error?.details).toBe(`cannot update ${JSON.stringify(paths.at(-1))} field: invalid argument`);
    }
    expect((await daemon.ctr(['namespaces', 'ls'])).stdout).toMatch(/^masked\s+keep=1\s*$/m);
  });
});
