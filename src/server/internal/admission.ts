/**
 * Owns admission: which sockets and frames the server takes on. A socket over `maxConnections` is refused (503,
 * close 1013); an unauthenticated connection has a budget of frames (`preAuthFrames`); an online session's frames
 * go through the admission the rate-limit policy (`RateLimit.RateLimit`) gives it when it goes online, released (in
 * the server's context) when it ends.
 *
 * @since 0.2.0
 * @internal
 */
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"
import * as Message from "../../protocol/Message.js"
import type * as Peer from "../../protocol/Peer.js"
import * as RateLimit from "../RateLimit.js"
import type { Hub } from "./hub.js"
import { encode } from "./socketWriter.js"

const ignore = () => {}

/**
 * Whether the server has no room for another socket.
 *
 * @since 0.2.0
 * @internal
 */
export const atCapacity = (hub: Hub): boolean => {
  const max = hub.options.maxConnections
  return max > 0 && hub.connections.size >= max
}

/**
 * Refuses a socket the server has no room for: error 503, close 1013, and the descriptor freed at once.
 *
 * @since 0.2.0
 * @internal
 */
export const refuseAtCapacity = (ws: WebSocket, socket: Duplex): void => {
  ws.on("error", ignore)
  socket.write(encode(Message.error(503, "Server at capacity")))
  ws.close(1013, "Server at capacity")
  // Without waiting for the peer's close frame: at capacity, every descriptor freed early counts.
  socket.end()
}

/**
 * Whether a frame received before authentication (counted by the caller) is one too many: unauthenticated peers
 * get no rate limit, so a budget of their own bounds what they can make the server do.
 *
 * @since 0.2.0
 * @internal
 */
export const overPreAuthBudget = (hub: Hub, framesBeforeAuth: number): boolean =>
  framesBeforeAuth > hub.options.preAuthFrames

/**
 * The admission of a session that has just gone online.
 *
 * @since 0.2.0
 * @internal
 */
export const forSession = (hub: Hub, id: string, peer: Peer.Peer): RateLimit.Admission =>
  hub.rateLimit.admission({ id, peer })

/**
 * Forgets a session's bucket once the session has ended, in the server's context.
 *
 * @since 0.2.0
 * @internal
 */
export const release = (hub: Hub, admission: RateLimit.Admission): void => {
  if (!RateLimit.isUnlimited(admission)) hub.run(admission.release)
}
