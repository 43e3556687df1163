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

/**
 * The connection as its fiber sees it (fields of the connection object: no closures of its own while it sleeps).
 *
 * @since 0.2.0
 * @internal
 */
export interface Sleeper {
  /** The connection has been torn down. */
  readonly done: boolean
  /** The fiber sleeps: resumes it with the effect it goes on with. */
  wake: ((next: Effect.Effect<void>) => void) | undefined
  /** Work handed to the fiber while it was busy: it runs next. */
  work: Effect.Effect<void> | undefined
  /** The fiber runs work: stops it (the connection has ended). */
  stop: (() => void) | undefined
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
  const wake = connection.wake
  if (wake === undefined) {
    connection.work = work
    return
  }
  connection.wake = undefined
  wake(busy(connection, work))
}

/**
 * The connection has ended: the fiber ends too, and what it was running for the connection stops.
 *
 * @since 0.2.0
 * @internal
 */
export const finish = (connection: Sleeper): void => {
  const wake = connection.wake
  connection.wake = undefined
  if (wake !== undefined) return wake(Effect.void)
  const stop = connection.stop
  connection.stop = undefined
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
    const work = connection.work
    if (work !== undefined) {
      connection.work = undefined
      return resume(busy(connection, work))
    }
    connection.wake = resume
  })

/**
 * Runs a piece of work until it is done or the connection ends, whichever comes first, then sleeps again. A defect
 * of the work ends the connection.
 */
const busy = (connection: Sleeper, work: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.raceFirst(
      Effect.catchDefect(work, (defect) => Effect.sync(() => connection.failed(defect))),
      Effect.callback<void>((resume) => {
        if (connection.done) return resume(Effect.void)
        connection.stop = () => resume(Effect.void)
        return Effect.sync(() => void (connection.stop = undefined))
      })
    ),
    () => live(connection)
  )
