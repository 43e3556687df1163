/**
 * Owns the handshake: the frames of a connection before it is registered. The first must be a valid `auth` (within
 * the pre-authentication budget and the room limits); the Authenticator decides (at once, or in the connection's
 * fiber when it runs effects, bounded by the handshake's deadline); refusals are answered after
 * `authFailureDelay`, the last allowed one with a close. An accepted peer is registered: welcome and presence
 * snapshot first, then its online presence to the peers sharing a room with it, then the `PeerConnected` event; or,
 * when its `auth` offers the token of a session it may resume, it takes that session over (see `resume`), from
 * another node if the session is there.
 *
 * @since 0.2.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import * as Frame from "../../protocol/Frame.js"
import * as Json from "../../protocol/Json.js"
import type * as Authenticator from "../Authenticator.js"
import type * as PeerRegistry from "../PeerRegistry.js"
import { ServerEvent } from "../ServerEvent.js"
import * as State from "../State.js"
import * as Admission from "./admission.js"
import type { Connection } from "./connection.js"
import { add } from "./counters.js"
import * as Dispatch from "./dispatch.js"
import { deliver, evicted, onlinePresence, onlinePresenceBytes, toSessions } from "./fanOut.js"
import type { Hub } from "./hub.js"
import type { Outcome, Pending } from "./inbound.js"
import { answer, badRequest, refuse, reply } from "./reply.js"
import * as Resume from "./resume.js"

/** An effect that is already its result (what `Effect.succeed` and `Effect.fail` return). */
const isExit = <A, E>(effect: Effect.Effect<A, E>): effect is Exit.Exit<A, E> => Exit.isExit(effect)

/**
 * One frame before registration: it must be a valid `auth`; the deadline keeps running across failed attempts.
 * Returns a `Pending` when the authenticator has to run effects (only the connection's fiber can wait for them).
 *
 * @since 0.2.0
 * @internal
 */
