// The request corpus of the malformed-input phase, per method: one valid request that would change something if
// acted on (its bytes are where the malformed variants start), and valid-but-hostile requests with what containerd
// 1.6 answers them (read from its sources: services/*, metadata/*, namespaces.NamespaceRequired, identifiers,
// labels.Validate, filters.Parse, gogo's stdtime checks). Expectations are a code where containerd's is certain,
// `error` where containerd refuses with a code that is not a contract (bolt's "key required" is Unknown), and `any`
// where the answer is not the point (the daemon must still not crash, and a refusal must change nothing).
//
// A method missing here still gets the schema-made malformed corpus (from an empty valid request) and the generic
// cases; later services (images, containers, snapshots, tasks) add their entries below.
import { ServiceNames as S, StatusCode as C } from '@berth/api';
import { FIXTURE_CONTAINER, type Fixture } from './state.js';

export type Expectation = { readonly code: number } | 'error' | 'any';

export interface HostileCase {
  readonly name: string;
  /** The request messages (one for unary and server-streaming methods), encoded with the shared codec. */
  readonly messages: readonly unknown[];
  /** Overrides the fixture namespace; `null` sends none. */
  readonly namespace?: string | null;
  readonly expect: Expectation;
  /** The valid messages before the refused one were acted on, as containerd does (a WRITE before a failing COMMIT). */
  readonly partial?: true;
}

export interface MethodCorpus {
  readonly valid: unknown;
  readonly hostile: readonly HostileCase[];
}

/** Services whose every method needs `containerd-namespace` (containerd's NamespaceRequired). */
export const NAMESPACED = new Set<string>([S.Content, S.Leases, S.Images, S.Containers, S.Snapshots, S.Tasks, S.Diff]);
/** Methods of other services that need it too. */
export const NAMESPACED_METHODS = new Set<string>([`${S.Events}/Publish`]);

/**
 * Methods that cannot change state, so their cases skip the before/after comparison (it costs a dozen calls). A
 * method not listed here, a later one included, is compared.
 */
export const READ_ONLY = new Set<string>([
  `${S.Content}/Info`,
  `${S.Content}/List`,
  `${S.Content}/Read`,
  `${S.Content}/Status`,
  `${S.Content}/ListStatuses`,
  `${S.Leases}/List`,
  `${S.Leases}/ListResources`,
  `${S.Namespaces}/Get`,
  `${S.Namespaces}/List`,
  `${S.Events}/Subscribe`,
  `${S.Introspection}/Plugins`,
  `${S.Introspection}/Server`,
  `${S.Version}/Version`,
  `${S.Snapshots}/Mounts`,
  `${S.Snapshots}/Stat`,
  `${S.Snapshots}/List`,
  `${S.Snapshots}/Usage`,
  `${S.Health}/Check`,
  `${S.Health}/Watch`,
  `${S.Images}/Get`,
  `${S.Images}/List`,
  `${S.Containers}/Get`,
  `${S.Containers}/List`,
  `${S.Containers}/ListStream`,
  `${S.Tasks}/Get`,
  `${S.Tasks}/List`,
  `${S.Tasks}/ListPids`,
  `${S.Tasks}/Metrics`,
  `${S.Tasks}/Wait`,
]);

const MiB = 1 << 20;
const huge = (c = 'a', n = MiB) => c.repeat(n);
const bad = (code: number) => ({ code });

/** Filters that containerd's filters.Parse refuses (InvalidArgument). A bad regexp is not one of them: containerd
 * compiles it on first match, logs the error and matches nothing. */
const BAD_FILTERS = ['labels."a', 'a==b,', '==x'];

const timestamp = () => ({ seconds: Math.floor(Date.now() / 1000), nanos: 0 });

