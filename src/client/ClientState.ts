/**
 * The client's connection state machine, as the C++ client names it.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Peer from "../protocol/Peer.js"

/**
 * - `Closed`: not connected; either not started yet, closed by the user, or after a clean close (a server shutdown
 *   notice or close code 1000/1001) while a reconnection is pending.
 * - `Connecting`: opening the WebSocket (`attempt` counts the attempts since the client was last online).
 * - `Authenticating`: the socket is open and `auth` was sent.
 * - `Online`: `welcome` received; `peer` is this session.
 * - `Error`: the last connection failed; `retrying` tells whether another attempt will follow.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientState = Data.TaggedEnum<{
  Closed: {}
  Connecting: { readonly attempt: number }
  Authenticating: { readonly attempt: number }
  Online: { readonly peer: Peer.Peer }
  Error: { readonly message: string; readonly status: number | undefined; readonly retrying: boolean }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ClientState = Data.taggedEnum<ClientState>()

/**
 * @since 0.1.0
 * @category guards
 */
export const isOnline = ClientState.$is("Online")
