/**
 * Presence frames the server builds (online / offline announcements and snapshots) and the sanitising of
 * presence frames sent by clients.
 *
 * @since 0.1.0
 */
import type * as Frame from "../protocol/Frame.js"
import { isObject, type Json } from "../protocol/Json.js"
import * as Peer from "../protocol/Peer.js"

/**
 * @since 0.1.0
 * @category constructors
 */
export const online = (peer: Peer.Peer): Frame.Presence => ({
  type: "presence",
  from: Peer.address(peer),
  data: { ...peer, online: true }
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const offline = (peer: Peer.Peer): Frame.Presence => ({
  type: "presence",
  from: Peer.address(peer),
  data: { ...peer, online: false }
})

/**
 * A client's presence `data` with the fields the server owns taken from its record of the peer: `id`, `user`,
 * `name`, `type` and `host` (the last two removed when the record has none), and `online` forced on. Nobody can
 * announce someone else, themselves offline, or another address. Other keys are kept.
 *
 * @since 0.1.0
 * @category combinators
 */
export const sanitizeData = (data: Json | undefined, peer: Peer.Peer): { readonly [key: string]: Json } => {
  const out: Record<string, Json> = isObject(data) ? { ...data } : {}
  out.id = peer.id
  out.user = peer.user
  out.name = peer.name ?? peer.user
  if (peer.type === undefined) delete out.type
  else out.type = peer.type
  if (peer.host === undefined) delete out.host
  else out.host = peer.host
  out.online = true
  return out
}
