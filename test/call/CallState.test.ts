import { describe, expect, it } from "@effect/vitest"
import { CallState, initial, Input, Instruction, transition } from "../../src/call/CallState.js"
import type { Step } from "../../src/call/CallState.js"
import * as Address from "../../src/protocol/Address.js"
import * as Call from "../../src/protocol/Call.js"
import { fc } from "../support/prop.js"

const self = "me|m1"
const context = { self }
// "aa|.." sorts below "me|m1" and "zz|.." above it: both sides of the glare rule get exercised.
const peers = ["aa|a1", "zz|z9", "bob|b2", self] as const

type MakeInput = (state: CallState) => Input

const peer = fc.constantFrom(...peers)
const reason = fc.constantFrom("declined", "busy", "hangup", "")
const candidate = fc.record({
  candidate: fc.constantFrom("candidate:1 1 udp 1 127.0.0.1 9 typ host", "candidate:2 1 udp 1 127.0.0.1 8 typ host"),
  sdpMid: fc.constant("0")
})
const signal: fc.Arbitrary<Call.Signal> = fc.oneof(
  fc.constant(Call.Signal.Init()),
  fc.constant(Call.Signal.Accept()),
  reason.map((r) => Call.Signal.Reject({ reason: r })),
  reason.map((r) => Call.Signal.Hangup({ reason: r })),
  fc.constant(Call.Signal.Offer({ sdp: "v=0 offer" })),
  fc.constant(Call.Signal.Answer({ sdp: "v=0 answer" })),
  candidate.map((c) => Call.Signal.Candidate({ candidate: c }))
)
// Most pc/timer inputs should hit the current call to reach deep states; some are stale or from the future.
const callId = (state: CallState, offset: number) => Math.max(0, state.callId + offset)
const offset = fc.constantFrom(0, 0, 0, -1, 1)
/** A remote frame is from the current remote most of the time, else from anyone. */
const sender = fc.tuple(fc.boolean(), peer).map(([current, p]) => (state: CallState) =>
  current && state._tag !== "Idle" ? state.remote : p
)

/** The input that moves a call forward from where it is, so that deep states are reached often. */
const forward: MakeInput = (state) => {
  switch (state._tag) {
    case "Idle":
    case "Ended":
      return state.callId % 2 === 0
        ? Input.Dial({ remote: "bob|b2" })
        : Input.Remote({ from: "zz|z9", signal: Call.Signal.Init() })
    case "OutgoingInit":
      return Input.Remote({ from: state.remote, signal: Call.Signal.Accept() })
    case "IncomingInit":
      return Input.Accept()
    case "Negotiating":
      if (state.remoteDescription) return Input.Connected({ callId: state.callId })
      return Input.Remote({
        from: state.remote,
        signal: state.role === "caller" ? Call.Signal.Answer({ sdp: "v=0" }) : Call.Signal.Offer({ sdp: "v=0" })
      })
    case "Active":
      return Input.Remote({ from: state.remote, signal: Call.Signal.Hangup({ reason: "hangup" }) })
    case "Ending":
      return Input.Closed({ callId: state.callId })
  }
}

const input: fc.Arbitrary<MakeInput> = fc.oneof(
  fc.constant(forward),
  fc.constant(forward),
  fc.constant(forward),
  fc.constant(forward),
  peer.map((remote) => () => Input.Dial({ remote })),
  fc.constant(() => Input.Accept()),
  reason.map((r) => () => Input.Reject({ reason: r })),
  reason.map((r) => () => Input.Hangup({ reason: r })),
  fc.tuple(sender, signal).map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  fc.tuple(sender, signal).map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  sender.map((from) => (state: CallState) => Input.PeerOffline({ address: from(state) })),
  offset.map((o) => (state: CallState) => Input.RingTimeout({ callId: callId(state, o) })),
  fc.tuple(offset, candidate).map(([o, c]) => (state: CallState) =>
    Input.LocalCandidate({ callId: callId(state, o), candidate: c })
  ),
  offset.map((o) => (state: CallState) => Input.Connected({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.PeerFailed({ callId: callId(state, o), message: "x" })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) }))
)

const remoteOf = (state: CallState) => state._tag === "Idle" ? undefined : state.remote

