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
 * The client's options on Node: those of every platform, plus TLS settings for `wss://` (a `wss://` URL, or
 * `secure: true` with `host` and `port`).
 *
 * @since 0.2.0
 * @category models
 */
export interface NodeClientOptions extends ClientConfig.ClientOptions {
  /**
   * The certificate authorities (PEM) that a `wss://` server's certificate must chain to, such as a private CA's
   * certificate. As with Node's `tls` option of the same name, they replace the well-known authorities for this
   * client's connections. Unset: the well-known authorities (and `NODE_EXTRA_CA_CERTS`).
   */
  readonly ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array> | undefined
}

const pem = (value: string | Uint8Array): string | Buffer =>
  typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)

/**
 * `ws` sockets with settings of their own: `maxPayload` refuses frames over that many bytes as soon as a frame's
 * header announces one, before buffering it (the client then ends the connection with `ConnectionLost` reason
 * `TooLarge`); `ca` is the certificate authorities a `wss://` server must chain to (see `NodeClientOptions.ca`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWebSocketConstructorWith = (settings: {
  readonly maxPayload?: number | undefined
  readonly ca?: NodeClientOptions["ca"]
}): Layer.Layer<Socket.WebSocketConstructor> => {
  const ca = settings.ca === undefined
    ? undefined
    : typeof settings.ca === "string" || settings.ca instanceof Uint8Array
    ? [pem(settings.ca)]
    : settings.ca.map(pem)
  const base = {
    ...(settings.maxPayload === undefined ? {} : { maxPayload: settings.maxPayload }),
    ...(ca === undefined ? {} : { ca })
  }
  return Layer.succeed(Socket.WebSocketConstructor)((url, options) => {
    if (options === undefined || typeof options === "string" || Array.isArray(options)) {
      return new NodeWS.WebSocket(url, options, base)
    }
    return new NodeWS.WebSocket(url, options.protocols, {
      ...base,
      ...(options.headers === undefined ? {} : { headers: options.headers })
    })
  })
}

/**
 * `ws` sockets that refuse frames over `maxPayload` bytes as soon as a frame's header announces one, before
 * buffering it (the client then ends the connection with `ConnectionLost` reason `TooLarge`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWebSocketConstructorLimited = (maxPayload: number): Layer.Layer<Socket.WebSocketConstructor> =>
  layerWebSocketConstructorWith({ maxPayload })

/** The client's `maxFrameSize` enforced by the socket itself (0: `ws`'s own limit), and its `ca`. */
const constructorFor = (options: NodeClientOptions): Layer.Layer<Socket.WebSocketConstructor> => {
  const limit = ClientConfig.resolve(options).maxFrameSize
  return limit <= 0 && options.ca === undefined
    ? NodeWS.layerWebSocketConstructor
    : layerWebSocketConstructorWith({ maxPayload: limit > 0 ? limit : undefined, ca: options.ca })
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: NodeClientOptions
): Effect.Effect<SympleClient.SympleClient, never, Scope.Scope> =>
  SympleClient.make(options).pipe(Effect.provide(constructorFor(options)))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: NodeClientOptions): Layer.Layer<SympleClient.SympleClient> =>
  SympleClient.layer(options).pipe(Layer.provide(constructorFor(options)))

/**
 * The Promise / callback client on Node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createClient = (options: NodeClientOptions): Facade.Client =>
  Facade.createClient(options, { webSocket: constructorFor(options) })
