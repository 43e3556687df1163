/**
 * Token sessions stored in Redis the way the JavaScript Symple server reads them, so that applications that write
 * them (e.g. the Ruby emitter) keep working: `GET symple:session:<token>` must hold a JSON object, whose fields
 * (`user`, `name`, anything else) are the peer's, and whose `rooms`, when present, are the rooms the peer starts
 * in (the client's `auth.rooms` otherwise). The server uses it in token mode when `redis` is set and no
 * `authenticate` hook is given.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createClient } from "redis"
import type { Json } from "../protocol/Json.js"
import * as Authenticator from "../server/Authenticator.js"

/**
 * The key of a token's session.
 *
 * @since 0.2.0
 * @category names
 */
export const sessionKey = (token: string): string => `symple:session:${token}`

const isObject = (value: unknown): value is { readonly [key: string]: Json } =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const fail = (message: string) =>
  Effect.fail(new Authenticator.AuthError({ message: `Authentication failed: ${message}` }))

/**
 * The authentication hook that reads sessions with `get` (a Redis `GET`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const hook = (get: (key: string) => Promise<string | null>): Authenticator.AuthHook => (_peer, auth) =>
  Effect.flatMap(
    Effect.tryPromise({ try: () => get(sessionKey(auth.token ?? "")), catch: (cause) => cause }).pipe(
      Effect.catch((cause) => fail(`Redis error: ${cause instanceof Error ? cause.message : String(cause)}`))
    ),
    (text) => {
      if (text === null) return fail("No session")
      let session: unknown
      try {
        session = JSON.parse(text)
      } catch {
        return fail("Session must be an object")
      }
      if (!isObject(session)) return fail("Session must be an object")
      const { rooms, ...fields } = session
      const granted = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === "string") : undefined
      return Effect.succeed<Authenticator.AuthDecision>({
        allowed: true,
        peer: fields,
        ...(granted === undefined ? { honourRooms: true } : { rooms: granted, honourRooms: false })
      })
    }
  )

/**
 * The token-mode `Authenticator` on sessions stored in the Redis at `url`. Its connection is opened at the first
 * `auth` and closed with the layer; while Redis is unreachable, peers are refused with a 401 that says so.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: { readonly url: string }): Layer.Layer<Authenticator.Authenticator> =>
  Layer.effect(
    Authenticator.Authenticator,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          let ready = false
          const client = createClient({
            url: options.url,
            disableOfflineQueue: true,
            socket: {
              // A first connection that fails is tried again at the next `auth`; once in, the client keeps trying.
              reconnectStrategy: (retries, cause) => ready ? Math.min(50 * 2 ** retries, 1000) : cause,
              connectTimeout: 5000
            }
          })
          client.on("error", () => {})
          client.on("ready", () => {
            ready = true
          })
          return { client, connecting: undefined as Promise<unknown> | undefined }
        }),
        ({ client }) => Effect.sync(() => client.isOpen && client.destroy())
      ),
      (held) =>
        Authenticator.make({
          authentication: true,
          authenticate: hook(async (key) => {
            held.connecting ??= held.client.connect().catch((cause) => {
              held.connecting = undefined
              throw cause
            })
            await held.connecting
            return held.client.get(key)
          })
        })
    )
  )
