/**
 * The lines `symple-ts console` prints: one per state change, peer coming or going, and frame received. Pure.
 * Lines about the console itself start with `*`, problems with `!`, peers coming and going with `+` and `-`.
 *
 * @since 0.2.0
 */
import type { ClientState } from "../client/ClientState.js"
import type * as Frame from "../protocol/Frame.js"
import type { Json } from "../protocol/Json.js"
import type * as Peer from "../protocol/Peer.js"

/**
 * `user|id` of a peer.
 *
 * @since 0.2.0
 * @category formatting
 */
export const address = (peer: Peer.Peer): string => `${peer.user}|${peer.id}`

/**
 * @since 0.2.0
 * @category formatting
 */
export const state = (value: ClientState, url: string): string => {
  switch (value._tag) {
    case "Closed":
      return "* closed"
    case "Connecting":
      return `* connecting to ${url}${value.attempt > 1 ? ` (attempt ${value.attempt})` : ""}`
    case "Authenticating":
      return "* authenticating"
    case "Online":
      return `* online as ${address(value.peer)}`
    case "Error":
      return `! ${value.message}${value.status === undefined ? "" : ` (status ${value.status})`}${
        value.retrying ? ", retrying" : ""
      }`
  }
}

/**
 * @since 0.2.0
 * @category formatting
 */
export const peerOnline = (peer: Peer.Peer): string =>
  `+ ${address(peer)} online${peer.name !== undefined && peer.name !== peer.user ? ` (${peer.name})` : ""}`

/**
 * @since 0.2.0
 * @category formatting
 */
export const peerOffline = (peer: Peer.Peer): string => `- ${address(peer)} offline`

/** `data.text` when it is a string, else the data as JSON; nothing for no data. */
const body = (data: Json | undefined): string => {
  if (data === undefined) return ""
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    const text = (data as { readonly text?: Json }).text
    if (typeof text === "string" && Object.keys(data).length === 1) return text
  }
  return JSON.stringify(data)
}

/** Where a frame was sent: a room (or rooms), everyone, or this peer alone. */
const scope = (to: Json | undefined): string => {
  if (to === undefined) return "[all]"
  if (Array.isArray(to)) return `[${to.map(String).join(",")}]`
  if (typeof to === "string" && !to.includes("|")) return `[${to}]`
  return "[direct]"
}

const from = (frame: Frame.Routed): string => frame.from ?? "?"

/**
 * @since 0.2.0
 * @category formatting
 */
export const message = (frame: Frame.Message): string =>
  `${scope(frame.to)} ${from(frame)}${
    frame.subtype !== undefined && frame.subtype !== "chat" ? ` (${frame.subtype})` : ""
  }: ${body(frame.data)}`

/**
 * An incoming command request.
 *
 * @since 0.2.0
 * @category formatting
 */
export const command = (frame: Frame.Command): string =>
  `command from ${from(frame)}: ${frame.node ?? ""} ${frame.action ?? "execute"}${
    frame.data === undefined ? "" : ` ${JSON.stringify(frame.data)}`
  }`

/**
 * @since 0.2.0
 * @category formatting
 */
export const event = (frame: Frame.Event): string =>
  `event from ${from(frame)}: ${frame.name ?? ""}${frame.data === undefined ? "" : ` ${JSON.stringify(frame.data)}`}`

/**
 * An `error` frame from the server.
 *
 * @since 0.2.0
 * @category formatting
 */
export const error = (frame: Frame.ErrorFrame): string =>
  `! error ${frame.status ?? "?"}: ${frame.message ?? "(no message)"}`

/**
 * The final reply to a `/cmd`.
 *
 * @since 0.2.0
 * @category formatting
 */
export const reply = (node: string, frame: Frame.Routed): string =>
  `reply ${frame.status ?? "?"} to ${node} from ${from(frame)}${
    frame.data === undefined ? "" : `: ${JSON.stringify(frame.data)}`
  }`

/**
 * The roster, for `/who`.
 *
 * @since 0.2.0
 * @category formatting
 */
export const who = (peers: ReadonlyArray<Peer.Peer>): ReadonlyArray<string> =>
  peers.length === 0
    ? ["* no other peer online"]
    : [
      `* ${peers.length} peer${peers.length === 1 ? "" : "s"} online:`,
      ...peers.map((peer) =>
        `  ${address(peer)}${peer.name !== undefined && peer.name !== peer.user ? ` (${peer.name})` : ""}`
      )
        .sort()
    ]
