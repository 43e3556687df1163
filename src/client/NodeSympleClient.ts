/**
 * The client on Node: the same client with the `ws` package as its WebSocket (Node 20 has no global one).
 * Kept apart from the platform-neutral modules so that browser bundles never see a Node import.
 *
 * @since 0.1.0
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
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
export const layerWebSocketConstructor = NodeSocket.layerWebSocketConstructor

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ClientOptions): Effect.Effect<SympleClient.SympleClient, never, Scope.Scope> =>
  SympleClient.make(options).pipe(Effect.provide(NodeSocket.layerWebSocketConstructor))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientOptions): Layer.Layer<SympleClient.SympleClient> =>
  SympleClient.layer(options).pipe(Layer.provide(NodeSocket.layerWebSocketConstructor))

/**
 * The Promise / callback client on Node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (options: ClientOptions): Facade.Client =>
  Facade.createClient(options, { webSocket: NodeSocket.layerWebSocketConstructor })
