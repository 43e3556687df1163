import { describe, expect, it } from "@effect/vitest"
import { CallState, initial, Input, Instruction, partiesOf, transition } from "../../src/call/CallState.js"
import type { Step } from "../../src/call/CallState.js"
import * as Address from "../../src/protocol/Address.js"
import * as Call from "../../src/protocol/Call.js"
import { fc } from "../support/prop.js"

const self = "me|m1"
const context = { self }
// "aa|.." sorts below "me|m1" and "zz|.." above it: both sides of the glare rule get exercised. bob has two sessions
// (multi-device ringing), and so do we ("me|m2" is our other device).
const peers = ["aa|a1", "zz|z9", "bob|b2", "bob|b3", "me|m2", self] as const

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
/** A remote frame is from a party of the current call most of the time (any of the sessions ringing), else anyone. */
const sender = fc.tuple(fc.boolean(), fc.nat(3), peer).map(([current, index, p]) => (state: CallState) => {
  const parties = partiesOf(state)
  return current && parties.length > 0 ? parties[index % parties.length]! : p
})
/** Whom to call: a user (every session rings), a full address, ourselves, or someone unknown. */
const target = fc.constantFrom("bob", "bob", "bob|b2", "aa|a1", "zz|z9", "me", self, "nobody", "bob|")
/** The sessions the roster reports for the call (the machine keeps those that belong to the target). */
const sessions = fc.subarray([...peers], { minLength: 0 })

/** The input that moves a call forward from where it is, so that deep states are reached often. */
const forward: MakeInput = (state) => {
  switch (state._tag) {
    case "Idle":
    case "Ended":
      return state.callId % 2 === 0
        ? Input.Dial({ remote: "bob", sessions: ["bob|b2", "bob|b3"] })
        : Input.Remote({ from: "zz|z9", signal: Call.Signal.Init() })
    case "OutgoingInit":
      return Input.Remote({ from: state.ringing[state.callId % state.ringing.length]!, signal: Call.Signal.Accept() })
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
  fc.tuple(target, sessions).map(([remote, s]) => () => Input.Dial({ remote, sessions: s })),
  fc.constant(() => Input.Accept()),
  reason.map((r) => () => Input.Reject({ reason: r })),
  fc.option(reason).map((r) => () => Input.Hangup(r === null ? {} : { reason: r })),
  fc.tuple(sender, signal).map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  fc.tuple(sender, signal).map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  fc.tuple(sender, fc.constantFrom(Call.Signal.Reject({ reason: "declined" }), Call.Signal.Reject({ reason: "busy" })))
    .map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  sender.map((from) => (state: CallState) => Input.PeerOffline({ address: from(state) })),
  offset.map((o) => (state: CallState) => Input.Timeout({ callId: callId(state, o), timer: "ring" })),
  fc.tuple(offset, candidate).map(([o, c]) => (state: CallState) =>
    Input.LocalCandidate({ callId: callId(state, o), candidate: c })
  ),
  offset.map((o) => (state: CallState) => Input.Connected({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.PeerFailed({ callId: callId(state, o), message: "x" })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) }))
)

const remoteOf = (state: CallState) => state._tag === "Idle" ? undefined : state.remote
const isFull = (address: string) => Address.isFull(Address.parse(address))

/** What the property remembers of the current call across steps. */
interface Ledger {
  callId: number
  /** Sessions sent `call:init` for this call. */
  rung: Set<string>
  /** Sessions sent `call:hangup` for this call. */
  hungUp: Set<string>
}

