// Identifiers get their own types so that a page number can never be passed where a
// node id is expected. LSNs are bigints: a volume outlives 2^53 records.

import { assert } from './assert.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type Lsn = bigint;
export type PageId = Brand<number, 'PageId'>;
export type NodeId = Brand<number, 'NodeId'>;
export type Epoch = Brand<number, 'Epoch'>;
/** Index of a protection group inside a volume. */
export type ProtectionGroupId = Brand<number, 'ProtectionGroupId'>;
/**
 * A segment is one copy of one protection group of one volume on one node:
 * "pg<N>@node<M>" for the fleet's first volume, "<volume>/pg<N>@node<M>" for any other, so
 * that one node hosts segments of many volumes (clusters) without their names meeting.
 */
export type SegmentId = Brand<string, 'SegmentId'>;
export type AvailabilityZone = Brand<string, 'AvailabilityZone'>;

export const pageId = (value: number): PageId => value as PageId;
export const nodeId = (value: number): NodeId => value as NodeId;
export const epoch = (value: number): Epoch => value as Epoch;
export const protectionGroupId = (value: number): ProtectionGroupId => value as ProtectionGroupId;
export const availabilityZone = (value: string): AvailabilityZone => value as AvailabilityZone;
export const segmentId = (group: ProtectionGroupId, node: NodeId, volume?: string): SegmentId =>
  `${volume === undefined ? '' : `${volume}/`}pg${group}@node${node}` as SegmentId;

/** Volume names: lower-case letters, digits and hyphens, a letter first (at most 63). */
export const VOLUME_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** The volume, PG and node a segment id names; a malformed id is a programmer error. */
function parseSegment(segment: SegmentId): { volume: string | undefined; group: number; node: number } {
  const match = /^(?:([a-z][a-z0-9-]{0,62})\/)?pg(\d+)@node(\d+)$/.exec(segment);
  assert(match !== null, `bad segment id ${segment}`);
  return { volume: match[1], group: Number(match[2]), node: Number(match[3]) };
}
export const nodeOfSegment = (segment: SegmentId): NodeId => parseSegment(segment).node as NodeId;
export const groupOfSegment = (segment: SegmentId): number => parseSegment(segment).group;
/** The volume a segment belongs to (undefined: the fleet's first volume). */
export const volumeOfSegment = (segment: SegmentId): string | undefined => parseSegment(segment).volume;

export const LSN_ZERO: Lsn = 0n;

export function lsnMax(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
export function lsnMin(a: Lsn, b: Lsn): Lsn {
  return a < b ? a : b;
}
