/**
 * containerd's filter syntax (filters/parser.go). A list of filters is ORed; each filter is `,`-separated
 * selectors that are ANDed: `fieldpath`, `fieldpath==value`, `fieldpath!=value`, `fieldpath~=regexp`.
 */

/** Returns the value at a field path, or undefined when the field is absent. */
export type Adaptor = (fieldpath: readonly string[]) => string | undefined;

export interface Filter {
  match(adaptor: Adaptor): boolean;
}

/** Parses and ORs the filters; an empty list or only empty strings matches everything. InvalidArgumentError on bad syntax. */
export declare function parseFilters(filters: readonly string[]): Filter;