export const handshake = (hub: Hub, connection: Connection, item: string | Uint8Array): Outcome | Pending => {
  if (Admission.overPreAuthBudget(hub, connection.countPreAuth())) {
    return refuse(hub, connection, 429, "Too many frames before authentication", 1008)
  }
  const parsed = Frame.parse(item)
  const value = Result.isSuccess(parsed) ? parsed.success : undefined
  add(hub.stats.framesIn, Json.isObject(value) && value.type === "auth" ? "auth" : "invalid")
  if (Result.isFailure(parsed)) return badRequest(hub, connection, parsed.failure.message)
  if (!Json.isObject(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`
    return badRequest(hub, connection, `Expected a JSON object, got ${kind}`)
  }
  if (value.type !== "auth") return refuse(hub, connection, 401, "Not authenticated", 1008)
  if (typeof value.user !== "string" || value.user === "") return authFailure(hub, connection, "Missing user field")
  const decoded = Frame.decodeParsed(value)
  if (Result.isFailure(decoded)) return badRequest(hub, connection, authProblem(value, decoded.failure.message))
  const auth = decoded.success as Frame.Auth
  const rooms = authRoomsProblem(hub.options, auth)
  if (rooms !== undefined) return badRequest(hub, connection, rooms)
  const token = Resume.offered(value)
  const attempt = hub.authenticator.authenticate(auth, { id: connection.id, host: connection.host })
  // The built-in check answers at once (a plain success or failure): no fiber and no effect steps for it.
  if (isExit(attempt)) {
    if (Exit.isSuccess(attempt)) return register(hub, connection, attempt.value, token)
    const failure = Cause.findErrorOption(attempt.cause)
    if (Option.isSome(failure)) return authFailure(hub, connection, failure.value.message)
  }
  const authenticate = Effect.result(attempt)
  // An authentication that hangs must not outlive the handshake's deadline.
  const decision = Effect.timeoutOption(
    authenticate,
    Math.max(0, connection.openedAt + hub.options.authTimeoutMillis - Date.now())
  )
  return {
    pending: Effect.flatMap(decision, (decision): Effect.Effect<Outcome> => {
      // The peer may have gone (or been refused) while the hook was deciding: nothing is left to register.
      if (connection.ended()) return Effect.succeed(undefined)
      if (Option.isNone(decision)) return Effect.succeed(refuse(hub, connection, 408, "Authentication timeout", 1008))
      const outcome = decision.value
      if (Result.isFailure(outcome)) return delayedAuthFailure(hub, connection, outcome.failure.message)
      return Effect.suspend(() => {
        const registered = register(hub, connection, outcome.success, token)
        return registered === undefined || registered === "closing" ? Effect.succeed(registered) : registered.pending
      })
    })
  }
}

/**
 * A validation problem of an `auth` frame, in words that never quote the peer's token: the validator names the
 * value it refused, so a token of the wrong type is described, and any other problem is found on a copy without it.
 */
const authProblem = (value: Json.JsonObject, message: string): string => {
  if (!Object.hasOwn(value, "token")) return message
  if (typeof value.token !== "string") return "Invalid auth frame: \"token\": Expected string"
  const redacted = Frame.decodeParsed({ ...value, token: "" })
  return Result.isFailure(redacted) ? redacted.failure.message : "Invalid auth frame"
}

/** `auth.rooms` within the room limits (hook-granted rooms are the application's own business). */
const authRoomsProblem = (options: Hub["options"], auth: Frame.Auth): string | undefined => {
  if (auth.rooms === undefined) return undefined
  const rooms = new Set<string>([auth.user])
  for (const room of auth.rooms) {
    if (typeof room !== "string" || room === "") continue
    if (Buffer.byteLength(room) > options.maxRoomNameLength) {
      return `Invalid auth frame: room name over ${options.maxRoomNameLength} bytes`
    }
    rooms.add(room)
  }
  return rooms.size > options.maxRoomsPerPeer
    ? `Invalid auth frame: more than ${options.maxRoomsPerPeer} rooms`
    : undefined
}

/**
 * A refused `auth` (401). The answer is held back by `authFailureDelay` (what the peer sends meanwhile waits), and
 * the last failure a connection is allowed also closes it: guessing tokens costs time and connections.
 */
const authFailure = (hub: Hub, connection: Connection, message: string): Outcome | Pending =>
  hub.options.authFailureDelayMillis > 0
    ? { pending: delayedAuthFailure(hub, connection, message) }
    : rejectAuth(hub, connection, message)

const delayedAuthFailure = (hub: Hub, connection: Connection, message: string): Effect.Effect<Outcome> =>
  Effect.delay(Effect.sync(() => rejectAuth(hub, connection, message)), hub.options.authFailureDelayMillis)

const rejectAuth = (hub: Hub, connection: Connection, message: string): Outcome => {
  if (connection.ended()) return undefined
  const max = hub.options.maxAuthFailures
  return max > 0 && connection.countAuthFailure() >= max
    ? refuse(hub, connection, 401, message, 1008)
    : answer(hub, connection, 401, message)
}

/**
 * Registers the peer: welcome and snapshot first, then its online presence to the others. An `auth` offering the
 * `token` of a detached session of the same user resumes that session instead, or, when the session is another
 * node's, asks that node for it (the connection waits, bounded); any other token, or a refusal, gives a new
 * session (`resumed: false`).
 */
const register = (
  hub: Hub,
  connection: Connection,
  accepted: Authenticator.Accepted,
  token: string | undefined
): Outcome | Pending => {
  if (token === undefined) return registerNew(hub, connection, accepted, token)
  const held = Resume.claim(hub, token, accepted.peer.user)
  if (held !== undefined) {
    Resume.resume(hub, connection, held)
    return undefined
  }
  const away = Resume.remote(hub, connection, token, accepted.peer.user)
  if (away === undefined) return registerNew(hub, connection, accepted, token)
  return {
    pending: Effect.map(away, (resumed) => resumed ? undefined : registerNew(hub, connection, accepted, token))
  }
}

/** A new session (see `register`). */
const registerNew = (
  hub: Hub,
  connection: Connection,
  accepted: Authenticator.Accepted,
  token: string | undefined
): Outcome => {
  if (connection.ended()) return undefined
  const { id } = connection
  const peer = accepted.peer
  const online = Dispatch.online(hub, id, accepted, Resume.newSecret(hub))
  const member = connection.member(peer.user)
  // The peers sharing a room with the newcomer, as `announce` found them in the state it returns.
  let found: ReadonlyArray<State.Session<PeerRegistry.Handle>> = []
  const joined = hub.runNow(hub.registry.connect(member, peer, accepted.rooms, {
    // The rooms the session is in: another user's personal room is never joined, whoever asked for it.
    announce: (neighbours, session) => {
      found = neighbours
      reply(connection, Resume.welcome(hub, online, session.rooms, token === undefined ? undefined : false))
      for (const other of neighbours) connection.offer(onlinePresenceBytes(hub, other.peer))
      add(hub.stats.framesOut, "presence", neighbours.length)
    },
    // Only an authenticated user name owns its room: in anonymous mode anyone may call themselves anything, and
    // claiming would let them empty any room by taking its name.
    claimPersonalRoom: hub.options.authentication,
    evicted: evicted(hub.stats)
  }))
  // Session ids are random and never reused: a clash is a bug, and costs this connection only.
  if (joined === undefined) {
    Admission.release(hub, online.admission)
    return refuse(hub, connection, 500, "Session id in use", 1011)
  }
  connection.goOnline(online)
  // Encoded (and cached) only when someone is to be told: a peer alone in its rooms costs no presence bytes.
  if (found.length > 0) {
    const presence = onlinePresence(hub, peer)
    deliver(hub.stats, toSessions(found), presence.bytes, presence.frame)
  }
  // The events hub is unbounded: offering never waits.
  PubSub.publishUnsafe(
    hub.events,
    ServerEvent.PeerConnected({ peer, rooms: State.session(joined, id)?.rooms ?? [], virtual: false })
  )
  return undefined
}
