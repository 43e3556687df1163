/**
 * Owns the connection's fiber: one per connection, supervised by the server, alive as long as the connection.
 * Waking a fiber costs more than handling a frame, so frames never go through it: it sleeps in one bare
 * `Effect.callback` (also the cheapest fiber to start and to keep), and wakes only to run what the connection has to
 * wait for (an authentication or join policy that runs effects, and the frames that waited behind it), in the
 * connection's place, until that is done or the connection ends. Interrupting it (the server stopping) sends the
 * shutdown notice, closes the socket with 1001 and tears the connection down.
 *
 * @since 0.2.0
 * @internal
 */
import * as Effect from "effect/Effect"

/** What the fiber is woken with: work to run, or nothing (the connection has ended). */
type Next = Effect.Effect<void> | undefined
const nothing: Effect.Effect<Next> = Effect.succeed(undefined)

/**
 * The connection as its fiber sees it (fields of the connection object: no closures of its own while it sleeps).
 *
 * @since 0.2.0
 * @internal
 */
export interface Sleeper {
  /** The connection has been torn down. */
  readonly done: boolean
  /** The fiber sleeps: resumes it with work to run, or with nothing once the connection has ended. */
  wake: ((next: Effect.Effect<Next>) => void) | undefined
  /** Work handed to the fiber while it was busy: it runs next. */
  work: Effect.Effect<void> | undefined
  /** The fiber runs work: stops it (the connection has ended). */
  stop: (() => void) | undefined
  /** The server is stopping: notice, close 1001, teardown. */
  readonly interrupted: () => void
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
  wake(Effect.succeed(work))
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
  if (wake !== undefined) return wake(nothing)
  const stop = connection.stop
  connection.stop = undefined
  stop?.()
}

/** Sleeps until there is work for the fiber, or nothing more to do (the connection has ended). */
const sleep = (connection: Sleeper): Effect.Effect<Next> =>
  Effect.callback<Next>((resume) => {
    if (connection.done) return resume(nothing)
    const work = connection.work
    if (work !== undefined) {
      connection.work = undefined
      return resume(Effect.succeed(work))
    }
    connection.wake = resume
    return Effect.sync(() => connection.interrupted())
  })

/** Runs a piece of work until it is done or the connection ends, whichever comes first. */
const busy = (connection: Sleeper, work: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.raceFirst(
    work,
    Effect.callback<void>((resume) => {
      if (connection.done) return resume(Effect.void)
      connection.stop = () => resume(Effect.void)
      return Effect.sync(() => void (connection.stop = undefined))
    })
  ).pipe(Effect.onInterrupt(() => Effect.sync(() => connection.interrupted())))

/**
 * The fiber's life. Never fails.
 *
 * @since 0.2.0
 * @internal
 */
export const live = (connection: Sleeper): Effect.Effect<void> =>
  Effect.flatMap(
    sleep(connection),
    (work) => work === undefined ? Effect.void : Effect.flatMap(busy(connection, work), () => live(connection))
  )
