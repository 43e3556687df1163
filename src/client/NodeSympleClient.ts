/**
 * The client on Node: the same client with the `ws` package as its WebSocket. Node 22's global WebSocket would work
 * too (`NodeWS.layerWebSocketConstructor` of `@effect/platform-node` is that one), but it cannot pause reading,
 * so a client that falls behind would buffer without bound; with `ws` the socket stops reading past a high-water
 * mark (`Socket.fromWebSocket`). Kept apart from the platform-neutral modules so that browser bundles never see a
 * Node import.
 *
 * @since 0.1.0
 */
import * as NodeWS from "@effect/platform-node/NodeWS"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as ClientConfig from "./ClientConfig.js"
import * as Facade from "./Facade.js"
import * as SympleClient from "./SympleClient.js"

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor = NodeWS.layerWebSocketConstructor

/**
 * `ws` sockets that refuse frames over `maxPayload` bytes as soon as a frame's header announces one, before
 * buffering it (the client then ends the connection with `ConnectionLost` reason `TooLarge`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWebSocketConstructorLimited = (maxPayload: number): Layer.Layer<Socket.WebSocketConstructor> =>
  Layer.succeed(Socket.WebSocketConstructor)((url, options) => {
    if (options === undefined || typeof options === "string" || Array.isArray(options)) {
      return new NodeWS.WebSocket(url, options, { maxPayload })
    }
    return new NodeWS.WebSocket(url, options.protocols, { maxPayload, headers: options.headers })
  })

/** The client's `maxFrameSize` enforced by the socket itself (0: `ws`'s own limit). */
const constructorFor = (options: ClientConfig.ClientOptions): Layer.Layer<Socket.WebSocketConstructor> => {
  const limit = ClientConfig.resolve(options).maxFrameSize
  return limit > 0 ? layerWebSocketConstructorLimited(limit) : NodeWS.layerWebSocketConstructor
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ClientConfig.ClientOptions
): Effect.Effect<SympleClient.SympleClient, never, Scope.Scope> =>
  SympleClient.make(options).pipe(Effect.provide(constructorFor(options)))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientConfig.ClientOptions): Layer.Layer<SympleClient.SympleClient> =>
  SympleClient.layer(options).pipe(Layer.provide(constructorFor(options)))

/**
 * The Promise / callback client on Node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (options: ClientConfig.ClientOptions): Facade.Client =>
  Facade.createClient(options, { webSocket: constructorFor(options) })
