import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, Queue, Stream } from "effect"
import { RTCPeerConnection } from "werift"
import { awaitState, type CallInfo, type CallSessionOptions, isTag, make } from "../../src/call/CallSession.js"
import { makeMemoryNetwork, type MemoryNetwork, Signaller } from "../../src/call/Signaller.js"
import * as Call from "../../src/protocol/Call.js"
import { loopback, makeChatPeer } from "./chatPeer.js"
import { answerNextCall, channels, expectEnded, type Party, say, waitFor } from "./support.js"

const join = (network: MemoryNetwork, user: string, options: Partial<CallSessionOptions> = {}) =>
  Effect.gen(function*() {
    const signaller = yield* network.connect(user)
    const chat = yield* makeChatPeer
    const session = yield* make({ peerConnection: chat.peerConnection, ringTimeout: "10 seconds", ...options }).pipe(
      Effect.provideService(Signaller, signaller)
    )
    return { signaller, chat, session, address: yield* signaller.address }
  })

/** alice calls bob on a network of their own, and it rings at bob's. */
const ringing = (aliceOptions: Partial<CallSessionOptions> = {}) =>
  Effect.gen(function*() {
    const network = yield* makeMemoryNetwork
    const alice = yield* join(network, "alice", aliceOptions)
    const bob = yield* join(network, "bob")
    yield* alice.session.call(bob.address)
    yield* waitFor(bob, "IncomingInit")
    return { network, alice, bob }
  })

/** alice and bob on a network of their own, in an Active call that bob answered, with its data channel open. */
const activeCall = (options: Partial<CallSessionOptions> = {}) =>
  Effect.gen(function*() {
    const network = yield* makeMemoryNetwork
    const alice = yield* join(network, "alice", options)
    const bob = yield* join(network, "bob", options)
    const answered = yield* answerNextCall(bob)
    yield* alice.session.call(bob.address)
    yield* Fiber.join(answered)
    yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])
    return { network, alice, bob, channels: yield* channels(alice, bob) }
  })

const subtypes = (network: MemoryNetwork) =>
  Effect.map(network.routed, (frames) => frames.map((f) => `${String(f.from).split("|")[0]}:${f.subtype}`))

