/**
 * Owns the outbound byte budgets: how much a peer that reads slowly (or not at all) can make the server hold.
 *
 * A peer's waiting bytes are its mailbox plus what its socket holds and has not handed to the kernel yet. A socket's
 * bytes count once it reports backpressure (a write returned `false`, so a `drain` event is certain to follow and
 * bring the figure back down): the few KiB a socket holds for a moment while the kernel takes them are in flight,
 * not waiting.
 *
 * Each connection keeps its own figure and reports every change to the server's budget, which keeps the total and
 * the set of peers with something waiting. Nothing scans the connections per frame: only a total over
 * `maxOutboundBytes` (rare) looks at the peers that have something waiting, to close the slowest.
 *
 * @since 0.1.0
 * @internal
 */

/**
 * A peer as the budget sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Waiting {
  /** Bytes waiting for the peer, as last reported with `update`. */
  readonly waiting: number
  /** Brings the figure up to date (bytes its socket sent meanwhile no longer wait), reporting any change. */
  readonly recount: () => void
  /** Closes the peer as a slow consumer (1013), dropping its mailbox; its bytes leave the budget. */
  readonly shed: () => void
}

/**
 * @since 0.1.0
 * @category models
 */
export interface OutboundBudget {
  /** Bytes waiting over all peers (a frame sent to several peers counts once for each). */
  bytes: number
  /** The peers with something waiting. */
  readonly peers: Set<Waiting>
  /** `maxQueuedBytes`: a peer with more waiting is closed (`Infinity` when the option is 0: no per-peer budget). */
  readonly perPeer: number
  /** `maxOutboundBytes`: over it, the peers with the most waiting are closed; 0 = no global budget. */
  readonly total: number
  /**
   * Peers with no more than this waiting (one frame of the largest size a peer may send) are never closed for the
   * global budget: they keep up, and closing them would not relieve the server.
   */
  readonly floor: number
  /**
   * Until when (`Date.now()`) an over-budget total is left alone: set when nobody was left to close, so that a total
   * made only of peers within the floor does not make every further frame recount every waiting peer.
   */
  quietUntil: number
}

/** How long an over-budget total that nobody can relieve is left before the peers are counted again. */
const quietMillis = 10

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly maxQueuedBytes: number
  readonly maxOutboundBytes: number
  readonly maxMessageSize: number
}): OutboundBudget => ({
  bytes: 0,
  peers: new Set(),
  perPeer: options.maxQueuedBytes > 0 ? options.maxQueuedBytes : Infinity,
  total: options.maxOutboundBytes,
  floor: options.maxMessageSize,
  quietUntil: 0
})

/**
 * Records that a peer's waiting bytes went from `before` to `after`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const update = (budget: OutboundBudget, peer: Waiting, before: number, after: number): void => {
  budget.bytes += after - before
  if (after === 0) budget.peers.delete(peer)
  else if (before === 0) budget.peers.add(peer)
}

/**
 * Whether the total is over the global budget.
 *
 * @since 0.1.0
 * @category guards
 */
export const isOver = (budget: OutboundBudget): boolean => budget.total > 0 && budget.bytes > budget.total

/**
 * Closes the peers with the most waiting, slowest first, until the total is back within the global budget. Returns
 * how many were closed.
 *
 * @since 0.1.0
 * @category combinators
 */
export const shedSlowest = (budget: OutboundBudget): number => {
  const now = Date.now()
  if (now < budget.quietUntil) return 0
  // Figures are taken when bytes are added; sockets may have sent some since. Nobody is closed on a stale figure.
  for (const peer of budget.peers) peer.recount()
  if (!isOver(budget)) return 0
  const slowest = Array.from(budget.peers).filter((peer) => peer.waiting > budget.floor)
  slowest.sort((a, b) => b.waiting - a.waiting)
  let shed = 0
  for (const peer of slowest) {
    if (!isOver(budget)) break
    peer.shed()
    shed++
  }
  // Still over, with nobody left to close: every waiting peer keeps up within a frame.
  if (isOver(budget)) budget.quietUntil = now + quietMillis
  return shed
}
