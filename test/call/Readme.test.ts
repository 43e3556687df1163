/**
 * The README's Calls example, run against a real server so that the documentation stays true. What differs from
 * the README is marked: the server's URL, and loopback-only werift settings (the test needs no network).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { RTCPeerConnection } from "werift"
import { CallSession, Signaller } from "../../src/call/index.js"
import { NodeSympleClient } from "../../src/client/node.js"
import * as SympleServer from "../../src/server/index.js"
import { loopback } from "./chatPeer.js"

describe("README calls example", () => {
  it.live("alice calls bob, whose two devices ring; the one that answers gets the call", () =>
    Effect.gen(function*() {
      const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
      // bob, on two devices that pick up whatever rings.
      for (let device = 0; device < 2; device++) {
        const client = yield* NodeSympleClient.make({ url: server.url, user: "bob", rooms: ["friends"] })
        yield* client.awaitOnline
        const session = yield* CallSession.make({
          peerConnection: CallSession.fromConstructor(RTCPeerConnection, { configuration: loopback })
        }).pipe(Effect.provideService(Signaller.Signaller, Signaller.fromClient(client)))
        yield* session.incomingCall.pipe(Stream.runForEach(() => session.accept()), Effect.forkScoped)
      }

      // --- README (Calls) ---
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", rooms: ["friends"] })
      yield* client.awaitOnline
      const session = yield* CallSession.make({
        peerConnection: CallSession.fromConstructor(RTCPeerConnection, {
          configuration: loopback, // test only
          setup: (pc, { role }) => {
            if (role === "caller") pc.createDataChannel("chat")
          }
        }),
        gracePeriod: "30 seconds"
      }).pipe(Effect.provideService(Signaller.Signaller, Signaller.fromClient(client)))

      yield* session.incomingCall.pipe(Stream.runForEach(() => session.accept()), Effect.forkScoped)
      // alice rings the sessions her roster lists for bob (test only: wait for both to be listed).
      yield* client.roster.changes.pipe(
        Stream.filter((peers) => [...peers].filter(([, p]) => p.user === "bob").length === 2),
        Stream.runHead
      )
      yield* session.call("bob")
      const call = yield* CallSession.awaitState(session, CallSession.isTag("Active"))
      // --- end ---
      expect(call.remote.startsWith("bob|")).toBe(true)
      yield* session.hangup()
      expect(["Ending", "Ended"]).toContain((yield* session.current)._tag)
    }), 30_000)
})
