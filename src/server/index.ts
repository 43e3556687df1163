/**
 * The Symple v4 server (`symple-ts/server`).
 *
 * @since 0.1.0
 */
export * as Authenticator from "./Authenticator.js"
export * as IceServers from "./IceServers.js"
export * as JoinPolicy from "./JoinPolicy.js"
export * as PeerRegistry from "./PeerRegistry.js"
export * as Presence from "./Presence.js"
export * as RateLimit from "./RateLimit.js"
export * as Router from "./Router.js"
export * as ServerConfig from "./ServerConfig.js"
export * as State from "./State.js"
export * from "./SympleServer.js"
