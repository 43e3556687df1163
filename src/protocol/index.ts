/**
 * The Symple v4 protocol model: pure data and helpers, no I/O.
 *
 * @since 0.1.0
 */
export * as Address from "./Address.js"
export * as Call from "./Call.js"
export * as Form from "./Form.js"
export * as Frame from "./Frame.js"
export { FrameError } from "./FrameError.js"
export * as IceServer from "./IceServer.js"
export * as Json from "./Json.js"
export * as Message from "./Message.js"
export * as Peer from "./Peer.js"