const checkStep = (before: CallState, event: Input, step: Step) => {
  const after = step.state
  // Legal state.
  expect(["Idle", "OutgoingInit", "IncomingInit", "Negotiating", "Active", "Ending", "Ended"]).toContain(after._tag)
  if (after._tag !== "Idle") {
    expect(Address.isFull(Address.parse(after.remote))).toBe(true)
    expect(after.remote).not.toBe(self)
  }
  if (after._tag === "Negotiating" && after.remoteDescription) expect(after.pending).toEqual([])
  // Call numbers only move forward, by one, when a call starts ringing.
  if (after.callId !== before.callId) {
    expect(after.callId).toBe(before.callId + 1)
    expect(["OutgoingInit", "IncomingInit"]).toContain(after._tag)
  }
  if (step.ignored) {
    expect(after).toBe(before)
    expect(step.instructions).toEqual([])
  }
  // A signal from anyone but the current remote never moves a call (init aside).
  if (event._tag === "Remote" && event.signal._tag !== "Init" && event.from !== remoteOf(before)) {
    expect(step.ignored).toBe(true)
  }
  for (const instruction of step.instructions) {
    switch (instruction._tag) {
      case "Send": {
        expect(Address.isFull(Address.parse(instruction.to))).toBe(true)
        expect(instruction.to).not.toBe(self)
        expect(Call.isStrict(Call.message(instruction.to, instruction.signal))).toBe(true)
        const party = instruction.to === remoteOf(after) || instruction.to === remoteOf(before)
        // Strangers only ever hear "busy".
        if (!party) expect(instruction.signal).toEqual(Call.Signal.Reject({ reason: "busy" }))
        if (["Offer", "Answer", "Candidate"].includes(instruction.signal._tag)) {
          expect(["Negotiating", "Active"]).toContain(after._tag)
        }
        break
      }
      case "AddCandidate":
        expect(after._tag === "Active" || (after._tag === "Negotiating" && after.remoteDescription)).toBe(true)
        expect(instruction.callId).toBe(after.callId)
        break
      case "SendOffer":
      case "AnswerOffer":
      case "ApplyAnswer":
      case "OpenPeer":
        expect(after._tag).toBe("Negotiating")
        expect(instruction.callId).toBe(after.callId)
        break
      case "ClosePeer":
        expect(after._tag).toBe("Ending")
        break
      default:
        break
    }
  }
}

const runAll = (state: CallState, inputs: ReadonlyArray<Input>) =>
  inputs.reduce((s, i) => transition(context, s, i).state, state)

