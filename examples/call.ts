/**
 * Two peers call each other over a local Symple server: Symple carries the WebRTC signalling (call:init, accept,
 * offer, answer, candidates, hangup), werift makes the real peer-to-peer connection, and a data channel carries a
 * chat message each way before Alice hangs up.
 *
 *   npx tsx examples/call.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Deferred, Effect, Exit, Stream } from "effect"
import { type RTCDataChannel, RTCPeerConnection } from "werift"
import * as CallSession from "../src/call/CallSession.js"
import * as Signaller from "../src/call/Signaller.js"
import * as NodeSympleClient from "../src/client/NodeSympleClient.js"
import * as SympleServer from "../src/server/SympleServer.js"

const peer = (url: string, user: string) =>
  Effect.gen(function*() {
    const client = yield* NodeSympleClient.make({ url, user, rooms: ["friends"] })
    yield* client.awaitOnline
    const channel = yield* Deferred.make<RTCDataChannel>()
    const wire = (dc: RTCDataChannel) => {
      dc.onmessage = (event) => console.log(`${user} got: ${String(event.data)}`)
      dc.onopen = () => Deferred.doneUnsafe(channel, Exit.succeed(dc))
      if (dc.readyState === "open") Deferred.doneUnsafe(channel, Exit.succeed(dc))
    }
    const signaller = Signaller.fromClient(client)
    const session = yield* CallSession.make({
      // The caller adds its data channel (or media tracks) before the offer; the callee receives it.
      peerConnection: ({ role }) =>
        Effect.sync(() => {
          const pc = new RTCPeerConnection({ iceUseIpv6: false, iceAdditionalHostAddresses: ["127.0.0.1"] })
          if (role === "caller") wire(pc.createDataChannel("chat"))
          else pc.ondatachannel = ({ channel }) => wire(channel)
          return pc
        }),
      ringTimeout: "10 seconds"
    }).pipe(Effect.provideService(Signaller.Signaller, signaller))
    yield* session.state.pipe(Stream.runForEach((s) => Effect.log(`${user}: ${s._tag}`)), Effect.forkScoped)
    return { session, channel, address: signaller.address }
  })

const program = Effect.gen(function*() {
  const server = yield* SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1" })
  const alice = yield* peer(server.url, "alice")
  const bob = yield* peer(server.url, "bob")

  // Bob picks up whoever calls.
  yield* bob.session.incomingCall.pipe(
    Stream.runForEach((call) =>
      Effect.log(`bob: ${call.remote} is calling`).pipe(Effect.andThen(bob.session.accept()))
    ),
    Effect.forkScoped
  )
  yield* Effect.yieldNow

  yield* alice.session.call(yield* bob.address)
  const [toBob, toAlice] = yield* Effect.all([Deferred.await(alice.channel), Deferred.await(bob.channel)])
  toBob.send("Hi Bob, this went peer to peer")
  toAlice.send("Hi Alice, loud and clear")
  yield* Effect.sleep("200 millis")

  yield* alice.session.hangup()
  yield* CallSession.awaitState(bob.session, CallSession.isTag("Ended"))
  yield* Effect.log("call over")
})

NodeRuntime.runMain(Effect.scoped(program))
