/**
 * What the server tells the application about its peers (`SympleServer.events`).
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import type * as Peer from "../protocol/Peer.js"

/**
 * @since 0.1.0
 * @category models
 */
export type ServerEvent = Data.TaggedEnum<{
  PeerConnected: { readonly peer: Peer.Peer; readonly rooms: ReadonlyArray<string>; readonly virtual: boolean }
  PeerDisconnected: { readonly peer: Peer.Peer; readonly virtual: boolean }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ServerEvent = Data.taggedEnum<ServerEvent>()
