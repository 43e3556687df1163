/**
 * Who may `join` which room: the application's say over dynamic rooms.
 *
 * The server applies its own rules first, and no policy can override them: nobody joins another user's personal
 * room, and names over `maxRoomNameLength` or joins beyond `maxRoomsPerPeer` are refused. A policy then decides
 * the rest. Provide one with `Layer.provide(JoinPolicy.layer(hook))`, or pass `authorizeJoin` in the server options.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Peer from "../protocol/Peer.js"

/**
 * Decides whether `peer` may join `room`. A failure or defect refuses the join.
 *
 * @since 0.1.0
 * @category models
 */
export type JoinHook = (peer: Peer.Peer, room: string) => boolean | Effect.Effect<boolean, unknown>

/**
 * @since 0.1.0
 * @category tags
 */
export class JoinPolicy extends Context.Tag("symple/server/JoinPolicy")<JoinPolicy, {
  /** Never fails: `false` refuses the join (error 403 naming the room). */
  readonly authorizeJoin: (peer: Peer.Peer, room: string) => Effect.Effect<boolean>
}>() {}

const allowed = Effect.succeed(true)

/**
 * A policy from a hook; without one, every join is allowed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (hook?: JoinHook | undefined): Context.Tag.Service<JoinPolicy> =>
  JoinPolicy.of({
    authorizeJoin: hook === undefined ? () => allowed : (peer, room) => {
      const decision = Effect.suspend(() => {
        const answer = hook(peer, room)
        return typeof answer === "boolean" ? Effect.succeed(answer) : answer
      })
      return Effect.catchAllCause(Effect.map(decision, (ok) => ok === true), () => Effect.succeed(false))
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (hook: JoinHook): Layer.Layer<JoinPolicy> => Layer.succeed(JoinPolicy, make(hook))

/**
 * Every join is allowed (the server's own rules still apply). Providing it turns dynamic rooms on in token mode.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAllowAll: Layer.Layer<JoinPolicy> = Layer.succeed(JoinPolicy, make())