export function corpusFor(service: string, method: string, fx: Fixture): MethodCorpus | undefined {
  const envelope = (over: object = {}) => ({ timestamp: timestamp(), namespace: fx.ns, topic: '/chaos/victim', event: fx.event, ...over });
  const forward: MethodCorpus = {
    valid: { envelope: envelope() },
    hostile: [
      { name: 'envelope without namespace', messages: [{ envelope: envelope({ namespace: '' }) }], expect: bad(C.INVALID_ARGUMENT) },
      { name: 'envelope with invalid namespace', messages: [{ envelope: envelope({ namespace: 'Bad Name!' }) }], expect: bad(C.INVALID_ARGUMENT) },
      { name: 'topic without leading slash', messages: [{ envelope: envelope({ topic: 'chaos' }) }], expect: bad(C.INVALID_ARGUMENT) },
      { name: 'topic with an empty component', messages: [{ envelope: envelope({ topic: '/chaos//x' }) }], expect: bad(C.INVALID_ARGUMENT) },
      { name: 'no timestamp', messages: [{ envelope: envelope({ timestamp: null }) }], expect: bad(C.INVALID_ARGUMENT) },
      // gogo's stdtime refuses these while unmarshalling (codes.Internal at containerd).
      { name: 'timestamp nanos 2e9', messages: [{ envelope: envelope({ timestamp: { seconds: 1, nanos: 2e9 } }) }], expect: 'error' },
      { name: 'timestamp before year 1', messages: [{ envelope: envelope({ timestamp: { seconds: -62135596801, nanos: 0 } }) }], expect: 'error' },
      { name: 'huge topic', messages: [{ envelope: envelope({ topic: `/${huge()}` }) }], expect: bad(C.INVALID_ARGUMENT) },
    ],
  };
  const labelsCases = (make: (labels: Record<string, string>) => unknown, sizeCode: Expectation): HostileCase[] => [
    { name: 'empty label key', messages: [make({ '': 'v' })], expect: 'error' },
    { name: 'label over 4096 bytes', messages: [make({ k: huge('v', 5000) })], expect: sizeCode },
  ];
  const digestCases = (make: (digest: string) => unknown): HostileCase[] => [
    { name: 'digest with bad hex', messages: [make('sha256:zz')], expect: bad(C.INVALID_ARGUMENT) },
    { name: 'empty digest', messages: [make('')], expect: bad(C.INVALID_ARGUMENT) },
    { name: 'digest without algorithm', messages: [make(fx.digest.slice('sha256:'.length))], expect: bad(C.INVALID_ARGUMENT) },
    { name: 'huge digest', messages: [make(`sha256:${huge('a')}`)], expect: bad(C.INVALID_ARGUMENT) },
  ];
  const filterCases = (make: (filters: string[]) => unknown): HostileCase[] => [
    ...BAD_FILTERS.map((f) => ({ name: `filter ${JSON.stringify(f)}`, messages: [make([f])], expect: bad(C.INVALID_ARGUMENT) })),
    { name: 'huge filter', messages: [make([`labels."a"==${huge('b')}`])], expect: 'any' as const },
    { name: 'filter with an invalid regexp', messages: [make(['labels."a"~="("'])], expect: 'any' as const },
  ];

  switch (`${service}/${method}`) {
    case `${S.Content}/Info`:
      return { valid: { digest: fx.digest }, hostile: digestCases((digest) => ({ digest })) };
    case `${S.Content}/Update`: {
      const update = (info: object, paths: string[]) => ({ info: { digest: fx.digest, ...info }, update_mask: { paths } });
      return {
        valid: update({ labels: { victim: 'yes' } }, ['labels.victim']),
        hostile: [
          ...digestCases((digest) => ({ info: { digest, labels: { victim: 'yes' } }, update_mask: { paths: ['labels.victim'] } })),
          { name: 'unknown field path', messages: [update({}, ['bogus'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'empty field path', messages: [update({}, [''])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'empty label key in mask', messages: [update({ labels: { '': 'v' } }, ['labels.'])], expect: 'error' },
          ...labelsCases((labels) => update({ labels }, Object.keys(labels).map((k) => `labels.${k}`)), bad(C.INVALID_ARGUMENT)),
          { name: 'timestamp nanos 2e9', messages: [update({ created_at: { seconds: 1, nanos: 2e9 } }, ['labels.victim'])], expect: 'error' },
          { name: 'missing blob', messages: [{ info: { digest: fx.missingDigest, labels: { v: 'x' } }, update_mask: { paths: ['labels.v'] } }], expect: bad(C.NOT_FOUND) },
        ],
      };
    }
    case `${S.Content}/List`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Content}/Delete`:
      return {
        valid: { digest: fx.digest },
        hostile: [...digestCases((digest) => ({ digest })), { name: 'missing blob', messages: [{ digest: fx.missingDigest }], expect: bad(C.NOT_FOUND) }],
      };
    case `${S.Content}/Read`:
      return {
        valid: { digest: fx.digest },
        hostile: [
          ...digestCases((digest) => ({ digest })),
          { name: 'negative offset', messages: [{ digest: fx.digest, offset: -1 }], expect: 'any' },
          { name: 'negative size', messages: [{ digest: fx.digest, size: -1 }], expect: 'any' },
          { name: 'offset past the end', messages: [{ digest: fx.digest, offset: 2 ** 53 }], expect: 'any' },
          { name: 'missing blob', messages: [{ digest: fx.missingDigest }], expect: bad(C.NOT_FOUND) },
        ],
      };
    case `${S.Content}/Status`:
      return {
        valid: { ref: fx.ingest },
        hostile: [
          { name: 'empty ref', messages: [{ ref: '' }], expect: 'error' },
          { name: 'huge ref', messages: [{ ref: huge() }], expect: 'error' },
        ],
      };
    case `${S.Content}/ListStatuses`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Content}/Write`: {
      const write = (over: object = {}) => ({ action: 'WRITE', ref: 'chaos-victim', offset: 0, data: Buffer.from('victim'), ...over });
      return {
        valid: write(),
        hostile: [
          { name: 'first message without ref', messages: [write({ ref: '' })], expect: bad(C.INVALID_ARGUMENT) },
          // containerd only checks the expected digest at commit, and treats a negative offset as "the current one".
          { name: 'expected digest with bad hex', messages: [write({ expected: 'sha256:zz', total: 6 })], expect: 'any' },
          { name: 'negative offset', messages: [write({ offset: -1 })], expect: 'any' },
          { name: 'negative total', messages: [{ action: 'STAT', ref: 'chaos-victim', total: -1 }], expect: 'any' },
          // A failed commit keeps the ingest written before it (containerd too).
          { name: 'commit with a wrong digest', messages: [write(), { action: 'COMMIT', ref: 'chaos-victim', offset: 6, total: 6, expected: fx.missingDigest }], expect: 'error', partial: true },
          { name: 'commit with an oversized label', messages: [write(), { action: 'COMMIT', ref: 'chaos-victim', offset: 6, total: 6, labels: { k: huge('v', 5000) } }], expect: 'error', partial: true },
          { name: 'huge ref', messages: [write({ ref: huge() })], expect: 'any' },
          { name: 'unknown action', messages: [{ action: 7, ref: 'chaos-victim' }], expect: 'any' },
        ],
      };
    }
    case `${S.Content}/Abort`:
      return {
        valid: { ref: fx.ingest },
        hostile: [
          { name: 'empty ref', messages: [{ ref: '' }], expect: 'error' },
          { name: 'missing ref', messages: [{ ref: 'chaos-none' }], expect: bad(C.NOT_FOUND) },
        ],
      };
    case `${S.Leases}/Create`:
      return {
        valid: { id: 'chaos-victim', labels: { victim: 'yes' } },
        hostile: [
          // containerd's leases service gives a lease without an id a random one (services/leases/service.go).
          { name: 'empty id', messages: [{ id: '' }], expect: 'any' },
          { name: 'huge id', messages: [{ id: huge() }], expect: 'error' },
          { name: 'id with NUL', messages: [{ id: 'a\0b' }], expect: 'error' },
          { name: 'existing id', messages: [{ id: fx.lease }], expect: bad(C.ALREADY_EXISTS) },
          ...labelsCases((labels) => ({ id: 'chaos-hostile', labels }), 'any'),
        ],
      };
    case `${S.Leases}/Delete`:
      return {
        valid: { id: fx.lease, sync: true },
        hostile: [
          { name: 'missing lease', messages: [{ id: 'chaos-none' }], expect: bad(C.NOT_FOUND) },
          { name: 'empty id', messages: [{ id: '' }], expect: 'error' },
        ],
      };
    case `${S.Leases}/List`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Leases}/AddResource`:
    case `${S.Leases}/DeleteResource`: {
      const target = method === 'AddResource' ? fx.missingDigest : fx.digest;
      const req = (resource: object, id = fx.lease) => ({ id, resource });
      return {
        valid: req({ id: target, type: 'content' }),
        hostile: [
          // containerd: Unimplemented ("resource type bogus not supported yet").
          { name: 'unknown resource type', messages: [req({ id: target, type: 'bogus' })], expect: 'error' },
          { name: 'content resource with a bad digest', messages: [req({ id: 'sha256:zz', type: 'content' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'snapshot resource without snapshotter', messages: [req({ id: 'k', type: 'snapshots' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'missing lease', messages: [req({ id: target, type: 'content' }, 'chaos-none')], expect: bad(C.NOT_FOUND) },
        ],
      };
    }
    case `${S.Leases}/ListResources`:
      return { valid: { id: fx.lease }, hostile: [{ name: 'missing lease', messages: [{ id: 'chaos-none' }], expect: bad(C.NOT_FOUND) }] };
    case `${S.Namespaces}/Get`:
      return {
        valid: { name: fx.ns },
        // containerd answers a missing namespace OK with no labels; berth's NotFound is a known difference.
        hostile: [
          { name: 'invalid name', messages: [{ name: 'Bad Name!' }], expect: 'any' },
          { name: 'huge name', messages: [{ name: huge() }], expect: 'any' },
        ],
      };
    case `${S.Namespaces}/List`:
      return { valid: {}, hostile: [{ name: 'huge filter', messages: [{ filter: huge() }], expect: 'any' }] };
    case `${S.Namespaces}/Create`: {
      const create = (name: string, labels: Record<string, string> = {}) => ({ namespace: { name, labels } });
      return {
        valid: create('chaos-victim', { victim: 'yes' }),
        hostile: [
          { name: 'empty name', messages: [create('')], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'invalid name', messages: [create('Bad/Name')], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'huge name', messages: [create(huge())], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'existing name', messages: [create(fx.ns)], expect: bad(C.ALREADY_EXISTS) },
          ...labelsCases((labels) => create('chaos-hostile', labels), bad(C.INVALID_ARGUMENT)),
        ],
      };
    }
    case `${S.Namespaces}/Update`: {
      const update = (labels: Record<string, string>, paths: string[], name = fx.ns) => ({ namespace: { name, labels }, update_mask: { paths } });
      return {
        valid: update({ victim: 'yes' }, ['labels.victim']),
        hostile: [
          { name: 'mask "labels"', messages: [update({ victim: 'yes' }, ['labels'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'unknown field path', messages: [update({}, ['bogus'])], expect: bad(C.INVALID_ARGUMENT) },
          // containerd's SetLabel creates the namespace's label bucket, so an Update of a missing namespace makes it.
          { name: 'missing namespace', messages: [update({ v: 'x' }, ['labels.v'], 'chaos-none')], expect: 'any' },
          ...labelsCases((labels) => update(labels, Object.keys(labels).map((k) => `labels.${k}`)), bad(C.INVALID_ARGUMENT)),
        ],
      };
    }
    case `${S.Namespaces}/Delete`:
      return {
        valid: { name: fx.emptyNs },
        hostile: [
          { name: 'empty name', messages: [{ name: '' }], expect: 'error' },
          { name: 'invalid name', messages: [{ name: 'Bad/Name' }], expect: 'error' },
          { name: 'namespace holding content', messages: [{ name: fx.ns }], expect: bad(C.FAILED_PRECONDITION) },
        ],
      };
    case `${S.Events}/Publish`:
      return {
        valid: { topic: '/chaos/victim', event: fx.event },
        hostile: [
          { name: 'empty topic', messages: [{ topic: '', event: fx.event }], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'topic without leading slash', messages: [{ topic: 'chaos', event: fx.event }], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'topic with an invalid component', messages: [{ topic: '/chaos/Bad!', event: fx.event }], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'no event', messages: [{ topic: '/chaos/victim' }], expect: 'any' },
        ],
      };
    case `${S.Events}/Forward`:
    case `${S.TtrpcEvents}/Forward`:
      return forward;
    case `${S.Events}/Subscribe`:
      return { valid: { filters: ['topic=="/chaos/never"'] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Introspection}/Plugins`:
      return { valid: { filters: ['type==io.containerd.grpc.v1'] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Introspection}/Server`:
    case `${S.Version}/Version`:
      return { valid: {}, hostile: [] };
    case `${S.Health}/Check`:
    case `${S.Health}/Watch`:
      return {
        valid: { service: '' },
        hostile: [
          { name: 'unknown service', messages: [{ service: 'chaos.Bogus' }], expect: method === 'Check' ? bad(C.NOT_FOUND) : 'any' },
          { name: 'huge service name', messages: [{ service: huge() }], expect: 'any' },
        ],
      };
    // Snapshots (services/snapshots and metadata/snapshot.go): the service checks the snapshotter name before the
    // namespace, so only requests that name one reach the namespace checks.
    case `${S.Snapshots}/Prepare`:
    case `${S.Snapshots}/View`: {
      const req = (key: string, parent = fx.snapshot, snapshotter = fx.snapshotter, labels: Record<string, string> = {}) => ({ snapshotter, key, parent, labels });
      return {
        valid: req('chaos-victim'),
        hostile: [
          { name: 'no snapshotter', messages: [req('chaos-victim', fx.snapshot, '')], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'unknown snapshotter', messages: [req('chaos-victim', fx.snapshot, 'chaos-bogus')], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'existing key', messages: [req(fx.active)], expect: bad(C.ALREADY_EXISTS) },
          { name: 'missing parent', messages: [req('chaos-victim', 'chaos-none')], expect: 'error' },
          { name: 'active parent', messages: [req('chaos-victim', fx.active)], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'empty key', messages: [req('')], expect: 'error' },
          { name: 'huge key', messages: [req(huge())], expect: 'error' },
          ...labelsCases((labels) => req('chaos-victim', fx.snapshot, fx.snapshotter, labels), 'error'),
        ],
      };
    }
    case `${S.Snapshots}/Mounts`:
    case `${S.Snapshots}/Usage`:
    case `${S.Snapshots}/Stat`:
      return {
        valid: { snapshotter: fx.snapshotter, key: method === 'Stat' ? fx.snapshot : fx.active },
        hostile: [
          { name: 'missing key', messages: [{ snapshotter: fx.snapshotter, key: 'chaos-none' }], expect: bad(C.NOT_FOUND) },
          { name: 'unknown snapshotter', messages: [{ snapshotter: 'chaos-bogus', key: fx.active }], expect: bad(C.INVALID_ARGUMENT) },
        ],
      };
    case `${S.Snapshots}/Commit`: {
      const req = (name: string, key: string) => ({ snapshotter: fx.snapshotter, name, key, labels: {} });
      return {
        valid: req('chaos-victim', fx.active),
        hostile: [
          { name: 'existing name', messages: [req(fx.snapshot, fx.active)], expect: bad(C.ALREADY_EXISTS) },
          { name: 'missing key', messages: [req('chaos-victim', 'chaos-none')], expect: bad(C.NOT_FOUND) },
          { name: 'committed key', messages: [req('chaos-victim', fx.snapshot)], expect: 'error' },
          { name: 'huge name', messages: [req(huge(), fx.active)], expect: 'error' },
        ],
      };
    }
    case `${S.Snapshots}/Remove`:
      return {
        valid: { snapshotter: fx.snapshotter, key: fx.active },
        hostile: [
          { name: 'snapshot with a child', messages: [{ snapshotter: fx.snapshotter, key: fx.snapshot }], expect: bad(C.FAILED_PRECONDITION) },
          { name: 'missing key', messages: [{ snapshotter: fx.snapshotter, key: 'chaos-none' }], expect: bad(C.NOT_FOUND) },
          { name: 'unknown snapshotter', messages: [{ snapshotter: 'chaos-bogus', key: fx.active }], expect: bad(C.INVALID_ARGUMENT) },
        ],
      };
    case `${S.Snapshots}/Update`: {
      const update = (labels: Record<string, string>, paths: string[], name = fx.snapshot) => ({
        snapshotter: fx.snapshotter,
        info: { name, labels },
        update_mask: { paths },
      });
      return {
        valid: update({ victim: 'yes' }, ['labels.victim']),
        hostile: [
          { name: 'unknown field path', messages: [update({}, ['bogus'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'missing snapshot', messages: [update({ v: 'x' }, ['labels.v'], 'chaos-none')], expect: bad(C.NOT_FOUND) },
          ...labelsCases((labels) => update(labels, Object.keys(labels).map((k) => `labels.${k}`)), 'error'),
        ],
      };
    }
    case `${S.Images}/Get`:
      return {
        valid: { name: fx.image },
        hostile: [
          { name: 'missing image', messages: [{ name: 'chaos.example/none:latest' }], expect: bad(C.NOT_FOUND) },
          { name: 'huge name', messages: [{ name: huge() }], expect: 'error' },
        ],
      };
    case `${S.Images}/List`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Images}/Create`:
    case `${S.Images}/Update`: {
      const target = { media_type: 'application/vnd.oci.image.manifest.v1+json', digest: fx.digest, size: fx.size };
      const name = method === 'Create' ? 'chaos.example/victim:latest' : fx.image;
      const req = (image: object, paths?: string[]) => ({ image: { name, target, labels: { victim: 'yes' }, ...image }, ...(paths ? { update_mask: { paths } } : {}) });
      const masked = method === 'Update' ? ['labels.victim'] : undefined;
      return {
        valid: req({}, masked),
        hostile: [
          // containerd's service: "Image.Name required" (InvalidArgument) before the store is asked.
          { name: 'empty name', messages: [req({ name: '' }, masked)], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'target with a bad digest', messages: [req({ target: { ...target, digest: 'sha256:zz' } })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'target of size 0', messages: [req({ target: { ...target, size: 0 } })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'target without media type', messages: [req({ target: { ...target, media_type: '' } })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'no target', messages: [req({ target: null })], expect: bad(C.INVALID_ARGUMENT) },
          ...labelsCases((labels) => req({ labels }, method === 'Update' ? Object.keys(labels).map((k) => `labels.${k}`) : undefined), bad(C.INVALID_ARGUMENT)),
          ...(method === 'Create'
            ? [{ name: 'existing name', messages: [{ image: { name: fx.image, target } }], expect: bad(C.ALREADY_EXISTS) }]
            : [
                { name: 'unknown field path', messages: [req({}, ['bogus'])], expect: bad(C.INVALID_ARGUMENT) },
                { name: 'missing image', messages: [{ image: { name: 'chaos.example/none:latest', target }, update_mask: { paths: ['labels.v'] } }], expect: bad(C.NOT_FOUND) },
              ]),
        ],
      };
    }
    case `${S.Images}/Delete`:
      return {
        valid: { name: fx.image, sync: true },
        hostile: [{ name: 'missing image', messages: [{ name: 'chaos.example/none:latest' }], expect: bad(C.NOT_FOUND) }],
      };
    case `${S.Containers}/Get`:
      return {
        valid: { id: fx.container },
        hostile: [
          { name: 'missing container', messages: [{ id: 'chaos-none' }], expect: bad(C.NOT_FOUND) },
          { name: 'huge id', messages: [{ id: huge() }], expect: 'error' },
        ],
      };
    case `${S.Containers}/List`:
    case `${S.Containers}/ListStream`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Containers}/Create`: {
      const req = (over: object) => ({ container: { ...FIXTURE_CONTAINER, id: 'chaos-victim', ...over } });
      return {
        valid: req({}),
        // containerd's metadata/containers.go validateContainer: every refusal is InvalidArgument.
        hostile: [
          { name: 'empty id', messages: [req({ id: '' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'invalid id', messages: [req({ id: 'Bad/Id' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'huge id', messages: [req({ id: huge() })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'no runtime name', messages: [req({ runtime: { name: '' } })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'no spec', messages: [req({ spec: null })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'snapshot key without snapshotter', messages: [req({ snapshot_key: 'chaos-active' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'empty extension name', messages: [req({ extensions: { '': FIXTURE_CONTAINER.extensions['chaos.example/ext'] } })], expect: bad(C.INVALID_ARGUMENT) },
          ...labelsCases((labels) => req({ labels }), bad(C.INVALID_ARGUMENT)),
          { name: 'existing id', messages: [req({ id: fx.container })], expect: bad(C.ALREADY_EXISTS) },
        ],
      };
    }
    case `${S.Containers}/Update`: {
      const req = (over: object, paths?: string[]) => ({
        container: { ...FIXTURE_CONTAINER, id: fx.container, snapshotter: 'native', snapshot_key: fx.active, labels: { victim: 'yes' }, ...over },
        ...(paths ? { update_mask: { paths } } : {}),
      });
      return {
        valid: req({}, ['labels.victim']),
        hostile: [
          { name: 'empty id', messages: [req({ id: '' }, ['labels.victim'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'missing container', messages: [req({ id: 'chaos-none' }, ['labels.victim'])], expect: bad(C.NOT_FOUND) },
          { name: 'unknown field path', messages: [req({}, ['bogus'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'runtime field path', messages: [req({ runtime: { name: 'io.containerd.other.v1' } }, ['runtime'])], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'snapshotter changed without a mask', messages: [req({ snapshotter: 'overlayfs' })], expect: bad(C.INVALID_ARGUMENT) },
          { name: 'runtime changed without a mask', messages: [req({ runtime: { name: 'io.containerd.other.v1' } })], expect: bad(C.INVALID_ARGUMENT) },
          ...labelsCases((labels) => req({ labels }, Object.keys(labels).map((k) => `labels.${k}`)), bad(C.INVALID_ARGUMENT)),
        ],
      };
    }
    case `${S.Containers}/Delete`:
      return {
        valid: { id: fx.container },
        hostile: [{ name: 'missing container', messages: [{ id: 'chaos-none' }], expect: bad(C.NOT_FOUND) }],
      };
    // The fixture container has no task: every call naming it is NotFound, as is one naming no container.
    case `${S.Tasks}/Create`:
      return { valid: { container_id: fx.container }, hostile: [{ name: 'missing container', messages: [{ container_id: 'chaos-none' }], expect: bad(C.NOT_FOUND) }] };
    case `${S.Tasks}/Start`:
    case `${S.Tasks}/Delete`:
    case `${S.Tasks}/Get`:
    case `${S.Tasks}/Kill`:
    case `${S.Tasks}/CloseIO`:
    case `${S.Tasks}/ResizePty`:
    case `${S.Tasks}/Pause`:
    case `${S.Tasks}/Resume`:
    case `${S.Tasks}/ListPids`:
    case `${S.Tasks}/Update`:
    case `${S.Tasks}/Wait`:
    case `${S.Tasks}/DeleteProcess`:
    case `${S.Tasks}/Exec`: {
      const exec = method === 'DeleteProcess' || method === 'Exec' ? { exec_id: 'chaos-exec' } : {};
      const signal = method === 'Kill' ? { signal: 9 } : {};
      const req = (container_id: string) => ({ container_id, ...exec, ...signal });
      return {
        valid: req(fx.container),
        hostile: [
          { name: 'container without a task', messages: [req(fx.container)], expect: bad(C.NOT_FOUND) },
          { name: 'missing container', messages: [req('chaos-none')], expect: bad(C.NOT_FOUND) },
        ],
      };
    }
    case `${S.Tasks}/List`:
      return { valid: { filter: '' }, hostile: [{ name: 'huge filter', messages: [{ filter: huge() }], expect: 'any' }] };
    case `${S.Tasks}/Metrics`:
      return { valid: { filters: [] }, hostile: filterCases((filters) => ({ filters })) };
    case `${S.Snapshots}/List`:
      return { valid: { snapshotter: fx.snapshotter, filters: [] }, hostile: filterCases((filters) => ({ snapshotter: fx.snapshotter, filters })) };
    case `${S.Snapshots}/Cleanup`:
      return {
        valid: { snapshotter: fx.snapshotter },
        hostile: [{ name: 'unknown snapshotter', messages: [{ snapshotter: 'chaos-bogus' }], expect: bad(C.INVALID_ARGUMENT) }],
      };
    default:
      return undefined;
  }
}
