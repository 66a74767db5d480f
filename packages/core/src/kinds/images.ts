import type { Labels, OpContext } from './context.js';
import type { Descriptor } from './diff.js';

/** containerd's images.Image: a name pointing at a root descriptor (index, manifest or config) in the content store. */
export interface Image {
  /** The reference the image is known by (`127.0.0.1:5000/test/busybox:latest`): unique per namespace. */
  readonly name: string;
  readonly labels: Labels;
  readonly target: Descriptor;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What a create or update supplies; the store sets the times. */
export type ImageInput = Pick<Image, 'name' | 'target'> & { readonly labels?: Labels };

/**
 * containerd's images.Store, per namespace. Errors are errdefs: NotFound for an unknown name, AlreadyExists for a
 * create of a name in use, InvalidArgument for an empty name, a target without media type, digest or size, a bad
 * label or an unknown field path; FailedPrecondition is never used (an image can always be removed).
 * Images are garbage-collection roots for their target (and, through its `containerd.io/gc.ref.*` labels, for what
 * it refers to).
 */
export interface ImageStore {
  get(ctx: OpContext, name: string): Promise<Image>;
  /** Every image matching any of the filters (containerd's syntax over `name`, `target.mediatype`, `target.digest`, `labels.*`). */
  list(ctx: OpContext, filters?: readonly string[]): Promise<Image[]>;
  create(ctx: OpContext, image: ImageInput): Promise<Image>;
  /**
   * Field paths as containerd 1.6 takes them: `labels`, `labels.<key>`, `target`, `annotations`,
   * `annotations.<key>` (the target's); none = replace labels and target.
   */
  update(ctx: OpContext, image: ImageInput & { readonly target?: Descriptor }, fieldpaths?: readonly string[]): Promise<Image>;
  /** With `sync`, returns after garbage collection has run. */
  delete(ctx: OpContext, name: string, options?: { sync?: boolean }): Promise<void>;
}