describe("call/CallState", () => {
  it("any interleaving keeps the machine legal, and every call can be ended", () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(fc.array(input, { maxLength: 60 }), (makers) => {
        let state = initial
        for (const make of makers) {
          const event = make(state)
          const step = transition(context, state, event)
          checkStep(state, event, step)
          state = step.state
          seen.add(state._tag)
        }
        // Liveness: a local hangup plus the peer connection closing always lands in Idle or Ended.
        const end = runAll(state, [Input.Hangup({ reason: "hangup" }), Input.Closed({ callId: state.callId })])
        expect(["Idle", "Ended"]).toContain(end._tag)
      }),
      { numRuns: 2000 }
    )
    // The generator is only worth something if it drives calls through every stage.
    expect([...seen].sort()).toEqual([
      "Active",
      "Ended",
      "Ending",
      "Idle",
      "IncomingInit",
      "Negotiating",
      "OutgoingInit"
    ])
  })

  it("caller and callee happy path", () => {
    const bob = "bob|b2"
    let step = transition(context, initial, Input.Dial({ remote: bob }))
    expect(step.state).toEqual(CallState.OutgoingInit({ callId: 1, remote: bob }))
    expect(step.instructions).toEqual([
      Instruction.Send({ to: bob, signal: Call.Signal.Init() }),
      Instruction.StartRingTimer({ callId: 1 })
    ])
    step = transition(context, step.state, Input.Remote({ from: bob, signal: Call.Signal.Accept() }))
    expect(step.state._tag).toBe("Negotiating")
    expect(step.instructions.map((i) => i._tag)).toEqual(["StartRingTimer", "OpenPeer", "SendOffer"])
    // Candidates before the answer wait; the answer flushes them after the remote description.
    const c1 = { candidate: "candidate:1", sdpMid: "0" }
    const c2 = { candidate: "candidate:2", sdpMid: "0" }
    for (const candidate of [c1, c2]) {
      step = transition(context, step.state, Input.Remote({ from: bob, signal: Call.Signal.Candidate({ candidate }) }))
    }
    expect(step.instructions).toEqual([])
    step = transition(context, step.state, Input.Remote({ from: bob, signal: Call.Signal.Answer({ sdp: "v=0" }) }))
    expect(step.instructions).toEqual([
      Instruction.ApplyAnswer({ callId: 1, sdp: "v=0" }),
      Instruction.AddCandidate({ callId: 1, candidate: c1 }),
      Instruction.AddCandidate({ callId: 1, candidate: c2 })
    ])
    step = transition(context, step.state, Input.Connected({ callId: 1 }))
    expect(step.state).toEqual(CallState.Active({ callId: 1, remote: bob, role: "caller" }))
    step = transition(context, step.state, Input.Hangup({ reason: "hangup" }))
    expect(step.state._tag).toBe("Ending")
    expect(step.instructions).toEqual([
      Instruction.Send({ to: bob, signal: Call.Signal.Hangup({ reason: "hangup" }) }),
      Instruction.ClosePeer({ callId: 1 })
    ])
    step = transition(context, step.state, Input.Closed({ callId: 1 }))
    expect(step.state).toEqual(CallState.Ended({ callId: 1, remote: bob, reason: "hangup", by: "local" }))
  })

  it("a second init during a call is answered busy and changes nothing", () => {
    const ringing = CallState.IncomingInit({ callId: 1, remote: "bob|b2" })
    const step = transition(context, ringing, Input.Remote({ from: "zz|z9", signal: Call.Signal.Init() }))
    expect(step.state).toBe(ringing)
    expect(step.instructions).toEqual([
      Instruction.Send({ to: "zz|z9", signal: Call.Signal.Reject({ reason: "busy" }) })
    ])
    // The same peer repeating its init is a duplicate, not a second call.
    const duplicate = Input.Remote({ from: "bob|b2", signal: Call.Signal.Init() })
    expect(transition(context, ringing, duplicate).ignored).toBe(true)
  })

  it("glare: the lower address keeps its call, the higher one answers it", () => {
    // We are me|m1. Against zz|z9 we are lower: we ignore their init and keep ringing them.
    const toHigher = CallState.OutgoingInit({ callId: 1, remote: "zz|z9" })
    const theirs = Input.Remote({ from: "zz|z9", signal: Call.Signal.Init() })
    expect(transition(context, toHigher, theirs).ignored).toBe(true)
    // Against aa|a1 we are higher: we accept their call instead.
    const toLower = CallState.OutgoingInit({ callId: 1, remote: "aa|a1" })
    const step = transition(context, toLower, Input.Remote({ from: "aa|a1", signal: Call.Signal.Init() }))
    expect(step.state).toEqual(
      CallState.Negotiating({ callId: 1, remote: "aa|a1", role: "callee", remoteDescription: false, pending: [] })
    )
    expect(step.instructions).toEqual([
      Instruction.Send({ to: "aa|a1", signal: Call.Signal.Accept() }),
      Instruction.StartRingTimer({ callId: 1 }),
      Instruction.OpenPeer({ callId: 1, remote: "aa|a1", role: "callee" })
    ])
  })

  it("ring timeout ends only the call it was started for", () => {
    const ringing = CallState.OutgoingInit({ callId: 2, remote: "bob|b2" })
    expect(transition(context, ringing, Input.RingTimeout({ callId: 1 })).ignored).toBe(true)
    const step = transition(context, ringing, Input.RingTimeout({ callId: 2 }))
    expect(step.state).toEqual(CallState.Ending({ callId: 2, remote: "bob|b2", reason: "timeout", by: "local" }))
    expect(step.instructions[0]).toEqual(
      Instruction.Send({ to: "bob|b2", signal: Call.Signal.Hangup({ reason: "timeout" }) })
    )
    // Accepted but never connected: the restarted timer ends it too; once connected, the timer is moot.
    const stuck = CallState.Negotiating({
      callId: 2,
      remote: "bob|b2",
      role: "caller",
      remoteDescription: true,
      pending: []
    })
    expect(transition(context, stuck, Input.RingTimeout({ callId: 2 })).state._tag).toBe("Ending")
    const active = CallState.Active({ callId: 2, remote: "bob|b2", role: "caller" })
    expect(transition(context, active, Input.RingTimeout({ callId: 2 })).ignored).toBe(true)
  })

  it("the remote going offline ends the call without a signal", () => {
    const active = CallState.Active({ callId: 3, remote: "bob|b2", role: "callee" })
    expect(transition(context, active, Input.PeerOffline({ address: "zz|z9" })).ignored).toBe(true)
    const step = transition(context, active, Input.PeerOffline({ address: "bob|b2" }))
    expect(step.state).toEqual(CallState.Ending({ callId: 3, remote: "bob|b2", reason: "offline", by: "remote" }))
    expect(step.instructions).toEqual([Instruction.ClosePeer({ callId: 3 })])
  })
})