const checkStep = (before: CallState, event: Input, step: Step, ledger: Ledger) => {
  const after = step.state
  // Legal state.
  expect(["Idle", "OutgoingInit", "IncomingInit", "Negotiating", "Active", "Ending", "Ended"]).toContain(after._tag)
  if (after._tag !== "Idle") {
    // Only a call ringing out (and how it ended) may name a user rather than a session.
    if (after._tag === "IncomingInit" || after._tag === "Negotiating" || after._tag === "Active") {
      expect(isFull(after.remote)).toBe(true)
    } else {
      expect(isFull(after.remote) || !Address.hasSeparator(after.remote)).toBe(true)
      expect(after.remote).not.toBe("")
    }
    expect(after.remote).not.toBe(self)
  }
  if (after._tag === "OutgoingInit") {
    expect(after.ringing.length).toBeGreaterThan(0)
    for (const session of after.ringing) {
      expect(isFull(session)).toBe(true)
      expect(session).not.toBe(self)
      // Every session that rings belongs to whoever was called.
      expect(Address.parse(session).user).toBe(Address.parse(after.remote).user)
    }
    expect(new Set(after.ringing).size).toBe(after.ringing.length)
  }
  if (after._tag === "Negotiating" && after.remoteDescription) expect(after.pending).toEqual([])
  // Call numbers only move forward, by one, when a call starts ringing.
  if (after.callId !== before.callId) {
    expect(after.callId).toBe(before.callId + 1)
    expect(["OutgoingInit", "IncomingInit"]).toContain(after._tag)
    ledger.callId = after.callId
    ledger.rung = new Set()
    ledger.hungUp = new Set()
  }
  if (step.ignored) {
    expect(after).toBe(before)
    expect(step.instructions).toEqual([])
  }
  // A signal from anyone but a party of the current call never moves it (init aside).
  if (event._tag === "Remote" && event.signal._tag !== "Init" && !partiesOf(before).includes(event.from)) {
    expect(step.ignored).toBe(true)
  }
  const parties = new Set([...partiesOf(before), ...partiesOf(after)])
  for (const instruction of step.instructions) {
    switch (instruction._tag) {
      case "Send": {
        expect(isFull(instruction.to)).toBe(true)
        expect(instruction.to).not.toBe(self)
        expect(Call.isStrict(Call.message(instruction.to, instruction.signal))).toBe(true)
        // Strangers only ever hear "busy".
        if (!parties.has(instruction.to)) {
          expect(instruction.signal).toEqual(Call.Signal.Reject({ reason: "busy" }))
        }
        if (["Offer", "Answer", "Candidate"].includes(instruction.signal._tag)) {
          expect(["Negotiating", "Active"]).toContain(after._tag)
        }
        if (instruction.signal._tag === "Init") ledger.rung.add(instruction.to)
        if (instruction.signal._tag === "Hangup") {
          // No hangup is sent twice to the same session for the same call.
          expect(ledger.hungUp.has(instruction.to)).toBe(false)
          ledger.hungUp.add(instruction.to)
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
  // No call is left ringing: a session stops ringing only because it answered, said no or went offline itself
  // (the input is about it), or because it was sent a hangup.
  if (before._tag === "OutgoingInit" && !step.ignored) {
    const still = after._tag === "OutgoingInit" && after.callId === before.callId ? after.ringing : []
    const subject = event._tag === "Remote" ? event.from : event._tag === "PeerOffline" ? event.address : undefined
    for (const session of before.ringing) {
      if (still.includes(session)) continue
      const answered = after._tag === "Negotiating" && after.remote === session
      const toldOff = step.instructions.some((i) => i._tag === "Send" && i.to === session && i.signal._tag === "Hangup")
      expect(answered || toldOff || subject === session).toBe(true)
    }
  }
}

const runAll = (state: CallState, inputs: ReadonlyArray<Input>) =>
  inputs.reduce((s, i) => transition(context, s, i).state, state)

const steps = (state: CallState, inputs: ReadonlyArray<Input>) => {
  const out: Array<Step> = []
  for (const i of inputs) {
    const step = transition(context, out.length === 0 ? state : out[out.length - 1]!.state, i)
    out.push(step)
  }
  return out
}

const sent = (step: Step) => step.instructions.flatMap((i) => i._tag === "Send" ? [[i.to, i.signal] as const] : [])

describe("call/CallState", () => {
  it("any interleaving keeps the machine legal, leaves no call ringing, and never hangs up twice", () => {
    const seen = new Set<string>()
    let multiDevice = 0
    fc.assert(
      fc.property(fc.array(input, { maxLength: 60 }), (makers) => {
        let state = initial
        const ledger: Ledger = { callId: 0, rung: new Set(), hungUp: new Set() }
        for (const make of makers) {
          const event = make(state)
          const step = transition(context, state, event)
          checkStep(state, event, step, ledger)
          state = step.state
          seen.add(state._tag)
          if (state._tag === "OutgoingInit" && state.ringing.length > 1) multiDevice++
        }
        // Liveness: a local hangup plus the peer connection closing always lands in Idle or Ended, and every session
        // that rang and was not answered nor said no has been told.
        const hangup = transition(context, state, Input.Hangup({}))
        checkStep(state, Input.Hangup({}), hangup, ledger)
        const end = transition(context, hangup.state, Input.Closed({ callId: state.callId }))
        expect(["Idle", "Ended"]).toContain(end.state._tag)
      }),
      { numRuns: 2000 }
    )
    // The generator is only worth something if it drives calls through every stage, and rings several devices.
    expect([...seen].sort()).toEqual([
      "Active",
      "Ended",
      "Ending",
      "Idle",
      "IncomingInit",
      "Negotiating",
      "OutgoingInit"
    ])
    expect(multiDevice).toBeGreaterThan(100)
  })

  it("caller and callee happy path", () => {
    const bob = "bob|b2"
    let step = transition(context, initial, Input.Dial({ remote: bob, sessions: [] }))
    expect(step.state).toEqual(CallState.OutgoingInit({ callId: 1, remote: bob, ringing: [bob], declined: [] }))
    expect(step.instructions).toEqual([
      Instruction.Send({ to: bob, signal: Call.Signal.Init() }),
      Instruction.StartTimer({ callId: 1, timer: "ring" })
    ])
    step = transition(context, step.state, Input.Remote({ from: bob, signal: Call.Signal.Accept() }))
    expect(step.state._tag).toBe("Negotiating")
    expect(step.instructions.map((i) => i._tag)).toEqual(["StartTimer", "OpenPeer", "SendOffer"])
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
    expect(step.instructions).toEqual([Instruction.StopTimer({ timer: "ring" })])
    step = transition(context, step.state, Input.Hangup({}))
    expect(step.state._tag).toBe("Ending")
    expect(step.instructions).toEqual([
      Instruction.Send({ to: bob, signal: Call.Signal.Hangup({ reason: "hangup" }) }),
      Instruction.ClosePeer({ callId: 1 })
    ])
    step = transition(context, step.state, Input.Closed({ callId: 1 }))
    expect(step.state).toEqual(CallState.Ended({ callId: 1, remote: bob, reason: "hangup", by: "local" }))
  })

  it("calling a user rings each of its sessions; the first accept wins, the others hear answered-elsewhere", () => {
    // The roster may list sessions of other users and ourselves: only the called user's sessions ring.
    const dial = Input.Dial({ remote: "bob", sessions: ["bob|b2", "aa|a1", "bob|b3", self, "bob|b2"] })
    const ringing = transition(context, initial, dial)
    expect(ringing.state).toEqual(
      CallState.OutgoingInit({ callId: 1, remote: "bob", ringing: ["bob|b2", "bob|b3"], declined: [] })
    )
    expect(sent(ringing)).toEqual([["bob|b2", Call.Signal.Init()], ["bob|b3", Call.Signal.Init()]])
    for (const [winner, loser] of [["bob|b2", "bob|b3"], ["bob|b3", "bob|b2"]] as const) {
      const accepted = transition(context, ringing.state, Input.Remote({ from: winner, signal: Call.Signal.Accept() }))
      expect(accepted.state).toEqual(
        CallState.Negotiating({ callId: 1, remote: winner, role: "caller", remoteDescription: false, pending: [] })
      )
      expect(sent(accepted)).toEqual([[loser, Call.Signal.Hangup({ reason: "answered-elsewhere" })]])
      expect(accepted.instructions).toContainEqual(Instruction.OpenPeer({ callId: 1, remote: winner, role: "caller" }))
      // The loser's accept, crossing our hangup on the wire, changes nothing and is answered by nothing.
      const late = transition(context, accepted.state, Input.Remote({ from: loser, signal: Call.Signal.Accept() }))
      expect(late.ignored).toBe(true)
    }
  })

  it("a rejection stops one device ringing; the call fails once every device has said no", () => {
    const ringing = CallState.OutgoingInit({ callId: 1, remote: "bob", ringing: ["bob|b2", "bob|b3"], declined: [] })
    const reject = (from: string, reason: string) => Input.Remote({ from, signal: Call.Signal.Reject({ reason }) })
    const [one, two] = steps(ringing, [reject("bob|b2", "declined"), reject("bob|b3", "busy")])
    expect(one!.state).toEqual(
      CallState.OutgoingInit({ callId: 1, remote: "bob", ringing: ["bob|b3"], declined: ["declined"] })
    )
    expect(one!.instructions).toEqual([])
    // The other device can still pick up.
    const picked = transition(context, one!.state, Input.Remote({ from: "bob|b3", signal: Call.Signal.Accept() }))
    expect(picked.state._tag).toBe("Negotiating")
    expect(sent(picked)).toEqual([])
    // Both said no, with different reasons: declined.
    expect(two!.state).toEqual(CallState.Ending({ callId: 1, remote: "bob", reason: "declined", by: "remote" }))
    expect(two!.instructions).toEqual([Instruction.ClosePeer({ callId: 1 })])
    // Every device busy: busy. A single device keeps its own reason.
    expect(runAll(ringing, [reject("bob|b2", "busy"), reject("bob|b3", "busy")])).toMatchObject({ reason: "busy" })
    const single = CallState.OutgoingInit({ callId: 1, remote: "bob|b2", ringing: ["bob|b2"], declined: [] })
    expect(runAll(single, [reject("bob|b2", "not now")])).toMatchObject({ reason: "not now", by: "remote" })
    // A device going offline stops ringing too; nobody left and nobody said no: offline.
    const gone = steps(ringing, [
      Input.PeerOffline({ address: "bob|b2" }),
      Input.PeerOffline({ address: "bob|b3" })
    ])
    expect(gone[0]!.state).toMatchObject({ _tag: "OutgoingInit", ringing: ["bob|b3"] })
    expect(gone[1]!.state).toEqual(CallState.Ending({ callId: 1, remote: "bob", reason: "offline", by: "remote" }))
  })

  it("a caller who gives up, or a ring that times out, ends every ring", () => {
    const ringing = CallState.OutgoingInit({
      callId: 1,
      remote: "bob",
      ringing: ["bob|b2", "bob|b3"],
      declined: ["declined"]
    })
    const cancelled = transition(context, ringing, Input.Hangup({}))
    expect(cancelled.state).toEqual(CallState.Ending({ callId: 1, remote: "bob", reason: "cancelled", by: "local" }))
    expect(sent(cancelled)).toEqual([
      ["bob|b2", Call.Signal.Hangup({ reason: "cancelled" })],
      ["bob|b3", Call.Signal.Hangup({ reason: "cancelled" })]
    ])
    const timedOut = transition(context, ringing, Input.Timeout({ callId: 1, timer: "ring" }))
    expect(timedOut.state).toMatchObject({ _tag: "Ending", reason: "timeout", by: "local" })
    expect(sent(timedOut).map(([to]) => to)).toEqual(["bob|b2", "bob|b3"])
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
    const toHigher = CallState.OutgoingInit({ callId: 1, remote: "zz|z9", ringing: ["zz|z9"], declined: [] })
    const theirs = Input.Remote({ from: "zz|z9", signal: Call.Signal.Init() })
    expect(transition(context, toHigher, theirs).ignored).toBe(true)
    // Against aa|a1 we are higher: we accept their call instead.
    const toLower = CallState.OutgoingInit({ callId: 1, remote: "aa|a1", ringing: ["aa|a1"], declined: [] })
    const step = transition(context, toLower, Input.Remote({ from: "aa|a1", signal: Call.Signal.Init() }))
    expect(step.state).toEqual(
      CallState.Negotiating({ callId: 1, remote: "aa|a1", role: "callee", remoteDescription: false, pending: [] })
    )
    expect(step.instructions).toEqual([
      Instruction.Send({ to: "aa|a1", signal: Call.Signal.Accept() }),
      Instruction.StartTimer({ callId: 1, timer: "ring" }),
      Instruction.OpenPeer({ callId: 1, remote: "aa|a1", role: "callee" })
    ])
  })

  it("glare with one of several ringing devices: we answer it and end the other rings", () => {
    const context2 = { self: "me|m9" }
    const ringing = CallState.OutgoingInit({ callId: 1, remote: "bob", ringing: ["bob|b2", "bob|b3"], declined: [] })
    const step = transition(context2, ringing, Input.Remote({ from: "bob|b3", signal: Call.Signal.Init() }))
    expect(step.state).toMatchObject({ _tag: "Negotiating", remote: "bob|b3", role: "callee" })
    expect(sent(step)).toEqual([
      ["bob|b3", Call.Signal.Accept()],
      ["bob|b2", Call.Signal.Hangup({ reason: "answered-elsewhere" })]
    ])
  })

  it("ring timeout ends only the call it was started for", () => {
    const ringing = CallState.OutgoingInit({ callId: 2, remote: "bob|b2", ringing: ["bob|b2"], declined: [] })
    expect(transition(context, ringing, Input.Timeout({ callId: 1, timer: "ring" })).ignored).toBe(true)
    const step = transition(context, ringing, Input.Timeout({ callId: 2, timer: "ring" }))
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
    expect(transition(context, stuck, Input.Timeout({ callId: 2, timer: "ring" })).state._tag).toBe("Ending")
    const active = CallState.Active({ callId: 2, remote: "bob|b2", role: "caller" })
    expect(transition(context, active, Input.Timeout({ callId: 2, timer: "ring" })).ignored).toBe(true)
  })

  it("the remote going offline ends the call without a signal", () => {
    const active = CallState.Active({ callId: 3, remote: "bob|b2", role: "callee" })
    expect(transition(context, active, Input.PeerOffline({ address: "zz|z9" })).ignored).toBe(true)
    const step = transition(context, active, Input.PeerOffline({ address: "bob|b2" }))
    expect(step.state).toEqual(CallState.Ending({ callId: 3, remote: "bob|b2", reason: "offline", by: "remote" }))
    expect(step.instructions).toEqual([Instruction.ClosePeer({ callId: 3 })])
  })
})
