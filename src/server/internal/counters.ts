/**
 * Owns the server's counters: the public `Stats`, plus tallies by frame type, by reason, by status and by close
 * code, for `GET /metrics`. They are plain numbers bumped where things happen (one map update per frame or per
 * fan-out, never per recipient) and read when metrics are scraped.
 *
 * @since 0.2.0
 * @internal
 */
import type { Stats } from "../SympleServer.js"

/**
 * Counts by label value.
 *
 * @since 0.2.0
 * @internal
 */
export type Tally = Map<string, number>

/**
 * Why a frame (or a peer) was dropped. `broker`: frames a broker could not carry to another process (there is no
 * broker yet; the count stays 0 until one exists).
 *
 * @since 0.2.0
 * @internal
 */
export type DropReason = "rate" | "size" | "broker"

/**
 * @since 0.2.0
 * @internal
 */
export interface Counters extends Stats {
  /** Frames received, by `type` (`invalid` for frames that are not a valid frame); after admission. */
  readonly framesIn: Tally
  /** Frames sent, by `type`, one per recipient. */
  readonly framesOut: Tally
  /** Frames dropped by the server's rules, by reason (unroutable frames and slow peers are in `Stats`). */
  readonly drops: Tally
  /** Error frames sent before authentication, by status. */
  readonly authFailures: Tally
  /** Connections ended, by WebSocket close code. */
  readonly closes: Tally
  /** Sockets refused at capacity (503, 1013). */
  refusedConnections: number
}

/**
 * @since 0.2.0
 * @internal
 */
export const make = (): Counters => ({
  received: 0,
  delivered: 0,
  undeliverable: 0,
  slowConsumers: 0,
  refused: 0,
  framesIn: new Map(),
  framesOut: new Map(),
  drops: new Map<string, number>([["rate", 0], ["size", 0], ["broker", 0]]),
  authFailures: new Map(),
  closes: new Map(),
  refusedConnections: 0
})

/**
 * @since 0.2.0
 * @internal
 */
export const add = (tally: Tally, key: string, count = 1): void => {
  if (count !== 0) tally.set(key, (tally.get(key) ?? 0) + count)
}

/**
 * The public figures, without the tallies.
 *
 * @since 0.2.0
 * @internal
 */
export const stats = (counters: Counters): Stats => ({
  received: counters.received,
  delivered: counters.delivered,
  undeliverable: counters.undeliverable,
  slowConsumers: counters.slowConsumers,
  refused: counters.refused
})
