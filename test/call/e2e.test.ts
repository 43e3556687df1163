import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Queue, Ref, Result, Scope, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import { RTCPeerConnection } from "werift"
import * as CallSession from "../../src/call/CallSession.js"
import {
  awaitState,
  type CallSessionOptions,
  fromConstructor,
  isTag,
  make as makeSession
} from "../../src/call/CallSession.js"
import { CallState } from "../../src/call/CallState.js"
import { fromClient, layerClient, Signaller } from "../../src/call/Signaller.js"
import type { ClientOptions } from "../../src/client/ClientConfig.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import { SympleClient } from "../../src/client/SympleClient.js"
import * as Call from "../../src/protocol/Call.js"
import type * as Frame from "../../src/protocol/Frame.js"
import * as Peer from "../../src/protocol/Peer.js"
import * as IceServers from "../../src/server/IceServers.js"
import * as SympleServer from "../../src/server/SympleServer.js"
import { relay } from "../support/relay.js"
import { loopback, makeChatPeer } from "./chatPeer.js"
import { answerNextCall, channels, connect, expectEnded, say, waitFor } from "./support.js"

const room = "calls"

const join = (
  url: string,
  user: string,
  options: { readonly client?: Partial<ClientOptions>; readonly session?: Partial<CallSessionOptions> } = {}
) =>
  Effect.gen(function*() {
    const client = yield* NodeSympleClient.make({ url, user, rooms: [room], reconnection: false, ...options.client })
    yield* client.awaitOnline
    // Every call frame this peer sends, to compare with what the other side receives.
    const sent = yield* Ref.make<ReadonlyArray<Frame.Message>>([])
    const base = fromClient(client)
    const signaller: Signaller = {
      ...base,
      send: (frame) => Effect.andThen(Ref.update(sent, (all) => [...all, frame]), base.send(frame))
    }
    const chat = yield* makeChatPeer
    const session = yield* makeSession({
      peerConnection: chat.peerConnection,
      ringTimeout: "10 seconds",
      ...options.session
    }).pipe(
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

/** A server on a free loopback port, for the test's scope. */
const localServer = (options: Partial<SympleServer.ServerOptions> = {}) =>
  SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1", ...options })

/** Both clients see each other in their rosters (so that offline presence reaches the other). */
const awaitRosters = (a: Party, b: Party) =>
  Effect.all([a, b].map((p) =>
    p.client.roster.changes.pipe(
      Stream.filter((peers) => [...peers].length >= 1),
      Stream.runHead
    )
  )).pipe(Effect.timeout("5 seconds"))

/** Clients that reconnect quickly, and call sessions with a short grace period. */
const reconnecting = (delay: number, maxDelay: number, gracePeriod: number) =>
  ({
    client: {
      reconnection: true,
      reconnectDelay: Duration.millis(delay),
      reconnectMaxDelay: Duration.millis(maxDelay)
    },
    session: { gracePeriod: Duration.millis(gracePeriod) }
  }) as const

/** alice and bob (each at its own URL), in each other's rosters, in an Active call with its data channel open. */
const activeCall = (urls: { readonly alice: string; readonly bob: string }, options: Parameters<typeof join>[2]) =>
  Effect.gen(function*() {
    const alice = yield* join(urls.alice, "alice", options)
    const bob = yield* join(urls.bob, "bob", options)
    yield* awaitRosters(alice, bob)
    yield* connect(alice, bob)
    const [aliceChannel, bobChannel] = yield* channels(alice, bob)
    return { alice, bob, aliceChannel, bobChannel }
  })

/** A server in a scope of its own, to stop it (and start another on its port) within a test. */
const startServer = (port: number) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const server = yield* SympleServer.makeWithDefaults({ port, host: "127.0.0.1" }).pipe(Scope.provide(scope))
    return { server, stop: Scope.close(scope, Exit.void) }
  })

/** `fixtures/callee.ts` in a process of its own; killed with the scope if the test has not killed it. */
const spawnCallee = (url: string) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess.ChildProcess; readonly address: string }, Error>((resume) => {
      const child = ChildProcess.spawn(
        process.execPath,
        ["--import", "tsx", "test/call/fixtures/callee.ts", url],
        { stdio: ["ignore", "pipe", "inherit"] }
      )
      let out = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        const match = /ready (\S+)/.exec(out)
        if (match !== null) resume(Effect.succeed({ child, address: match[1]! }))
      })
      child.on("exit", (code) => resume(Effect.fail(new Error(`callee exited (${code}): ${out}`))))
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

