/**
 * Who may `join` which room: the application's say over dynamic rooms.
 *
 * The server applies its own rules first, and no policy can override them: nobody joins another user's personal
 * room, and names over `maxRoomNameLength` or joins beyond `maxRoomsPerPeer` are refused. A policy then decides
 * the rest. Pass `authorizeJoin` in the server options, or provide a policy (`JoinPolicy.layer(hook)`) to
 * `SympleServer.layerWithoutDefaults`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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
export class JoinPolicy extends Context.Service<JoinPolicy, {
  /** Never fails: `false` refuses the join (error 403 naming the room). */
  readonly authorizeJoin: (peer: Peer.Peer, room: string) => Effect.Effect<boolean>
}>()("symple/JoinPolicy") {}

const allowed = Effect.succeed(true)
const refused = Effect.succeed(false)

/**
 * A policy from a hook; without one, every join is allowed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (hook?: JoinHook | undefined): Context.Service.Shape<typeof JoinPolicy> =>
  JoinPolicy.of({
    authorizeJoin: hook === undefined ? () => allowed : (peer, room) => {
      // A hook that answers at once gets an answer that is already complete, which the server applies without a
      // fiber; only an effect that has to run takes the slow path.
      let answer: boolean | Effect.Effect<boolean, unknown>
      try {
        answer = hook(peer, room)
      } catch {
        return refused
      }
      if (typeof answer === "boolean") return answer ? allowed : refused
      if (Exit.isExit(answer)) return Exit.isSuccess(answer) && answer.value === true ? allowed : refused
      return Effect.catchCause(Effect.map(answer, (ok) => ok === true), () => refused)
    }
  })

/**
 * The policy of a server given none (no `authorizeJoin` hook and no policy of the application's): every join that
 * the `dynamicRooms` setting lets through is allowed. The one policy that does not turn dynamic rooms on in token
 * mode: any other (`make()` and `layerAllowAll` included) is the application's say over joins.
 *
 * @since 0.2.0
 * @category constructors
 */
export const noPolicy: Context.Service.Shape<typeof JoinPolicy> = JoinPolicy.of({ authorizeJoin: () => allowed })

/**
 * `make(hook)`, or `noPolicy` without a hook: the policy the server options describe.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromHook = (hook: JoinHook | undefined): Context.Service.Shape<typeof JoinPolicy> =>
  hook === undefined ? noPolicy : make(hook)

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
