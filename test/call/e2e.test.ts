import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Queue, Ref, Stream } from "effect"
import * as CallSession from "../../src/call/CallSession.js"
import { awaitState, isTag, make as makeSession } from "../../src/call/CallSession.js"
import { CallState } from "../../src/call/CallState.js"
import { fromClient, layerClient, Signaller } from "../../src/call/Signaller.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import { SympleClient } from "../../src/client/SympleClient.js"
import * as Call from "../../src/protocol/Call.js"
import type * as Frame from "../../src/protocol/Frame.js"
import * as Peer from "../../src/protocol/Peer.js"
import * as SympleServer from "../../src/server/SympleServer.js"
import { makeChatPeer } from "./chatPeer.js"

const room = "calls"

const join = (url: string, user: string) =>
  Effect.gen(function*() {
    const client = yield* NodeSympleClient.make({ url, user, rooms: [room], reconnection: false })
    yield* client.awaitOnline
    // Every call frame this peer sends, to compare with what the other side receives.
    const sent = yield* Ref.make<ReadonlyArray<Frame.Message>>([])
    const base = fromClient(client)
    const signaller: Signaller = {
      ...base,
      send: (frame) => Effect.andThen(Ref.update(sent, (all) => [...all, frame]), base.send(frame))
    }
    const chat = yield* makeChatPeer
    const session = yield* makeSession({ peerConnection: chat.peerConnection, ringTimeout: "10 seconds" }).pipe(
      Effect.provideService(Signaller, signaller)
    )
    // Every call frame this client receives, to check what the server delivered.
    const received = yield* Ref.make<ReadonlyArray<Frame.Message>>([])
    yield* client.messages.pipe(
      Stream.filter(Call.isCallMessage),
      Stream.runForEach((frame) => Ref.update(received, (all) => [...all, frame])),
      Effect.forkScoped
    )
    yield* Effect.yieldNow
    return { client, chat, session, sent, received, address: yield* signaller.address }
  })

type Party = Effect.Success<ReturnType<typeof join>>

const waitFor = <T extends CallState["_tag"]>(party: Party, tag: T) =>
  awaitState(party.session, isTag(tag)).pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new Error(`${party.address} never reached ${tag}`))
    })
  )

/** Both clients see each other in their rosters (so that offline presence reaches the other). */
const awaitRosters = (a: Party, b: Party) =>
  Effect.all([a, b].map((p) =>
    p.client.roster.changes.pipe(
      Stream.filter((peers) => [...peers].length >= 1),
      Stream.runHead
    )
  )).pipe(Effect.timeout("5 seconds"))

