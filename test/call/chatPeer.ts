import { Deferred, Effect, Exit, Queue } from "effect"
import { type RTCDataChannel, RTCPeerConnection } from "werift"
import type { CallInfo } from "../../src/call/CallSession.js"

/** Loopback only: the test needs no network beyond this machine. */
export const loopback = {
  iceUseIpv6: false,
  iceInterfaceAddresses: { udp4: "127.0.0.1" },
  iceAdditionalHostAddresses: ["127.0.0.1"]
}

export interface ChatPeer {
  /** The factory to hand a CallSession: werift peer connections with a data channel "chat". */
  readonly peerConnection: (call: CallInfo) => Effect.Effect<RTCPeerConnection>
  /** Completes when the data channel is open (either side). */
  readonly open: Deferred.Deferred<RTCDataChannel>
  readonly received: Queue.Queue<string>
  /** Every peer connection created, to check they were all closed. */
  readonly created: Array<RTCPeerConnection>
}

/** A werift-backed peer: the caller opens a data channel, the callee picks it up; messages land in `received`. */
export const makeChatPeer = Effect.gen(function*() {
  const open = yield* Deferred.make<RTCDataChannel>()
  const received = yield* Queue.unbounded<string>()
  const created: Array<RTCPeerConnection> = []
  const wire = (channel: RTCDataChannel) => {
    channel.onmessage = (event) => {
      Queue.offerUnsafe(received, String(event.data))
    }
    if (channel.readyState === "open") Deferred.doneUnsafe(open, Exit.succeed(channel))
    else channel.onopen = () => Deferred.doneUnsafe(open, Exit.succeed(channel))
  }
  const peerConnection = (call: CallInfo) =>
    Effect.sync(() => {
      const pc = new RTCPeerConnection(loopback)
      created.push(pc)
      if (call.role === "caller") wire(pc.createDataChannel("chat"))
      else pc.ondatachannel = (event) => wire(event.channel)
      return pc
    })
  return { peerConnection, open, received, created } satisfies ChatPeer
})