describe("call/e2e: two SympleClients on the project's server, real WebRTC (werift)", () => {
  it.live("call, data both ways, hang up; the server routes ordinary messages only", () =>
    Effect.gen(function*() {
      const server = yield* localServer()
      const alice = yield* join(server.url, "alice")
      const bob = yield* join(server.url, "bob")

      const answered = yield* answerNextCall(bob, (incoming) => expect(incoming.remote).toBe(alice.address))
      yield* alice.session.call(bob.address)
      yield* Fiber.join(answered)
      yield* Effect.all([waitFor(alice, "Active"), waitFor(bob, "Active")])

      const [aliceChannel, bobChannel] = yield* channels(alice, bob)
      yield* say(aliceChannel, bob, "hello bob")
      yield* say(bobChannel, alice, "hello alice")

      yield* bob.session.hangup()
      yield* expectEnded(bob, { callId: 1, remote: alice.address, reason: "hangup", by: "local" })
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "hangup", by: "remote" })
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

  it.live(
    "over the server: end-of-candidates markers are exchanged, and a track added later is renegotiated",
    () =>
      Effect.gen(function*() {
        const server = yield* localServer()
        const alice = yield* join(server.url, "alice")
        const bob = yield* join(server.url, "bob")
        yield* connect(alice, bob)
        // Each side received the other's end-of-candidates marker, as the last of its candidates.
        const candidates = (party: Party) =>
          Effect.map(Ref.get(party.received), (frames) => frames.filter((f) => f.subtype === "call:candidate"))
        yield* Effect.gen(function*() {
          while (true) {
            const all = [yield* candidates(alice), yield* candidates(bob)]
            if (all.every((c) => (c[c.length - 1]?.data as { candidate?: string } | undefined)?.candidate === "")) break
            yield* Effect.sleep("10 millis")
          }
        }).pipe(Effect.timeout("10 seconds"))
        // bob adds a track: his offer is answered by alice and applied, over the server, and the call goes on.
        const pcs = [alice.chat.created[0]!, bob.chat.created[0]!] as const
        pcs[1].addTransceiver("audio", { direction: "sendrecv" })
        yield* Effect.gen(function*() {
          while (
            !pcs[0].remoteDescription?.sdp.includes("m=audio") || pcs.some((pc) => pc.signalingState !== "stable")
          ) {
            yield* Effect.sleep("10 millis")
          }
        }).pipe(Effect.timeout("10 seconds"))
        expect(pcs[0].getTransceivers().map((t) => t.kind)).toEqual(["audio"])
        expect((yield* Ref.get(bob.sent)).filter((f) => f.subtype === "call:offer")).toHaveLength(1)
        expect((yield* Ref.get(alice.received)).filter((f) => f.subtype === "call:offer")).toHaveLength(1)
        expect(yield* alice.session.current).toMatchObject({ _tag: "Active", callId: 1 })
        const channel = yield* Deferred.await(bob.chat.open)
        channel.send("after the new track")
        expect(yield* Queue.take(alice.chat.received)).toBe("after the new track")
        expect([...(yield* Ref.get(alice.received)), ...(yield* Ref.get(bob.received))].every(Call.isStrict)).toBe(true)
      }),
    30_000
  )

  it.live(
    "the server's ICE servers, TURN credentials minted per user, reach each werift peer connection",
    () =>
      Effect.gen(function*() {
        const stun = { urls: "stun:127.0.0.1:9" }
        const turn = { secret: "north-wind", urls: ["turn:127.0.0.1:9?transport=udp"] }
        const server = yield* localServer({ iceServers: [stun], turn })
        const party = (user: string) =>
          Effect.gen(function*() {
            const client = yield* NodeSympleClient.make({ url: server.url, user, rooms: [room], reconnection: false })
            const self = yield* client.awaitOnline
            const created: Array<RTCPeerConnection> = []
            const session = yield* makeSession({
              // By default a session's peer connections get the ICE servers of the client's welcome.
              peerConnection: fromConstructor(RTCPeerConnection, {
                configuration: loopback,
                setup: (pc, call) => {
                  created.push(pc)
                  if (call.role === "caller") pc.createDataChannel("chat")
                }
              })
            }).pipe(Effect.provideService(Signaller, fromClient(client)))
            return { session, created, address: Peer.address(self) }
          })
        const alice = yield* party("alice")
        const bob = yield* party("bob")
        yield* alice.session.call(bob.address)
        yield* awaitState(bob.session, isTag("IncomingInit")).pipe(Effect.timeout("10 seconds"))
        yield* bob.session.accept()
        for (const [user, p] of [["alice", alice], ["bob", bob]] as const) {
          yield* Effect.gen(function*() {
            while (p.created.length === 0) yield* Effect.sleep("10 millis")
          }).pipe(Effect.timeout("10 seconds"))
          const configured = p.created[0]!.getConfiguration().iceServers
          expect(configured[0]).toEqual(stun)
          expect(configured[1]).toMatchObject({
            urls: turn.urls,
            username: expect.stringMatching(new RegExp(`^\\d+:${user}$`))
          })
          expect(configured[1]!.credential).toBe(IceServers.credential(turn.secret, configured[1]!.username!))
          // The rest of the configuration is the application's.
          expect(p.created[0]!.getConfiguration().iceUseIpv6).toBe(false)
        }
      }),
    30_000
  )

  it.live("closing the remote's client hangs up its call first", () =>
    Effect.gen(function*() {
      const server = yield* localServer()
      const alice = yield* join(server.url, "alice")
      const bob = yield* join(server.url, "bob")
      yield* awaitRosters(alice, bob)
      yield* connect(alice, bob)
      yield* bob.client.close
      // A hangup, not an offline presence, is what alice learns first: the call ends at once, not after a grace.
      yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "hangup", by: "remote" })
      expect(yield* bob.session.current).toMatchObject({ _tag: "Ended", reason: "hangup", by: "local" })
      expect((yield* Ref.get(alice.received)).map((f) => f.subtype)).toContain("call:hangup")
    }), 30_000)

  it.live(
    "the server restarted under an Active call: the call stays Active and its data channel still works",
    () =>
      Effect.gen(function*() {
        const first = yield* startServer(0)
        const port = first.server.port
        const { alice, aliceChannel, bob, bobChannel } = yield* activeCall(
          { alice: first.server.url, bob: first.server.url },
          reconnecting(50, 200, 1000)
        )
        yield* say(aliceChannel, bob, "before")

        yield* first.stop
        yield* startServer(port)
        // Both clients come back as new sessions (no resume), and each call follows the other to its new address.
        const addresses = yield* Effect.all([alice, bob].map((party) =>
          party.client.state.pipe(
            Stream.filterMap((s) =>
              s._tag === "Online" && Peer.address(s.peer) !== party.address
                ? Result.succeed(Peer.address(s.peer))
                : Result.failVoid
            ),
            Stream.runHead,
            Effect.flatMap(Effect.fromOption),
            Effect.timeout("10 seconds")
          )
        ))
        for (const [party, remote] of [[alice, addresses[1]!], [bob, addresses[0]!]] as const) {
          yield* party.session.state.pipe(
            Stream.filter((s) => s._tag === "Active" && s.remote === remote && !s.away),
            Stream.runHead,
            Effect.timeout("10 seconds")
          )
        }
        // Past the grace period: still Active, and the peer-to-peer channel never noticed.
        yield* Effect.sleep("1500 millis")
        expect(yield* alice.session.current).toMatchObject({ _tag: "Active", callId: 1, remote: addresses[1] })
        expect(yield* bob.session.current).toMatchObject({ _tag: "Active", callId: 1, remote: addresses[0] })
        yield* say(bobChannel, alice, "after")
        yield* say(aliceChannel, bob, "and back")
        // Signalling works too: bob's hangup reaches alice at her new address.
        yield* bob.session.hangup()
        yield* expectEnded(alice, { callId: 1, remote: addresses[1]!, reason: "hangup", by: "remote" })
      }),
    60_000
  )

  it.live(
    "a resume of either side under an Active call: the call stays Active, its data channel and signalling work on",
    () =>
      Effect.gen(function*() {
        const server = yield* localServer({ resumeWindow: 10_000 })
        const lines = { alice: yield* relay(server.port), bob: yield* relay(server.port) }
        const { alice, aliceChannel, bob, bobChannel } = yield* activeCall(
          { alice: lines.alice.url, bob: lines.bob.url },
          reconnecting(20, 100, 300)
        )
        // Every call state either side goes through from now on.
        const states = yield* Effect.all([alice, bob].map((party) =>
          Effect.gen(function*() {
            const seen: Array<CallState> = []
            yield* party.session.state.pipe(
              Stream.runForEach((s) => Effect.sync(() => seen.push(s))),
              Effect.forkScoped({ startImmediately: true })
            )
            return seen
          })
        ))

        for (const [party, line, other] of [[alice, lines.alice, bob], [bob, lines.bob, alice]] as const) {
          yield* line.down
          yield* party.client.state.pipe(Stream.filter((s) => s._tag !== "Online"), Stream.runHead)
          yield* Effect.gen(function*() {
            while ((yield* server.connectionCount) !== 1) yield* Effect.sleep(10)
          }).pipe(Effect.timeout("5 seconds"))
          // The peers' own channel never needed the server.
          const [mine, theirs] = party === alice ? [aliceChannel, bob] : [bobChannel, alice]
          yield* say(mine, theirs, `during ${party.address}`)
          yield* line.up
          const back = yield* party.client.state.pipe(
            Stream.filter((s) => s._tag === "Online"),
            Stream.runHead,
            Effect.flatMap(Effect.fromOption),
            Effect.timeout("5 seconds")
          )
          // The same session: the same address, which the other side's call still points at.
          expect(back._tag === "Online" && Peer.address(back.peer)).toBe(party.address)
          expect(yield* other.session.current).toMatchObject({ _tag: "Active", remote: party.address, away: false })
        }
        // Past the grace period: neither call moved at all.
        yield* Effect.sleep("500 millis")
        for (const seen of states) {
          expect(seen.map((s) => s._tag)).toEqual(["Active"])
          expect(seen[0]).toMatchObject({ callId: 1, away: false })
        }
        yield* say(bobChannel, alice, "after")
        yield* say(aliceChannel, bob, "and back")
        // Signalling through the resumed sessions: bob's hangup reaches alice.
        yield* bob.session.hangup()
        yield* expectEnded(alice, { callId: 1, remote: bob.address, reason: "hangup", by: "remote" })
      }),
    60_000
  )

  it.live(
    "the remote process killed: the call ends after the grace period with reason offline",
    () =>
      Effect.gen(function*() {
        // The killed peer's session is held for the resume window, then announced offline.
        const server = yield* localServer({ resumeWindow: 300 })
        const callee = yield* spawnCallee(server.url)
        const alice = yield* join(server.url, "alice", { session: { gracePeriod: "1 second" } })
        yield* alice.client.roster.changes.pipe(
          Stream.filter((peers) => [...peers].some(([, p]) => Peer.address(p) === callee.address)),
          Stream.runHead,
          Effect.timeout("10 seconds")
        )
        yield* alice.session.call(callee.address)
        yield* waitFor(alice, "Active")
        const channel = yield* Deferred.await(alice.chat.open)
        channel.send("ping")
        expect(yield* Queue.take(alice.chat.received)).toBe("echo ping")

        callee.child.kill("SIGKILL")
        // The server reports it offline; the call holds on for the grace period, then ends.
        yield* alice.session.state.pipe(
          Stream.filter((s) => s._tag === "Active" && s.away),
          Stream.runHead,
          Effect.timeout("10 seconds")
        )
        yield* expectEnded(alice, { callId: 1, remote: callee.address, reason: "offline", by: "remote" })
        expect(alice.chat.created.map((pc) => pc.connectionState)).toEqual(["closed"])
      }),
    60_000
  )

  it.live(
    "calling a user rings both of its clients: each accept order, and a rejection on one device",
    () =>
      Effect.gen(function*() {
        const server = yield* localServer()
        const alice = yield* join(server.url, "alice")
        const devices = [yield* join(server.url, "bob"), yield* join(server.url, "bob")] as const
        // alice rings the sessions her roster lists for bob.
        yield* alice.client.roster.changes.pipe(
          Stream.filter((peers) => [...peers].filter(([, p]) => p.user === "bob").length === 2),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        const received = (party: Party, subtype: string) =>
          Effect.map(Ref.get(party.received), (frames) => frames.filter((f) => f.subtype === subtype))

        for (const [round, first] of [[1, 0], [2, 1]] as const) {
          const winner = devices[first]
          const loser = devices[1 - first]!
          yield* alice.session.call("bob")
          yield* Effect.all(devices.map((d) => waitFor(d, "IncomingInit")))
          yield* winner.session.accept()
          yield* expectEnded(loser, {
            callId: round,
            remote: alice.address,
            reason: "answered-elsewhere",
            by: "remote"
          })
          expect((yield* Effect.all([waitFor(alice, "Active"), waitFor(winner, "Active")]))[0].remote).toBe(
            winner.address
          )
          yield* alice.session.hangup()
          yield* Effect.all([waitFor(alice, "Ended"), waitFor(winner, "Ended")])
          // The losing device (a different one each round) was told exactly once.
          const told = (yield* received(loser, "call:hangup")).filter((f) =>
            (f.data as { reason?: string }).reason === "answered-elsewhere"
          )
          expect(told).toHaveLength(1)
        }

        // Round 3: the first device says no, the second picks up.
        yield* alice.session.call("bob")
        yield* Effect.all(devices.map((d) => waitFor(d, "IncomingInit")))
        yield* devices[0].session.reject()
        yield* alice.session.state.pipe(
          Stream.filter((s) => s._tag === "OutgoingInit" && s.ringing.length === 1),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        yield* devices[1].session.accept()
        expect((yield* waitFor(alice, "Active")).remote).toBe(devices[1].address)
        yield* devices[1].session.hangup()
        expect(yield* waitFor(alice, "Ended")).toMatchObject({ callId: 3, reason: "hangup", by: "remote" })

        // Round 4: both say no: declined.
        yield* alice.session.call("bob")
        yield* Effect.all(devices.map((d) => waitFor(d, "IncomingInit")))
        yield* Effect.all(devices.map((d) => d.session.reject()))
        yield* expectEnded(alice, { callId: 4, remote: "bob", reason: "declined", by: "remote" })
        // Every frame on the wire was a strict call frame from its true sender.
        for (const party of [alice, ...devices]) {
          expect((yield* Ref.get(party.received)).every(Call.isStrict)).toBe(true)
        }
        expect((yield* server.stats).refused).toBe(0)
      }),
    60_000
  )

  it.live(
    "as layers: a session provided inside another one signals through its own client",
    () =>
      Effect.gen(function*() {
        const server = yield* localServer()
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
            expect(yield* within("Active", alice)).toMatchObject(
              { _tag: "Active", callId: 1, remote: bobAddress, role: "caller" }
            )
            expect(yield* within("Active", bob)).toMatchObject(
              { _tag: "Active", callId: 1, remote: aliceAddress, role: "callee" }
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
