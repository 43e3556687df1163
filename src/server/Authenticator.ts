/**
 * Who may connect: anonymous by default, token mode through a user hook.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Frame from "../protocol/Frame.js"
import type { Json } from "../protocol/Json.js"
import * as Peer from "../protocol/Peer.js"

/**
 * What an authentication hook decides.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthDecision {
  readonly allowed: boolean
  /** Rooms to add after the personal room (and after `auth.rooms` when those are honoured). */
  readonly rooms?: ReadonlyArray<string> | undefined
  /** Fields merged over the peer (`user`, `name`, anything else); `id` and `online` stay the server's. */
  readonly peer?: { readonly [key: string]: Json } | undefined
  /** The 401 message when refused; `"Authentication failed"` otherwise. */
  readonly message?: string | undefined
  /**
   * Whether the client's `auth.rooms` are joined, in token mode. Defaults to "when the hook gives no rooms".
   * In anonymous mode they always are.
   */
  readonly honourRooms?: boolean | undefined
}

/**
 * Called with the peer the server is about to register (no token in it) and the `auth` frame (token included).
 * A failure or defect refuses the peer with a 401 whose message is the error's message when it has one.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthHook = (peer: Peer.Peer, auth: Frame.Auth) => Effect.Effect<AuthDecision, unknown>

/**
 * An authenticated peer and the rooms it starts in (personal room first).
 *
 * @since 0.1.0
 * @category models
 */
export interface Accepted {
  readonly peer: Peer.Peer
  readonly rooms: ReadonlyArray<string>
}

/**
 * A refused `auth`, answered with `error 401` on the wire; the socket stays open.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthError extends Data.TaggedError("AuthError")<{ readonly message: string }> {
  get status(): number {
    return 401
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Connecting {
  /** The session id the server chose. */
  readonly id: string
  /** The remote address of the socket, if known. */
  readonly host: string | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Authenticator extends Context.Service<Authenticator, {
  readonly authenticate: (auth: Frame.Auth, connecting: Connecting) => Effect.Effect<Accepted, AuthError>
}>()("symple/Authenticator") {}

const ignoredDataKeys = new Set([...Peer.reservedKeys, "host", "token"])

/**
 * The peer object announced for an `auth`: identity fields, `type: "Peer"`, the non-reserved keys of
 * `auth.data`, and the host. Never the token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const peerFromAuth = (auth: Frame.Auth, connecting: Connecting): Peer.Peer => {
  const name = auth.name !== undefined && auth.name !== "" ? auth.name : auth.user
  // The usual peer in one literal, which holds its six fields in the object itself: a field added later goes to a
  // property array of its own (40 bytes more for every session).
  if (auth.data === undefined && connecting.host !== undefined) {
    const host = connecting.host
    return { id: connecting.id, user: auth.user, name, type: "Peer", online: true, host } as Peer.Peer
  }
  const peer: Record<string, Json> = { id: connecting.id, user: auth.user, name, type: "Peer", online: true }
  if (auth.data !== undefined) {
    for (const [key, value] of Object.entries(auth.data)) if (!ignoredDataKeys.has(key)) peer[key] = value
  }
  if (connecting.host !== undefined) peer.host = connecting.host
  return peer as Peer.Peer
}

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  if (typeof failure === "string" && failure !== "") return failure
  if (failure instanceof Error && !Cause.hasInterruptsOnly(cause) && failure.message !== "") return failure.message
  if (typeof failure === "object" && failure !== null && "message" in failure && typeof failure.message === "string") {
    return failure.message
  }
  return "Authentication failed"
}

const applyOverrides = (peer: Peer.Peer, overrides: { readonly [key: string]: Json } | undefined): Peer.Peer => {
  if (overrides === undefined) return peer
  const out: Record<string, Json> = { ...peer }
  for (const [key, value] of Object.entries(overrides)) {
    if (key === "id" || key === "online" || key === "token") continue
    if ((key === "user" || key === "name") && (typeof value !== "string" || value === "")) continue
    out[key] = value
  }
  return out as Peer.Peer
}

const stringRooms = (rooms: ReadonlyArray<unknown> | undefined): ReadonlyArray<string> =>
  rooms === undefined ? [] : rooms.filter((room): room is string => typeof room === "string" && room !== "")

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly authentication: boolean
  readonly authenticate?: AuthHook | undefined
}): Context.Service.Shape<typeof Authenticator> => {
  const hook = options.authenticate
  const accept = (peer: Peer.Peer, rooms: ReadonlyArray<string>): Accepted => ({
    peer,
    rooms: [peer.user, ...rooms.filter((room) => room !== peer.user)].filter((room, i, all) => all.indexOf(room) === i)
  })
  return Authenticator.of({
    authenticate: (auth, connecting) => {
      const peer = peerFromAuth(auth, connecting)
      if (options.authentication && (auth.token === undefined || auth.token === "")) {
        return Effect.fail(new AuthError({ message: "Authentication failed: Missing token" }))
      }
      if (hook === undefined) {
        return options.authentication
          ? Effect.fail(new AuthError({ message: "Authentication failed" }))
          : Effect.succeed(accept(peer, stringRooms(auth.rooms)))
      }
      return Effect.suspend(() => hook(peer, auth)).pipe(
        Effect.catchCause((cause) => Effect.fail(new AuthError({ message: messageOf(cause) }))),
        Effect.flatMap((decision) => {
          if (decision.allowed !== true) {
            return Effect.fail(new AuthError({ message: decision.message ?? "Authentication failed" }))
          }
          const honour = !options.authentication || (decision.honourRooms ?? decision.rooms === undefined)
          return Effect.succeed(accept(
            applyOverrides(peer, decision.peer),
            [...(honour ? stringRooms(auth.rooms) : []), ...stringRooms(decision.rooms)]
          ))
        })
      )
    }
  })
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Parameters<typeof make>[0]): Layer.Layer<Authenticator> =>
  Layer.succeed(Authenticator, make(options))

/**
 * Everyone with a `user` is welcome.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAnonymous: Layer.Layer<Authenticator> = layer({ authentication: false })
