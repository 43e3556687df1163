/**
 * The Symple client, platform-neutral (browser and Node). On Node, `NodeSympleClient` supplies the `ws`
 * WebSocket constructor.
 *
 * @since 0.1.0
 */
export * as ClientConfig from "./ClientConfig.js"
export { AuthRefused, ClientClosed, ConnectionLost, RequestError } from "./ClientError.js"
export { ClientState } from "./ClientState.js"
export * as Facade from "./Facade.js"
export { createClient } from "./Facade.js"
export * as Roster from "./Roster.js"
export * as SympleClient from "./SympleClient.js"