describe("call/CallSession over an in-memory network", () => {
  it.live("two werift peers connect, exchange data both ways and hang up", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice")
      const bob = yield* join(network, "bob")
      const answered = yield* answerNextCall(bob)

      yield* alice.session.call(bob.address)
      yield* Fiber.join(answered)
      const [aliceActive, bobActive] = yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])
      expect(aliceActive).toMatchObject({ _tag: "Active", callId: 1, remote: bob.address, role: "caller" })
      expect(bobActive).toMatchObject({ _tag: "Active", callId: 1, remote: alice.address, role: "callee" })

      const [aliceChannel, bobChannel] = yield* channels(alice, bob)
      yield* say(aliceChannel, bob, "hello bob")
      yield* say(bobChannel, alice, "hello alice")

      yield* alice.session.hangup()
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "hangup", by: "local" })
      yield* expectEnded(bob, { callId: 1, remote: alice.address, reason: "hangup", by: "remote" })
      expect(Option.isNone(yield* alice.session.peerConnection)).toBe(true)
      expect(alice.chat.created.map((pc) => pc.connectionState)).toEqual(["closed"])
      expect(bob.chat.created.map((pc) => pc.connectionState)).toEqual(["closed"])

      const routed = yield* network.routed
      expect(routed.every(Call.isStrict)).toBe(true)
      const seen = yield* subtypes(network)
      expect(seen.slice(0, 3)).toEqual(["alice:call:init", "bob:call:accept", "alice:call:offer"])
      expect(seen).toContain("bob:call:answer")
      expect(seen).toContain("alice:call:candidate")
      expect(seen).toContain("bob:call:candidate")
      expect(seen[seen.length - 1]).toBe("alice:call:hangup")
      // The offer went out before any of alice's candidates, the answer before any of bob's.
      expect(seen.indexOf("alice:call:offer")).toBeLessThan(seen.indexOf("alice:call:candidate"))
      expect(seen.indexOf("bob:call:answer")).toBeLessThan(seen.indexOf("bob:call:candidate"))

      // The session is reusable: a second call, placed the other way round, works too.
      const again = yield* answerNextCall(alice)
      yield* bob.session.call(alice.address)
      yield* Fiber.join(again)
      expect((yield* waitFor(alice, "Active")).callId).toBe(2)
      yield* bob.session.hangup()
      yield* Effect.all([waitFor(alice, "Ended"), waitFor(bob, "Ended")])
    }), 30_000)

  it.live("reject: the caller ends with the callee's reason", () =>
    Effect.gen(function*() {
      const { alice, bob } = yield* ringing()
      yield* bob.session.reject()
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "declined", by: "remote" })
      yield* expectEnded(bob, { callId: 1, remote: alice.address, reason: "declined", by: "local" })
      // Nothing to reject or accept any more.
      const error = yield* Effect.flip(bob.session.accept())
      expect(error.reason).toBe("InvalidState")
      expect(alice.chat.created).toEqual([])
    }))

  it.live("busy: a second caller is rejected while the first one rings; strangers cannot end the call", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice")
      const bob = yield* join(network, "bob")
      const carol = yield* join(network, "carol")
      yield* alice.session.call(bob.address)
      yield* waitFor(bob, "IncomingInit")
      yield* carol.session.call(bob.address)
      yield* expectEnded(carol, { callId: 1, remote: bob.address, reason: "busy", by: "remote" })
      // carol forges a hangup into bob's call with alice: ignored.
      yield* carol.signaller.send(Call.message(bob.address, Call.Signal.Hangup({ reason: "hangup" })))
      yield* carol.signaller.send(Call.message(bob.address, Call.Signal.Accept()))
      yield* Effect.sleep("50 millis")
      expect(yield* bob.session.current).toMatchObject({ _tag: "IncomingInit", callId: 1, remote: alice.address })
      expect(yield* alice.session.current).toMatchObject(
        { _tag: "OutgoingInit", callId: 1, remote: bob.address, ringing: [bob.address], declined: [] }
      )
      const seen = yield* subtypes(network)
      expect(seen).toContain("bob:call:reject")
      // The busy answer carries carol's own call id, so that she can tell which of her calls it is about.
      const init = (yield* network.routed).find((f) => f.subtype === "call:init" && f.from === carol.address)
      const busy = (yield* network.routed).find((f) => f.subtype === "call:reject")
      expect(busy?.data).toEqual({ reason: "busy", callId: (init?.data as { callId: string }).callId })
    }))

  it.live("ring timeout: an unanswered call ends with hangup {reason: timeout}", () =>
    Effect.gen(function*() {
      const { alice, bob, network } = yield* ringing({ ringTimeout: "200 millis" })
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "timeout", by: "local" })
      yield* expectEnded(bob, { callId: 1, remote: alice.address, reason: "timeout", by: "remote" })
      const hangup = (yield* network.routed).find((f) => f.subtype === "call:hangup")
      expect(hangup?.data).toEqual({ reason: "timeout", callId: expect.any(String) })
    }))

  it.live("ring timeout on the callee side ends a call nobody picks up", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice")
      const bob = yield* join(network, "bob", { ringTimeout: "200 millis" })
      yield* alice.session.call(bob.address)
      expect((yield* waitFor(bob, "Ended")).reason).toBe("timeout")
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "timeout", by: "remote" })
    }))

  it.live("a call that is accepted but never answered times out in Negotiating", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice", { ringTimeout: "300 millis" })
      // bob is a bare signaller speaking the C++ dialect: call:accept without any data, then silence.
      const bob = yield* network.connect("bob")
      const bobAddress = yield* bob.address
      // bob answers the init once it has arrived (`call` returns once the init is queued, not sent).
      const ringing = yield* bob.messages.pipe(
        Stream.filter((frame) => frame.subtype === "call:init"),
        Stream.runHead,
        Effect.forkScoped({ startImmediately: true })
      )
      yield* alice.session.call(bobAddress)
      yield* Fiber.join(ringing)
      yield* bob.send({ type: "message", to: alice.address, subtype: "call:accept" })
      yield* waitFor(alice, "Negotiating")
      yield* expectEnded(alice, { callId: 1, remote: bobAddress, reason: "timeout", by: "local" })
      const seen = yield* subtypes(network)
      expect(seen).toEqual(["alice:call:init", "bob:call:accept", "alice:call:offer", ...seen.slice(3)])
      expect(seen[seen.length - 1]).toBe("alice:call:hangup")
      expect(alice.chat.created.map((pc) => pc.connectionState)).toEqual(["closed"])
    }))

  it.live(
    "interop: a hand-written peer in the C++ dialect (no data, a= candidates, no sdpMLineIndex)",
    () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice")
        const bob = yield* network.connect("bob")
        const bobAddress = yield* bob.address
        const pc = new RTCPeerConnection(loopback)
        yield* Effect.addFinalizer(() => Effect.promise(() => pc.close()))
        const bobReceived = yield* Queue.unbounded<string>()
        pc.ondatachannel = ({ channel }) => {
          channel.onmessage = (event) => {
            Queue.offerUnsafe(bobReceived, String(event.data))
            channel.send(`echo ${String(event.data)}`)
          }
        }
        const send = (subtype: string, data?: Record<string, string>) =>
          Effect.runFork(bob.send({ type: "message", to: alice.address, subtype, ...(data ? { data } : {}) }))
        pc.onicecandidate = ({ candidate }) => {
          if (!candidate) return
          send("call:candidate", { candidate: `a=${candidate.candidate}`, sdpMid: candidate.sdpMid ?? "0" })
        }
        yield* bob.messages.pipe(
          Stream.runForEach((frame) =>
            Effect.promise(async () => {
              const data = frame.data as Record<string, string> | undefined
              if (frame.subtype === "call:init") send("call:accept")
              if (frame.subtype === "call:offer" && data) {
                await pc.setRemoteDescription({ type: "offer", sdp: data.sdp! })
                const answer = await pc.createAnswer()
                await pc.setLocalDescription(answer)
                send("call:answer", { type: "answer", sdp: pc.localDescription!.sdp })
              }
              if (frame.subtype === "call:candidate" && data) await pc.addIceCandidate({ candidate: data.candidate! })
            })
          ),
          Effect.forkScoped
        )
        yield* Effect.yieldNow
        yield* alice.session.call(bobAddress)
        yield* waitFor(alice, "Active")
        const channel = yield* Deferred.await(alice.chat.open)
        channel.send("hi")
        expect(yield* Queue.take(bobReceived)).toBe("hi")
        expect(yield* Queue.take(alice.chat.received)).toBe("echo hi")
        send("call:hangup")
        yield* expectEnded(alice, { callId: 1, remote: bobAddress, reason: "hangup", by: "remote" })
        // What alice sent is still the strict form.
        const fromAlice = (yield* network.routed).filter((f) => f.from === alice.address)
        expect(fromAlice.every(Call.isStrict)).toBe(true)
        expect(fromAlice.some((f) => f.subtype === "call:candidate")).toBe(true)
      }),
    30_000
  )

  describe("renegotiation and end-of-candidates", () => {
    const pcOf = (party: Party) => party.chat.created[party.chat.created.length - 1]!
    /** Waits (from now on) for the party to send an offer and have it answered, and its connection stable again. */
    const offerAnswered = (party: Party) =>
      Effect.gen(function*() {
        const answered = yield* party.session.state.pipe(
          Stream.dropWhile((s) => !(s._tag === "Active" && s.offering)),
          Stream.filter((s) => s._tag === "Active" && !s.offering),
          Stream.runHead,
          Effect.forkScoped({ startImmediately: true })
        )
        return Effect.gen(function*() {
          yield* Fiber.join(answered)
          while (pcOf(party).signalingState !== "stable") yield* Effect.sleep("10 millis")
        }).pipe(Effect.timeout("10 seconds"))
      })
    const from = (network: MemoryNetwork, party: Party, subtype: string) =>
      Effect.map(network.routed, (frames) => frames.filter((f) => f.from === party.address && f.subtype === subtype))

    it.live(
      "each side sends one end-of-candidates marker, and the other side's connection takes it",
      () =>
        Effect.gen(function*() {
          const { alice, bob, network } = yield* activeCall()
          for (const [party, other] of [[alice, bob], [bob, alice]] as const) {
            const ends = (yield* from(network, party, "call:candidate")).filter((f) =>
              (f.data as { candidate: string }).candidate === ""
            )
            expect(ends).toHaveLength(1)
            // Sent for a media section, after every candidate of ours.
            expect(ends[0]!.data).toMatchObject({ candidate: "", sdpMid: expect.any(String) })
            const candidates = yield* from(network, party, "call:candidate")
            expect(candidates[candidates.length - 1]).toBe(ends[0])
            // werift writes an accepted marker into the remote description.
            yield* Effect.gen(function*() {
              while (!pcOf(other).remoteDescription?.sdp.includes("a=end-of-candidates")) {
                yield* Effect.sleep("10 millis")
              }
            }).pipe(Effect.timeout("5 seconds"))
          }
          expect(yield* alice.session.current).toMatchObject({ _tag: "Active" })
        }),
      30_000
    )

    it.live(
      "a track added to an Active call is offered, answered and applied; renegotiate() does the same",
      () =>
        Effect.gen(function*() {
          const { alice, bob, channels, network } = yield* activeCall()
          const offersBefore = (yield* from(network, alice, "call:offer")).length
          // Adding a transceiver fires negotiationneeded: alice offers again, bob answers.
          const aliceDone = yield* offerAnswered(alice)
          pcOf(alice).addTransceiver("audio", { direction: "sendrecv" })
          yield* aliceDone
          expect(yield* from(network, alice, "call:offer")).toHaveLength(offersBefore + 1)
          expect(yield* from(network, bob, "call:answer")).toHaveLength(2)
          // werift on bob's side may then want to renegotiate the new section itself: let it finish.
          yield* Effect.gen(function*() {
            while (
              (yield* bob.session.current)._tag !== "Active" ||
              ((yield* bob.session.current) as { offering: boolean }).offering ||
              pcOf(bob).signalingState !== "stable" || pcOf(alice).signalingState !== "stable"
            ) yield* Effect.sleep("10 millis")
          }).pipe(Effect.timeout("10 seconds"))
          // Applied on both sides: each connection now has the audio section.
          expect(pcOf(bob).getTransceivers().map((t) => t.kind)).toEqual(["audio"])
          expect(pcOf(alice).remoteDescription?.sdp).toContain("m=audio")
          // Still the same call, and the data channel still works.
          expect(yield* alice.session.current).toMatchObject({ _tag: "Active", callId: 1, offering: false })
          yield* say(channels[0], bob, "after renegotiation")
          // The callee may renegotiate too, by hand.
          const bobOffers = (yield* from(network, bob, "call:offer")).length
          const bobDone = yield* offerAnswered(bob)
          yield* bob.session.renegotiate()
          yield* bobDone
          expect(yield* from(network, bob, "call:offer")).toHaveLength(bobOffers + 1)
          // Every offer of bob's was answered by alice.
          expect(yield* from(network, alice, "call:answer")).toHaveLength(bobOffers + 1)
          expect(pcOf(alice).signalingState).toBe("stable")
          expect((yield* network.routed).every(Call.isStrict)).toBe(true)
        }),
      30_000
    )

    it.live(
      "glare while renegotiating: the lower address keeps its offer, the other answers and offers again",
      () =>
        Effect.gen(function*() {
          const { alice, bob, channels, network } = yield* activeCall()
          const [winner, loser] = alice.address < bob.address ? [alice, bob] : [bob, alice]
          const offers = (party: Party) => Effect.map(from(network, party, "call:offer"), (f) => f.length)
          const answers = (party: Party) => Effect.map(from(network, party, "call:answer"), (f) => f.length)
          const before = {
            winner: yield* offers(winner),
            loser: yield* offers(loser),
            winnerAnswers: yield* answers(winner),
            loserAnswers: yield* answers(loser)
          }
          const done = [yield* offerAnswered(winner), yield* offerAnswered(loser)]
          // Both offer at once: their offers cross on the wire.
          yield* network.pause
          yield* Effect.all([winner.session.renegotiate(), loser.session.renegotiate()])
          yield* Effect.gen(function*() {
            while ((yield* offers(winner)) === before.winner || (yield* offers(loser)) === before.loser) {
              yield* Effect.sleep("10 millis")
            }
          }).pipe(Effect.timeout("5 seconds"))
          yield* network.resume
          yield* Effect.all(done)
          // The winner's offer was answered by the loser; the loser's crossing offer was dropped, and made again once
          // the loser had answered.
          expect(yield* offers(winner)).toBe(before.winner + 1)
          expect(yield* offers(loser)).toBe(before.loser + 2)
          expect(yield* answers(loser)).toBe(before.loserAnswers + 1)
          expect(yield* answers(winner)).toBe(before.winnerAnswers + 1)
          expect(yield* alice.session.current).toMatchObject({ _tag: "Active", callId: 1 })
          expect(yield* bob.session.current).toMatchObject({ _tag: "Active", callId: 1 })
          yield* say(channels[1], alice, "through renegotiation glare")
        }),
      30_000
    )
  })

  describe("signalling blips", () => {
    /** alice calls bob and both reach Active; both may be given options. */

    const awaitAway = (party: Party, away: boolean) =>
      party.session.state.pipe(
        Stream.filter((s) => s._tag === "Active" && s.away === away),
        Stream.runHead,
        Effect.timeout("5 seconds")
      )

    it.live("the remote staying gone past the grace period ends the call with offline", () =>
      Effect.gen(function*() {
        const { alice, bob, network } = yield* activeCall({ gracePeriod: "300 millis" })
        yield* network.disconnect(bob.address)
        // Gone from signalling, but the call waits for it.
        yield* awaitAway(alice, true)
        yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "offline", by: "remote" })
        expect(alice.chat.created.map((pc) => pc.connectionState)).toEqual(["closed"])
        // Nobody was told: there was nobody to tell.
        expect((yield* subtypes(network)).filter((s) => s.endsWith("hangup"))).toEqual([])
      }), 30_000)

    it.live("the remote dropping and coming back under its address keeps the call", () =>
      Effect.gen(function*() {
        const { alice, bob, channels, network } = yield* activeCall({ gracePeriod: "300 millis" })
        yield* network.reconnect(bob.address, { keepAddress: true })
        yield* awaitAway(alice, false)
        // Well past the grace period: still the same call, and it still carries data.
        yield* Effect.sleep("600 millis")
        expect(yield* alice.session.current).toMatchObject({ _tag: "Active", remote: bob.address, away: false })
        yield* say(channels[0], bob, "still there?")
        yield* bob.session.hangup()
        expect(yield* waitFor(alice, "Ended")).toMatchObject({ reason: "hangup", by: "remote" })
      }), 30_000)

    it.live(
      "both sides reconnecting under new addresses (a server restart): call:moved rebinds the call",
      () =>
        Effect.gen(function*() {
          const { alice, bob, channels, network } = yield* activeCall({ gracePeriod: "300 millis" })
          const before = { alice: alice.address, bob: bob.address }
          yield* network.restart
          const now = { alice: yield* alice.signaller.address, bob: yield* bob.signaller.address }
          expect(now.alice).not.toBe(before.alice)
          expect(now.bob).not.toBe(before.bob)
          // Each side follows the other to its new address.
          for (const [party, remote] of [[alice, now.bob], [bob, now.alice]] as const) {
            yield* party.session.state.pipe(
              Stream.filter((s) => s._tag === "Active" && s.remote === remote && !s.away),
              Stream.runHead,
              Effect.timeout("5 seconds")
            )
          }
          yield* Effect.sleep("600 millis")
          expect(yield* alice.session.current).toMatchObject({ _tag: "Active", remote: now.bob, away: false })
          expect(yield* bob.session.current).toMatchObject({ _tag: "Active", remote: now.alice, away: false })
          yield* say(channels[1], alice, "after the restart")
          // The moves went to the users, and came back from the new addresses; a few frames, no storm.
          const moves = (yield* network.routed).filter((f) => f.subtype === "call:moved")
          expect(moves.map((f) => f.to)).toEqual(expect.arrayContaining(["bob", "alice"]))
          expect(moves.length).toBeLessThanOrEqual(4)
          // A hangup now reaches the other side at its new address.
          yield* alice.session.hangup()
          yield* expectEnded(bob, { callId: 1, remote: now.alice, reason: "hangup", by: "remote" })
        }),
      30_000
    )

    it.live("our own client reconnecting under a new address: the remote follows us", () =>
      Effect.gen(function*() {
        const { alice, bob, network } = yield* activeCall({ gracePeriod: "300 millis" })
        const moved = yield* network.reconnect(alice.address)
        yield* bob.session.state.pipe(
          Stream.filter((s) => s._tag === "Active" && s.remote === moved),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        yield* Effect.sleep("600 millis")
        expect(yield* alice.session.current).toMatchObject({ _tag: "Active", remote: bob.address, away: false })
        yield* bob.session.hangup()
        expect(yield* waitFor(alice, "Ended")).toMatchObject({ reason: "hangup", by: "remote" })
      }), 30_000)

    it.live("closing a client hangs up its call before it goes", () =>
      Effect.gen(function*() {
        const { alice, bob, network } = yield* activeCall()
        yield* network.close(bob.address)
        expect(yield* waitFor(bob, "Ended")).toMatchObject({ reason: "hangup", by: "local" })
        yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "hangup", by: "remote" })
      }), 30_000)
  })

  it.live(
    "glare: both call each other at once, the lower address stays the caller, the call connects",
    () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice")
        const bob = yield* join(network, "bob")
        // Hold the network so that both inits are in flight at the same time.
        yield* network.pause
        yield* alice.session.call(bob.address)
        yield* bob.session.call(alice.address)
        yield* network.resume
        const [a, b] = yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])
        const aliceWins = alice.address < bob.address
        expect(a.role).toBe(aliceWins ? "caller" : "callee")
        expect(b.role).toBe(aliceWins ? "callee" : "caller")
        const [aliceChannel] = yield* channels(alice, bob)
        yield* say(aliceChannel, bob, "through glare")
        // Exactly one offer was made: only one side negotiated as the caller.
        const offers = (yield* network.routed).filter((f) => f.subtype === "call:offer")
        expect(offers.length).toBe(1)
        yield* alice.session.hangup()
        yield* Effect.all([waitFor(alice, "Ended"), waitFor(bob, "Ended")])
      }),
    30_000
  )

  it.live("a peer connection that cannot be created ends the call with hangup {reason: failed}", () =>
    Effect.gen(function*() {
      const { alice, bob, network } = yield* ringing({ peerConnection: () => Effect.fail(new Error("no WebRTC here")) })
      yield* bob.session.accept()
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "failed", by: "local" })
      yield* expectEnded(bob, { callId: 1, remote: alice.address, reason: "failed", by: "remote" })
      expect((yield* subtypes(network)).filter((s) => s === "alice:call:offer")).toEqual([])
    }))

  it.live(
    "a call's peer connection is made with the signaller's ICE servers, unless the session names its own",
    () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const fromServer = [{ urls: "turn:turn.example.org", username: "1:alice", credential: "c" }]
        const own = [{ urls: ["stun:stun.example.org"] }]
        const calls: Array<CallInfo> = []
        const recording = (chat: Effect.Success<typeof makeChatPeer>) => (call: CallInfo) => {
          calls.push(call)
          return chat.peerConnection(call)
        }
        const party = (user: string, options: Partial<CallSessionOptions>) =>
          Effect.gen(function*() {
            const signaller = yield* network.connect(user, { iceServers: fromServer })
            const chat = yield* makeChatPeer
            const session = yield* make({ peerConnection: recording(chat), ...options }).pipe(
              Effect.provideService(Signaller, signaller)
            )
            return { session, address: yield* signaller.address }
          })
        const alice = yield* party("alice", {})
        const bob = yield* party("bob", { iceServers: own })
        yield* alice.session.call(bob.address)
        yield* awaitState(bob.session, isTag("IncomingInit"))
        yield* bob.session.accept()
        yield* Effect.all([awaitState(alice.session, isTag("Active")), awaitState(bob.session, isTag("Active"))]).pipe(
          Effect.timeout("10 seconds")
        )
        expect(calls.map((c) => [c.role, c.iceServers])).toEqual(
          expect.arrayContaining([["callee", own], ["caller", fromServer]])
        )
      }),
    30_000
  )

  it.live("local actions in the wrong state fail with CallError and change nothing", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice")
      const bob = yield* join(network, "bob")
      expect((yield* Effect.flip(alice.session.accept())).reason).toBe("InvalidState")
      expect((yield* Effect.flip(alice.session.hangup())).reason).toBe("InvalidState")
      expect((yield* Effect.flip(alice.session.call("bob|"))).reason).toBe("InvalidAddress")
      expect((yield* Effect.flip(alice.session.call("nobody"))).reason).toBe("Unreachable")
      expect((yield* Effect.flip(alice.session.call(alice.address))).reason).toBe("InvalidAddress")
      yield* alice.session.call(bob.address)
      expect((yield* Effect.flip(alice.session.call(bob.address))).reason).toBe("InvalidState")
      const states = yield* alice.session.state.pipe(Stream.take(1), Stream.runCollect)
      expect(states).toMatchObject([
        { _tag: "OutgoingInit", callId: 1, remote: bob.address, ringing: [bob.address], declined: [] }
      ])
    }))

  it.live("closing a session hangs up its call", () =>
    Effect.gen(function*() {
      const network = yield* makeMemoryNetwork
      const alice = yield* join(network, "alice")
      const signaller = yield* network.connect("bob")
      const bobAddress = yield* signaller.address
      const bob = yield* Effect.scoped(Effect.gen(function*() {
        const chat = yield* makeChatPeer
        const session = yield* make({ peerConnection: chat.peerConnection }).pipe(
          Effect.provideService(Signaller, signaller)
        )
        yield* alice.session.call(bobAddress)
        yield* awaitState(session, isTag("IncomingInit"))
        return session
      }))
      expect(bob).toBeDefined()
      yield* expectEnded(alice, { callId: 1, remote: bobAddress, reason: "hangup", by: "remote" })
    }))

  describe("multi-device ringing", () => {
    const hangupsTo = (network: MemoryNetwork, address: string) =>
      Effect.map(
        network.routed,
        (frames) =>
          frames.filter((f) => f.to === address && f.subtype === "call:hangup").map((f) =>
            (f.data as { reason: string }).reason
          )
      )

    for (const first of [0, 1] as const) {
      it.live(
        `calling a user rings both sessions; device ${first + 1} accepts first and wins`,
        () =>
          Effect.gen(function*() {
            const network = yield* makeMemoryNetwork
            const alice = yield* join(network, "alice")
            const devices = [yield* join(network, "bob"), yield* join(network, "bob")] as const
            const winner = devices[first]
            const loser = devices[1 - first]!
            yield* alice.session.call("bob")
            yield* Effect.all(devices.map((d) => waitFor(d, "IncomingInit")))
            expect(yield* alice.session.current).toMatchObject({
              _tag: "OutgoingInit",
              callId: 1,
              remote: "bob",
              ringing: devices.map((d) => d.address),
              declined: []
            })
            yield* winner.session.accept()
            yield* expectEnded(loser, { callId: 1, remote: alice.address, reason: "answered-elsewhere", by: "remote" })
            const [active] = yield* Effect.all([waitFor(alice, "Active"), waitFor(winner, "Active")])
            expect(active).toMatchObject({ _tag: "Active", callId: 1, remote: winner.address, role: "caller" })
            // The call really is with the winner: its data channel carries the message.
            const channel = yield* Deferred.await(alice.chat.open)
            yield* say(channel, winner, "to the device that answered")
            // The loser was told exactly once, and never got further than ringing.
            expect(yield* hangupsTo(network, loser.address)).toEqual(["answered-elsewhere"])
            expect(loser.chat.created).toEqual([])
            yield* alice.session.hangup()
            expect(yield* waitFor(winner, "Ended")).toMatchObject({ reason: "hangup", by: "remote" })
            expect(yield* hangupsTo(network, loser.address)).toHaveLength(1)
          }),
        30_000
      )
    }

    it.live("a device that rejects leaves the other ringing; the call is declined once both have", () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice")
        const [phone, laptop] = [yield* join(network, "bob"), yield* join(network, "bob")]
        yield* alice.session.call("bob")
        yield* Effect.all([waitFor(phone, "IncomingInit"), waitFor(laptop, "IncomingInit")])
        yield* phone.session.reject()
        yield* waitFor(phone, "Ended")
        // The rejection reached alice, and changed only whom she is ringing.
        yield* alice.session.state.pipe(
          Stream.filter((s) => s._tag === "OutgoingInit" && s.ringing.length === 1),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        expect(yield* alice.session.current).toMatchObject(
          { _tag: "OutgoingInit", callId: 1, remote: "bob", ringing: [laptop.address], declined: ["declined"] }
        )
        expect((yield* laptop.session.current)._tag).toBe("IncomingInit")
        yield* laptop.session.reject("busy")
        yield* expectEnded(alice, { callId: 1, remote: "bob", reason: "declined", by: "remote" })
        // Nobody was sent a hangup: both said no themselves.
        expect((yield* subtypes(network)).filter((s) => s.endsWith("call:hangup"))).toEqual([])
      }))

    it.live("a rejection on one device, an accept on the other: the call goes on", () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice")
        const [phone, laptop] = [yield* join(network, "bob"), yield* join(network, "bob")]
        yield* alice.session.call("bob")
        yield* Effect.all([waitFor(phone, "IncomingInit"), waitFor(laptop, "IncomingInit")])
        yield* phone.session.reject()
        yield* laptop.session.accept()
        const [active] = yield* Effect.all([waitFor(alice, "Active"), waitFor(laptop, "Active")])
        expect(active.remote).toBe(laptop.address)
        expect(yield* phone.session.current).toMatchObject({ _tag: "Ended", reason: "declined", by: "local" })
        expect(yield* hangupsTo(network, phone.address)).toEqual([])
      }), 30_000)

    it.live("a caller who gives up ends every ring with cancelled", () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice")
        const devices = [yield* join(network, "bob"), yield* join(network, "bob")]
        yield* alice.session.call("bob")
        yield* Effect.all(devices.map((d) => waitFor(d, "IncomingInit")))
        yield* alice.session.hangup()
        yield* expectEnded(alice, { callId: 1, remote: "bob", reason: "cancelled", by: "local" })
        for (const device of devices) {
          expect(yield* waitFor(device, "Ended")).toMatchObject({ reason: "cancelled", by: "remote" })
          expect(yield* hangupsTo(network, device.address)).toEqual(["cancelled"])
        }
      }))

    it.live("the ring timeout ends every ring", () =>
      Effect.gen(function*() {
        const network = yield* makeMemoryNetwork
        const alice = yield* join(network, "alice", { ringTimeout: "300 millis" })
        const devices = [yield* join(network, "bob"), yield* join(network, "bob")]
        yield* alice.session.call("bob")
        expect(yield* waitFor(alice, "Ended")).toMatchObject({ reason: "timeout", by: "local" })
        for (const device of devices) {
          expect(yield* waitFor(device, "Ended")).toMatchObject({ reason: "timeout", by: "remote" })
        }
      }))
  })
})
