import { Duration, Effect, Fiber, Option, PubSub, Schedule, Stream } from "effect"
import type { ClientState } from "../../src/client/ClientState.js"
import type * as SympleClient from "../../src/client/SympleClient.js"

/** Waits for the client to reach a state with this tag (the current state counts). */
export const waitFor = (
  client: SympleClient.SympleClient,
  tag: ClientState["_tag"],
  timeout: Duration.Input = "5 seconds"
) =>
  client.state.pipe(
    Stream.filter((s) => s._tag === tag),
    Stream.runHead,
    Effect.flatMap((head) => Effect.fromOption(head)),
    Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail(new Error(`state ${tag} not reached`)) }),
    Effect.orDie
  )

/**
 * Runs `action` and waits for the client to reach a state with this tag, watching from before the action: for a
 * state that may not last until `waitFor` would look (an Error the client retries from after a 20 ms delay).
 */
export const waitAfter = <A, E, R>(
  client: SympleClient.SympleClient,
  tag: ClientState["_tag"],
  action: Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const watching = yield* Effect.forkChild(waitFor(client, tag), { startImmediately: true })
    yield* action
    return yield* Fiber.join(watching)
  })

/** Polls until `predicate` holds for the value of `effect`. */
export const eventually = <A, E>(effect: Effect.Effect<A, E>, predicate: (a: A) => boolean, what = "condition") =>
  effect.pipe(
    Effect.flatMap((a) => predicate(a) ? Effect.succeed(a) : Effect.fail("not yet" as const)),
    Effect.retry(Schedule.spaced("10 millis")),
    Effect.timeoutOrElse({
      duration: "5 seconds",
      orElse: () => Effect.fail(new Error(`timed out waiting for ${what}`))
    }),
    Effect.orDie
  )

/** Collects the states the client goes through, from now on. */
export const recordStates = (client: SympleClient.SympleClient) =>
  Effect.gen(function*() {
    const states: Array<ClientState> = []
    yield* client.state.pipe(Stream.runForEach((s) => Effect.sync(() => states.push(s))), Effect.forkScoped)
    yield* eventually(Effect.sync(() => states.length), (n) => n > 0, "first state")
    return states
  })

export const rosterIds = (client: SympleClient.SympleClient) =>
  Effect.map(client.roster.snapshot, (peers) => peers.map((p) => p.id).sort())

export const noneWithin = <A, E>(effect: Effect.Effect<A, E>, millis: number) =>
  effect.pipe(Effect.timeout(Duration.millis(millis)), Effect.option, Effect.map(Option.isNone))

/** Everything a subscription holds now, without waiting (Effect 4's `PubSub.takeAll` waits for at least one). */
export const drain = <A>(subscription: PubSub.Subscription<A>) =>
  PubSub.takeUpTo(subscription, Number.POSITIVE_INFINITY)
