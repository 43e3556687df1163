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
import type { ClientOptions } from "./ClientConfig.js"
import * as Facade from "./Facade.js"
import * as SympleClient from "./SympleClient.js"

/**
 * The client's options on Node: those of every platform, plus TLS settings for `wss://` (a `wss://` URL, or
 * `secure: true` with `host` and `port`).
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeClientOptions extends ClientOptions {
  /**
   * The certificate authorities (PEM) that a `wss://` server's certificate must chain to, such as a private CA's
   * certificate. As with Node's `tls` option of the same name, they replace the well-known authorities for this
   * client's connections. Unset: the well-known authorities (and `NODE_EXTRA_CA_CERTS`).
   */
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor = NodeWS.layerWebSocketConstructor

const pem = (value: string | Uint8Array): string | Buffer =>
  typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)

/**
 * The `ws` WebSocket with TLS settings for `wss://` connections; without any, `layerWebSocketConstructor`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWebSocketConstructorTls = (
  tls: Pick<NodeClientOptions, "ca">
): Layer.Layer<Socket.WebSocketConstructor> => {
  if (tls.ca === undefined) return NodeWS.layerWebSocketConstructor
  const ca = typeof tls.ca === "string" || tls.ca instanceof Uint8Array ? [pem(tls.ca)] : tls.ca.map(pem)
  return Layer.succeed(Socket.WebSocketConstructor)((url, options) => {
    const { headers, protocols } = options === undefined || typeof options === "string" || Array.isArray(options)
      ? { headers: undefined, protocols: options }
      : options
    return new NodeWS.WebSocket(url, protocols, { ca, ...(headers === undefined ? {} : { headers }) })
  })
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NodeClientOptions): Effect.Effect<SympleClient.SympleClient, never, Scope.Scope> =>
  SympleClient.make(options).pipe(Effect.provide(layerWebSocketConstructorTls(options)))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: NodeClientOptions): Layer.Layer<SympleClient.SympleClient> =>
  SympleClient.layer(options).pipe(Layer.provide(layerWebSocketConstructorTls(options)))

/**
 * The Promise / callback client on Node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (options: NodeClientOptions): Facade.Client =>
  Facade.createClient(options, { webSocket: layerWebSocketConstructorTls(options) })
