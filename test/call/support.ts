/**
 * What the call tests do again and again with two parties, each a `CallSession` over a werift chat peer (on an
 * in-memory network or over a server): wait for a call state, answer the next call, place a call that is picked
 * up, and take both ends of the data channel.
 */
import { expect } from "@effect/vitest"
import { Deferred, Effect, Queue, Stream } from "effect"
import type { RTCDataChannel } from "werift"
import { awaitState, type CallSession, isTag } from "../../src/call/CallSession.js"
import { CallState } from "../../src/call/CallState.js"
import type { ChatPeer } from "./chatPeer.js"

/** One side of a call: its session, its chat peer, and its address. */
export interface Party {
  readonly session: CallSession
  readonly chat: ChatPeer
  readonly address: string
}

/** Waits (up to 10 seconds) for the party's session to reach `tag`, and returns that state. */
export const waitFor = <T extends CallState["_tag"]>(party: Party, tag: T) =>
  awaitState(party.session, isTag(tag)).pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new Error(`${party.address} never reached ${tag}`))
    })
  )

/** Waits for the party's call to end, and checks that it ended as `expected` says. */
export const expectEnded = (party: Party, expected: Omit<Extract<CallState, { _tag: "Ended" }>, "_tag">) =>
  Effect.gen(function*() {
    expect(yield* waitFor(party, "Ended")).toEqual(CallState.Ended(expected))
  })

/** Accepts the next call that rings, through the incomingCall stream (`check` sees it first); join the fiber. */
export const answerNextCall = (party: Party, check: (incoming: { readonly remote: string }) => void = () => {}) =>
  Effect.gen(function*() {
    const fiber = yield* party.session.incomingCall.pipe(
      Stream.take(1),
      Stream.runForEach((incoming) => {
        check(incoming)
        return party.session.accept()
      }),
      Effect.forkScoped
    )
    yield* Effect.yieldNow
    return fiber
  })

/** `caller` calls `callee`, who accepts once it rings; returns both Active states (the caller's first). */
export const connect = (caller: Party, callee: Party) =>
  Effect.gen(function*() {
    yield* caller.session.call(callee.address)
    yield* waitFor(callee, "IncomingInit")
    yield* callee.session.accept()
    return yield* Effect.all([waitFor(caller, "Active"), waitFor(callee, "Active")])
  })

/** Both ends of the data channel once it is open: `a`'s first. */
export const channels = (a: Party, b: Party): Effect.Effect<readonly [RTCDataChannel, RTCDataChannel]> =>
  Effect.all([Deferred.await(a.chat.open), Deferred.await(b.chat.open)])

/** Sends `text` on `channel` and checks that it is the next thing `to` receives. */
export const say = (channel: RTCDataChannel, to: Party, text: string) =>
  Effect.gen(function*() {
    channel.send(text)
    expect(yield* Queue.take(to.chat.received)).toBe(text)
  })
