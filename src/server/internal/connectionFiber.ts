/**
 * Owns the connection's fiber: one per connection, forked in the server's context when the connection is accepted,
 * alive as long as the connection, and stopped and awaited by the server when it stops (see `httpServer`). Waking a
 * fiber costs more than handling a frame, so frames never go through it: it sleeps, and wakes only to run what the
 * connection has to wait for (an authentication or join policy that runs effects, and the frames that waited behind
 * it), in the connection's place, until that is done or the connection ends. A defect in that work ends the
 * connection (logged in the server's context).
 *
 * Sleeping is the state of almost every fiber for almost all its life, so it is kept as small as a fiber can be: its
 * whole effect is one bare `Effect.callback` (no finalizer, nothing around it: nothing on the fiber's stack), which
 * is resumed with the work followed by the next sleep, or with nothing once the connection has ended. Nothing
 * observes a fiber from outside: the connection holds it, and the server finds it through its connections.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"

/** How to wake the sleeping fiber: resumes it with the effect it goes on with. */
type Wake = (next: Effect.Effect<void>) => void

/** What the fiber does while it is awake: its work's stop, and the work handed to it meanwhile. */
class Busy {
  /** Work handed to the fiber while it was busy: it runs next. */
  work: Effect.Effect<void> | undefined = undefined
  /** Stops the work the fiber runs (the connection has ended). */
  stop: (() => void) | undefined = undefined
}

/**
 * The connection as its fiber sees it (fields of the connection object: no closures of its own while it sleeps).
 *
 * @since 0.2.0
 * @internal
 */
export interface Sleeper {
  /** The connection has been torn down. */
  readonly done: boolean
  /**
   * The fiber's side, one field: how to wake it while it sleeps, what it is busy with while it is awake; `undefined`
   * once it has ended.
   */
  fiberState: Wake | Busy | undefined
  /** A defect in the fiber's work: ends the connection, logged in the server's context. */
  readonly failed: (defect: unknown) => void
}

/**
 * Hands work to the fiber: at once if it sleeps, next if it is busy; dropped once the connection has ended.
 *
 * @since 0.2.0
 * @internal
 */
export const schedule = (connection: Sleeper, work: Effect.Effect<void>): void => {
  if (connection.done) return
  const state = connection.fiberState
  if (typeof state === "function") {
    const busy = new Busy()
    connection.fiberState = busy
    return state(run(connection, busy, work))
  }
  const busy = state ?? (connection.fiberState = new Busy())
  busy.work = work
}

/**
 * The connection has ended: the fiber ends too, and what it was running for the connection stops.
 *
 * @since 0.2.0
 * @internal
 */
export const finish = (connection: Sleeper): void => {
  const state = connection.fiberState
  connection.fiberState = undefined
  if (typeof state === "function") return state(Effect.void)
  if (state === undefined) return
  const stop = state.stop
  state.stop = undefined
  stop?.()
}

/**
 * The fiber's life, and its sleep: one bare callback, woken by `schedule` (work, then sleep again) or `finish` (the
 * fiber ends). Never fails.
 *
 * @since 0.2.0
 * @internal
 */
export const live = (connection: Sleeper): Effect.Effect<void> =>
  // One parameter only: a callback that takes a second (the abort signal) gets an AbortController and a finalizer.
  Effect.callback<void>((resume) => {
    if (connection.done) return resume(Effect.void)
    const state = connection.fiberState
    if (state instanceof Busy && state.work !== undefined) {
      const work = state.work
      state.work = undefined
      return resume(run(connection, state, work))
    }
    connection.fiberState = resume
  })

/**
 * Runs a piece of work until it is done or the connection ends, whichever comes first, then sleeps again. A defect
 * of the work ends the connection.
 */
const run = (connection: Sleeper, busy: Busy, work: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.raceFirst(
      Effect.catchDefect(work, (defect) => Effect.sync(() => connection.failed(defect))),
      Effect.callback<void>((resume) => {
        if (connection.done) return resume(Effect.void)
        busy.stop = () => resume(Effect.void)
        return Effect.sync(() => void (busy.stop = undefined))
      })
    ),
    () => live(connection)
  )
