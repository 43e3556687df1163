/**
 * The client for Node (`symple-ts/client/node`): everything of `symple-ts/client`, plus the `ws`-backed
 * constructors.
 *
 * @since 0.1.0
 */
export * from "./index.js"
export * as NodeSympleClient from "./NodeSympleClient.js"
/**
 * The Promise / callback client with the `ws` WebSocket.
 *
 * @since 0.1.0
 */
export { createClient } from "./NodeSympleClient.js"
