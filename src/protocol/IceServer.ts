/**
 * ICE servers (STUN and TURN) as the server hands them to its clients, in the shape of the W3C `RTCIceServer`
 * dictionary, so that a list can be given to an `RTCPeerConnection` (a browser's, or werift's) as it is.
 *
 * On the wire they travel in the `welcome` frame's `iceServers` extension field (clients that do not know it ignore
 * it) and in the body of the server's `GET /ice` answer. Pure data, no I/O.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"

/**
 * One STUN or TURN server (or several URLs of one): `urls` as `stun:`, `turn:` or `turns:` URLs, and for TURN the
 * `username` / `credential` pair to authenticate with.
 *
 * @since 0.2.0
 * @category schemas
 */
export const IceServer = Schema.Struct({
  urls: Schema.Union([Schema.String, Schema.Array(Schema.String)]),
  username: Schema.optionalKey(Schema.String),
  credential: Schema.optionalKey(Schema.String)
}).annotate({ identifier: "IceServer" })

/**
 * @since 0.2.0
 * @category models
 */
export type IceServer = typeof IceServer.Type

/**
 * The `GET /ice` answer: the ICE servers for the authenticated user, and how many seconds minted credentials stay
 * valid (absent when there are none).
 *
 * @since 0.2.0
 * @category schemas
 */
export const IceConfiguration = Schema.Struct({
  iceServers: Schema.Array(IceServer),
  ttl: Schema.optionalKey(Schema.Number)
}).annotate({ identifier: "IceConfiguration" })

/**
 * @since 0.2.0
 * @category models
 */
export type IceConfiguration = typeof IceConfiguration.Type