describe("call/e2e: two SympleClients on the project's server, real WebRTC (werift)", () => {
  it.live("call, data both ways, hang up; the server routes ordinary messages only", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
      const alice = yield* join(server.url, "alice")
      const bob = yield* join(server.url, "bob")

      const answered = yield* bob.session.incomingCall.pipe(
        Stream.take(1),
        Stream.runForEach((incoming) => {
          expect(incoming.remote).toBe(alice.address)
          return bob.session.accept()
        }),
        Effect.forkScoped
      )
      yield* Effect.yieldNow
      yield* alice.session.call(bob.address)
      yield* Fiber.join(answered)
      yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])

      const aliceChannel = yield* Deferred.await(alice.chat.open)
      const bobChannel = yield* Deferred.await(bob.chat.open)
      aliceChannel.send("hello bob")
      expect(yield* Queue.take(bob.chat.received)).toBe("hello bob")
      bobChannel.send("hello alice")
      expect(yield* Queue.take(alice.chat.received)).toBe("hello alice")

      yield* bob.session.hangup()
      expect(yield* waitFor(bob, "Ended")).toEqual(
        CallState.Ended({ callId: 1, remote: alice.address, reason: "hangup", by: "local" })
      )
      expect(yield* waitFor(alice, "Ended")).toEqual(
        CallState.Ended({ callId: 1, remote: bob.address, reason: "hangup", by: "remote" })
      )
      expect([...alice.chat.created, ...bob.chat.created].map((pc) => pc.connectionState)).toEqual(["closed", "closed"])

      // What arrived are plain routed messages: from set by the server to the sender's true address, strict data.
      const atBob = yield* Ref.get(bob.received)
      const atAlice = yield* Ref.get(alice.received)
      expect(atBob.every((f) => f.type === "message" && f.from === alice.address && f.to === bob.address)).toBe(true)
      expect(atAlice.every((f) => f.type === "message" && f.from === bob.address && f.to === alice.address)).toBe(true)
      expect([...atBob, ...atAlice].every(Call.isStrict)).toBe(true)
      expect(atBob.map((f) => f.subtype)).toEqual(expect.arrayContaining(["call:init", "call:offer", "call:candidate"]))
      expect(atAlice.map((f) => f.subtype)).toEqual(
        expect.arrayContaining(["call:accept", "call:answer", "call:candidate", "call:hangup"])
      )
      // Each side received exactly what the other sent, in order, unchanged but for the server-set `from`.
      const strip = (frames: ReadonlyArray<Frame.Message>) => frames.map(({ from: _, ...rest }) => rest)
      expect(strip(atBob)).toEqual(strip(yield* Ref.get(alice.sent)))
      expect(strip(atAlice)).toEqual(strip(yield* Ref.get(bob.sent)))
      expect((yield* server.stats).refused).toBe(0)
    }), 30_000)

  it.live("the call ends when the remote client goes offline", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
      const alice = yield* join(server.url, "alice")
      const bob = yield* join(server.url, "bob")
      yield* awaitRosters(alice, bob)
      yield* alice.session.call(bob.address)
      yield* waitFor(bob, "IncomingInit")
      yield* bob.session.accept()
      yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])
      yield* bob.client.close
      expect(yield* waitFor(alice, "Ended")).toEqual(
        CallState.Ended({ callId: 1, remote: bob.address, reason: "offline", by: "remote" })
      )
    }), 30_000)

  it.live(
    "as layers: a session provided inside another one signals through its own client",
    () =>
      Effect.gen(function*() {
        const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
        const aliceChat = yield* makeChatPeer
        const bobChat = yield* makeChatPeer
        const party = (user: string, chat: Effect.Success<typeof makeChatPeer>) =>
          CallSession.layer({ peerConnection: chat.peerConnection, ringTimeout: "10 seconds" }).pipe(
            Layer.provide(layerClient),
            Layer.provideMerge(NodeSympleClient.layer({ url: server.url, user, rooms: [room], reconnection: false }))
          )
        const within = (tag: CallState["_tag"], session: CallSession.CallSession) =>
          awaitState(session, isTag(tag)).pipe(Effect.timeout("10 seconds"))

        yield* Effect.gen(function*() {
          const alice = yield* CallSession.CallSession
          const aliceAddress = Peer.address(yield* (yield* SympleClient).awaitOnline)
          yield* Effect.gen(function*() {
            const bob = yield* CallSession.CallSession
            const bobAddress = Peer.address(yield* (yield* SympleClient).awaitOnline)
            expect(bob).not.toBe(alice)
            const answered = yield* bob.incomingCall.pipe(
              Stream.take(1),
              Stream.runForEach((incoming) => {
                expect(incoming.remote).toBe(aliceAddress)
                return bob.accept()
              }),
              Effect.forkScoped({ startImmediately: true })
            )
            yield* alice.call(bobAddress)
            // Never rings if bob's session was handed alice's signaller.
            yield* Fiber.join(answered).pipe(Effect.timeout("10 seconds"))
            expect(yield* within("Active", alice)).toEqual(
              CallState.Active({ callId: 1, remote: bobAddress, role: "caller" })
            )
            expect(yield* within("Active", bob)).toEqual(
              CallState.Active({ callId: 1, remote: aliceAddress, role: "callee" })
            )
            yield* alice.hangup()
            expect(yield* within("Ended", bob)).toEqual(
              CallState.Ended({ callId: 1, remote: aliceAddress, reason: "hangup", by: "remote" })
            )
          }).pipe(Effect.provide(party("bob", bobChat)))
        }).pipe(Effect.provide(party("alice", aliceChat)))
        expect([...aliceChat.created, ...bobChat.created].map((pc) => pc.connectionState)).toEqual(["closed", "closed"])
      }),
    30_000
  )
})
