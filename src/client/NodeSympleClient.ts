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
import type { ClientOptions } from "./ClientConfig.js"
import * as Facade from "./Facade.js"
import * as SympleClient from "./SympleClient.js"

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor = NodeWS.layerWebSocketConstructor

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ClientOptions): Effect.Effect<SympleClient.SympleClient, never, Scope.Scope> =>
  SympleClient.make(options).pipe(Effect.provide(NodeWS.layerWebSocketConstructor))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientOptions): Layer.Layer<SympleClient.SympleClient> =>
  SympleClient.layer(options).pipe(Layer.provide(NodeWS.layerWebSocketConstructor))

/**
 * The Promise / callback client on Node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (options: ClientOptions): Facade.Client =>
  Facade.createClient(options, { webSocket: NodeWS.layerWebSocketConstructor })
