import { describe, expect, it } from "@effect/vitest"
import { CallState, initial, Input, Instruction, partiesOf, transition, winsGlare } from "../../src/call/CallState.js"
import type { Step, Timer } from "../../src/call/CallState.js"
import * as Address from "../../src/protocol/Address.js"
import * as Call from "../../src/protocol/Call.js"
import { fc } from "../support/prop.js"

const self = "me|m1"
const context = { self }
// "aa|.." sorts below "me|m1" and "zz|.." above it: both sides of the glare rule get exercised. bob has two sessions
// (multi-device ringing), and so do we ("me|m2" is our other device).
const peers = ["aa|a1", "zz|z9", "bob|b2", "bob|b3", "me|m2", self] as const
/** Where a party may turn up after reconnecting without resume (the same users, new session ids). */
const movedTo = ["bob|b7", "aa|a7", "zz|z7", "bob|b2", "me|m7"] as const

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
  fc.constant(Call.Signal.Moved()),
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
/** The call id a remote frame carries: the current call's most of the time, none (a reference peer), or another. */
const uidOf = fc.constantFrom("current", "current", "current", "none", "stale").map((kind) => (state: CallState) =>
  kind === "none" ? undefined : kind === "stale" ? "stale" : uidOfState(state) ?? `c${state.callId + 1}`
)
const uidOfState = (state: CallState) =>
  state._tag === "Idle" || state._tag === "Ending" || state._tag === "Ended" ? undefined : state.uid
/** Whom to call: a user (every session rings), a full address, ourselves, or someone unknown. */
const target = fc.constantFrom("bob", "bob", "bob|b2", "aa|a1", "zz|z9", "me", self, "nobody", "bob|")
/** The sessions the roster reports for the call (the machine keeps those that belong to the target). */
const sessions = fc.subarray([...peers], { minLength: 0 })

/** The input that moves a call forward from where it is, so that deep states are reached often. */
const forward = (n: number): MakeInput => (state) => {
  switch (state._tag) {
    case "Idle":
    case "Ended":
      return state.callId % 2 === 0
        ? Input.Dial({ remote: "bob", sessions: ["bob|b2", "bob|b3"], uid: `c${state.callId + 1}` })
        : Input.Remote({
          from: "zz|z9",
          signal: Call.Signal.Init(),
          uid: state.callId % 3 === 0 ? undefined : `c${state.callId + 1}`
        })
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
    case "Active": {
      // An Active call renegotiates (its offer answered, or crossing the remote's), and goes through a blip (the
      // remote goes away, then moves, or comes back) before it is hung up.
      if (state.offering) {
        return n % 3 !== 0
          ? Input.Remote({ from: state.remote, signal: Call.Signal.Answer({ sdp: "v=1" }), uid: state.uid })
          : Input.Remote({ from: state.remote, signal: Call.Signal.Offer({ sdp: "v=2" }), uid: state.uid })
      }
      if (n % 4 === 0) return Input.NegotiationNeeded({ callId: state.callId })
      const moved = state.remote.endsWith("|x7")
      if (state.away) {
        return moved || state.callId % 3 === 0
          ? Input.PeerOnline({ address: state.remote })
          : Input.Remote({
            from: `${Address.parse(state.remote).user}|x7`,
            signal: Call.Signal.Moved(),
            uid: state.uid
          })
      }
      if (!moved && state.callId % 5 !== 0) return Input.PeerOffline({ address: state.remote })
      return Input.Remote({ from: state.remote, signal: Call.Signal.Hangup({ reason: "hangup" }), uid: state.uid })
    }
    case "Ending":
      return Input.Closed({ callId: state.callId })
  }
}

const others: ReadonlyArray<fc.Arbitrary<MakeInput>> = [
  fc.tuple(target, sessions).map(([remote, s]) => (state: CallState) =>
    Input.Dial({ remote, sessions: s, uid: `c${state.callId + 1}` })
  ),
  fc.constant(() => Input.Accept()),
  reason.map((r) => () => Input.Reject({ reason: r })),
  fc.option(reason).map((r) => () => Input.Hangup(r === null ? {} : { reason: r })),
  fc.tuple(sender, signal, uidOf).map(([from, s, uid]) => (state: CallState) =>
    Input.Remote({ from: from(state), signal: s, uid: uid(state) })
  ),
  fc.tuple(sender, signal, uidOf).map(([from, s, uid]) => (state: CallState) =>
    Input.Remote({ from: from(state), signal: s, uid: uid(state) })
  ),
  fc.tuple(sender, fc.constantFrom(Call.Signal.Reject({ reason: "declined" }), Call.Signal.Reject({ reason: "busy" })))
    .map(([from, s]) => (state: CallState) => Input.Remote({ from: from(state), signal: s })),
  fc.tuple(fc.constantFrom(...movedTo, ...peers), uidOf).map(([from, uid]) => (state: CallState) =>
    Input.Remote({ from, signal: Call.Signal.Moved(), uid: uid(state) })
  ),
  // The remote party turning up somewhere else (or where it is), for the current call.
  fc.nat(3).map((n) => (state: CallState) => {
    const remote = remoteOf(state) ?? "bob|b2"
    const from = n === 0 ? remote : `${Address.parse(remote).user}|n${n}`
    return Input.Remote({ from, signal: Call.Signal.Moved(), uid: uidOfState(state) })
  }),
  sender.map((from) => (state: CallState) => Input.PeerOffline({ address: from(state) })),
  sender.map((from) => (state: CallState) => Input.PeerOnline({ address: from(state) })),
  sender.map((from) => (state: CallState) => Input.PeerOnline({ address: from(state) })),
  fc.constantFrom("me|m8", "").map((address) => () => Input.Reconnected({ address })),
  fc.tuple(offset, fc.constantFrom("ring", "grace", "disconnected") as fc.Arbitrary<Timer>).map(
    ([o, timer]) => (state: CallState) => Input.Timeout({ callId: callId(state, o), timer })
  ),
  offset.map((o) => (state: CallState) => Input.Disconnected({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.NegotiationNeeded({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.NegotiationNeeded({ callId: callId(state, o) })),
  fc.tuple(offset, candidate).map(([o, c]) => (state: CallState) =>
    Input.LocalCandidate({ callId: callId(state, o), candidate: c })
  ),
  offset.map((o) => (state: CallState) => Input.Connected({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.PeerFailed({ callId: callId(state, o), message: "x" })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) })),
  offset.map((o) => (state: CallState) => Input.Closed({ callId: callId(state, o) }))
]
// Forward about a third of the time, so that calls get deep before something knocks them over.
const input: fc.Arbitrary<MakeInput> = fc.oneof(
  { arbitrary: fc.nat().map(forward), weight: others.length / 2 },
  ...others.map((arbitrary) => ({ arbitrary, weight: 1 }))
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
  // The call keeps its id on the wire from the moment it starts ringing, unless glare makes us answer the other call.
  if (after.callId === before.callId && uidOfState(before) !== undefined && uidOfState(after) !== undefined) {
    const glare = before._tag === "OutgoingInit" && after._tag === "Negotiating" && after.role === "callee"
    expect(uidOfState(after)).toBe(glare && event._tag === "Remote" ? event.uid : uidOfState(before))
  }
  // An Active call outlives its remote going offline: only the grace timer (or anything else) ends it later.
  if (before._tag === "Active" && event._tag === "PeerOffline" && event.address === before.remote) {
    expect(after).toMatchObject({ _tag: "Active", away: true })
  }
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
  // A signal from anyone but a party of the current call never moves it (init aside), nor does one of another call;
  // a move only rebinds an Active call to another session of the same user, for the same call.
  if (event._tag === "Remote" && event.signal._tag === "Moved") {
    if (!step.ignored) {
      expect(before._tag).toBe("Active")
      expect(after).toMatchObject({ _tag: "Active", remote: event.from, away: false })
      expect(event.uid).toBe(uidOfState(before))
      expect(Address.parse(event.from).user).toBe(Address.parse(before._tag === "Active" ? before.remote : "").user)
    }
  } else if (event._tag === "Remote" && event.signal._tag !== "Init") {
    if (!partiesOf(before).includes(event.from)) expect(step.ignored).toBe(true)
    const current = uidOfState(before)
    if (event.uid !== undefined && current !== undefined && event.uid !== current) expect(step.ignored).toBe(true)
  }
  // Glare while renegotiating: the lower address ignores the other offer, the higher one yields and offers again.
  if (
    before._tag === "Active" && before.offering && event._tag === "Remote" && event.signal._tag === "Offer" &&
    event.from === before.remote && (event.uid === undefined || event.uid === before.uid)
  ) {
    if (winsGlare(self, before.remote)) expect(step.ignored).toBe(true)
    else expect(step.instructions.map((i) => i._tag)).toEqual(["AnswerOffer", "SendOffer"])
  }
  // The grace timer runs exactly while the remote of an Active call is away.
  const away = (state: CallState) => state._tag === "Active" && state.away
  const graceStarted = step.instructions.some((i) => i._tag === "StartTimer" && i.timer === "grace")
  expect(graceStarted).toBe(!away(before) && away(after))
  if (away(before) && !away(after) && after._tag === "Active") {
    expect(step.instructions).toContainEqual(Instruction.StopTimer({ timer: "grace" }))
  }
  const parties = new Set([...partiesOf(before), ...partiesOf(after)])
  for (const instruction of step.instructions) {
    switch (instruction._tag) {
      case "Send": {
        expect(Call.isStrict(Call.message(instruction.to, instruction.signal, { callId: instruction.uid }))).toBe(true)
        expect(instruction.to).not.toBe(self)
        if (instruction.signal._tag === "Moved") {
          // Our new address goes to the remote's user (every session of it), or to where the remote now is.
          expect(after._tag).toBe("Active")
          expect(instruction.uid).toBe(uidOfState(after))
          expect([Address.parse(remoteOf(after)!).user, remoteOf(after)]).toContain(instruction.to)
          break
        }
        expect(isFull(instruction.to)).toBe(true)
        // Strangers only ever hear "busy", under their own call's id; the parties hear the call's.
        if (!parties.has(instruction.to)) {
          expect(instruction.signal).toEqual(Call.Signal.Reject({ reason: "busy" }))
          expect(instruction.uid).toBe(event._tag === "Remote" ? event.uid : "none")
        } else if (instruction.signal._tag !== "Reject" || instruction.signal.reason !== "busy") {
          expect([uidOfState(before), uidOfState(after)]).toContain(instruction.uid)
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
        expect(instruction.uid).toBe(uidOfState(after))
        expect(instruction.callId).toBe(after.callId)
        // The first offer, or a renegotiation of an Active call, which then waits for its answer.
        expect(after._tag === "Negotiating" || (after._tag === "Active" && after.offering)).toBe(true)
        break
      case "AnswerOffer":
        expect(instruction.uid).toBe(uidOfState(after))
        expect(instruction.callId).toBe(after.callId)
        expect(["Negotiating", "Active"]).toContain(after._tag)
        // We take our own offer back only when both offered at once and the other side wins glare.
        if (instruction.rollback) {
          expect(before).toMatchObject({ _tag: "Active", offering: true })
          expect(winsGlare(self, remoteOf(before)!)).toBe(false)
        }
        break
      case "ApplyAnswer":
        expect(instruction.callId).toBe(after.callId)
        expect(
          after._tag === "Negotiating" ||
            (before._tag === "Active" && before.offering && after._tag === "Active" && !after.offering)
        ).toBe(true)
        break
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

interface Counts {
  multiDevice: number
  away: number
  rebound: number
  renegotiated: number
  yielded: number
  readonly seen: Set<string>
}

/** Runs the inputs from `start`, checking every step, then hangs up and checks the call can always be ended. */
const run = (start: CallState, makers: ReadonlyArray<MakeInput>, counts: Counts) => {
  let state = start
  const ledger: Ledger = { callId: start.callId, rung: new Set(), hungUp: new Set() }
  for (const make of makers) {
    const event = make(state)
    // The server never reuses a session id: a party that moved speaks from an address new to the call (or from
    // where it already is). A session rung for this call and told off cannot be where the remote moved to.
    const fromRung = event._tag === "Remote" && event.signal._tag === "Moved" && ledger.rung.has(event.from)
    if (fromRung && event.from !== remoteOf(state)) continue
    const step = transition(context, state, event)
    checkStep(state, event, step, ledger)
    state = step.state
    counts.seen.add(state._tag)
    if (state._tag === "OutgoingInit" && state.ringing.length > 1) counts.multiDevice++
    if (state._tag === "Active" && state.away) counts.away++
    if (event._tag === "Remote" && event.signal._tag === "Moved" && !step.ignored) counts.rebound++
    for (const i of step.instructions) {
      if (i._tag === "ApplyAnswer" && state._tag === "Active") counts.renegotiated++
      if (i._tag === "AnswerOffer" && i.rollback) counts.yielded++
    }
  }
  // Liveness: a local hangup plus the peer connection closing always lands in Idle or Ended, and every session that
  // rang and was not answered nor said no has been told.
  const hangup = transition(context, state, Input.Hangup({}))
  checkStep(state, Input.Hangup({}), hangup, ledger)
  const end = transition(context, hangup.state, Input.Closed({ callId: state.callId }))
  expect(["Idle", "Ended"]).toContain(end.state._tag)
}

const counts = (): Counts => ({ multiDevice: 0, away: 0, rebound: 0, renegotiated: 0, yielded: 0, seen: new Set() })

describe("call/CallState", () => {
  it("any interleaving keeps the machine legal, leaves no call ringing, and never hangs up twice", () => {
    const seen = counts()
    fc.assert(fc.property(fc.array(input, { maxLength: 60 }), (makers) => run(initial, makers, seen)), {
      numRuns: 1500
    })
    // The generator is only worth something if it drives calls through every stage, and rings several devices.
    expect([...seen.seen].sort()).toEqual([
      "Active",
      "Ended",
      "Ending",
      "Idle",
      "IncomingInit",
      "Negotiating",
      "OutgoingInit"
    ])
    expect(seen.multiDevice).toBeGreaterThan(100)
  })

  it("an Active call under renegotiation, glare, blips and moves stays legal and hangs up once", () => {
    const seen = counts()
    const start = fc.tuple(
      fc.constantFrom("aa|a1", "zz|z9", "bob|b2"),
      fc.constantFrom("caller", "callee"),
      fc.boolean()
    )
      .map(([remote, role, anonymous]) =>
        CallState.Active({
          callId: 1,
          remote,
          uid: anonymous ? undefined : "c1",
          role: role as "caller" | "callee",
          away: false,
          disconnected: false,
          offering: false
        })
      )
    fc.assert(
      fc.property(start, fc.array(input, { maxLength: 30 }), (state, makers) => run(state, makers, seen)),
      { numRuns: 1000 }
    )
    expect(seen.away).toBeGreaterThan(100)
    expect(seen.rebound).toBeGreaterThan(50)
    expect(seen.renegotiated).toBeGreaterThan(50)
    expect(seen.yielded).toBeGreaterThan(20)
  })

  it("caller and callee happy path", () => {
    const bob = "bob|b2"
    let step = transition(context, initial, Input.Dial({ remote: bob, sessions: [], uid: "u1" }))
    expect(step.state).toEqual(outgoing(bob, [bob]))
    expect(step.instructions).toEqual([
      send(bob, Call.Signal.Init()),
      Instruction.StartTimer({ callId: 1, timer: "ring" })
    ])
    step = transition(context, step.state, remoteSignal(bob, Call.Signal.Accept()))
    expect(step.state._tag).toBe("Negotiating")
    expect(step.instructions.map((i) => i._tag)).toEqual(["StartTimer", "OpenPeer", "SendOffer"])
    expect(step.instructions[2]).toEqual(Instruction.SendOffer({ callId: 1, remote: bob, uid: "u1" }))
    // Candidates before the answer wait; the answer flushes them after the remote description.
    const c1 = { candidate: "candidate:1", sdpMid: "0" }
    const c2 = { candidate: "candidate:2", sdpMid: "0" }
    for (const candidate of [c1, c2]) {
      step = transition(context, step.state, remoteSignal(bob, Call.Signal.Candidate({ candidate })))
    }
    expect(step.instructions).toEqual([])
    step = transition(context, step.state, remoteSignal(bob, Call.Signal.Answer({ sdp: "v=0" })))
    expect(step.instructions).toEqual([
      Instruction.ApplyAnswer({ callId: 1, sdp: "v=0" }),
      Instruction.AddCandidate({ callId: 1, candidate: c1 }),
      Instruction.AddCandidate({ callId: 1, candidate: c2 })
    ])
    step = transition(context, step.state, Input.Connected({ callId: 1 }))
    expect(step.state).toEqual(active(bob, "caller"))
    expect(step.instructions).toEqual([Instruction.StopTimer({ timer: "ring" })])
    step = transition(context, step.state, Input.Hangup({}))
    expect(step.state._tag).toBe("Ending")
    expect(step.instructions).toEqual([
      send(bob, Call.Signal.Hangup({ reason: "hangup" })),
      Instruction.ClosePeer({ callId: 1 })
    ])
    step = transition(context, step.state, Input.Closed({ callId: 1 }))
    expect(step.state).toEqual(CallState.Ended({ callId: 1, remote: bob, reason: "hangup", by: "local" }))
  })

  it("calling a user rings each of its sessions; the first accept wins, the others hear answered-elsewhere", () => {
    // The roster may list sessions of other users and ourselves: only the called user's sessions ring.
    const dial = Input.Dial({ remote: "bob", sessions: ["bob|b2", "aa|a1", "bob|b3", self, "bob|b2"], uid: "u1" })
    const ringing = transition(context, initial, dial)
    expect(ringing.state).toEqual(outgoing("bob", ["bob|b2", "bob|b3"]))
    expect(sent(ringing)).toEqual([["bob|b2", Call.Signal.Init()], ["bob|b3", Call.Signal.Init()]])
    for (const [winner, loser] of [["bob|b2", "bob|b3"], ["bob|b3", "bob|b2"]] as const) {
      const accepted = transition(context, ringing.state, remoteSignal(winner, Call.Signal.Accept()))
      expect(accepted.state).toEqual(negotiating(winner, "caller"))
      expect(sent(accepted)).toEqual([[loser, Call.Signal.Hangup({ reason: "answered-elsewhere" })]])
      expect(accepted.instructions).toContainEqual(Instruction.OpenPeer({ callId: 1, remote: winner, role: "caller" }))
      // The loser's accept, crossing our hangup on the wire, changes nothing and is answered by nothing.
      const late = transition(context, accepted.state, remoteSignal(loser, Call.Signal.Accept()))
      expect(late.ignored).toBe(true)
    }
  })

  it("a rejection stops one device ringing; the call fails once every device has said no", () => {
    const ringing = outgoing("bob", ["bob|b2", "bob|b3"])
    const reject = (from: string, reason: string) => remoteSignal(from, Call.Signal.Reject({ reason }))
    const [one, two] = steps(ringing, [reject("bob|b2", "declined"), reject("bob|b3", "busy")])
    expect(one!.state).toEqual(outgoing("bob", ["bob|b3"], ["declined"]))
    expect(one!.instructions).toEqual([])
    // The other device can still pick up.
    const picked = transition(context, one!.state, remoteSignal("bob|b3", Call.Signal.Accept()))
    expect(picked.state._tag).toBe("Negotiating")
    expect(sent(picked)).toEqual([])
    // Both said no, with different reasons: declined.
    expect(two!.state).toEqual(CallState.Ending({ callId: 1, remote: "bob", reason: "declined", by: "remote" }))
    expect(two!.instructions).toEqual([Instruction.ClosePeer({ callId: 1 })])
    // Every device busy: busy. A single device keeps its own reason.
    expect(runAll(ringing, [reject("bob|b2", "busy"), reject("bob|b3", "busy")])).toMatchObject({ reason: "busy" })
    const single = outgoing("bob|b2", ["bob|b2"])
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
    const ringing = outgoing("bob", ["bob|b2", "bob|b3"], ["declined"])
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

  it("a second init during a call is answered busy, under the caller's own call id, and changes nothing", () => {
    const ringing = CallState.IncomingInit({ callId: 1, remote: "bob|b2", uid: "u1" })
    const step = transition(context, ringing, remoteSignal("zz|z9", Call.Signal.Init(), "theirs"))
    expect(step.state).toBe(ringing)
    expect(step.instructions).toEqual([send("zz|z9", Call.Signal.Reject({ reason: "busy" }), "theirs")])
    // The same peer repeating its init is a duplicate, not a second call.
    expect(transition(context, ringing, remoteSignal("bob|b2", Call.Signal.Init())).ignored).toBe(true)
  })

  it("frames of another call are ignored; frames without a call id (reference peers) are taken", () => {
    const call = negotiating("bob|b2", "callee")
    expect(transition(context, call, remoteSignal("bob|b2", Call.Signal.Hangup({ reason: "x" }), "old")).ignored)
      .toBe(true)
    expect(transition(context, call, remoteSignal("bob|b2", Call.Signal.Hangup({ reason: "x" }), null)).state)
      .toMatchObject({ _tag: "Ending", reason: "x" })
    // A call from a reference peer has no id, and every frame of it is sent without one.
    const incoming = transition(context, initial, remoteSignal("bob|b2", Call.Signal.Init(), null))
    expect(incoming.state).toEqual(CallState.IncomingInit({ callId: 1, remote: "bob|b2", uid: undefined }))
    expect(sent(transition(context, incoming.state, Input.Accept()))).toEqual([["bob|b2", Call.Signal.Accept()]])
    expect(transition(context, incoming.state, Input.Accept()).instructions[0]).toEqual(
      Instruction.Send({ to: "bob|b2", signal: Call.Signal.Accept(), uid: undefined })
    )
  })

  it("glare: the lower address keeps its call, the higher one answers it", () => {
    // We are me|m1. Against zz|z9 we are lower: we ignore their init and keep ringing them.
    const toHigher = outgoing("zz|z9", ["zz|z9"])
    expect(transition(context, toHigher, remoteSignal("zz|z9", Call.Signal.Init(), "theirs")).ignored).toBe(true)
    // Against aa|a1 we are higher: we accept their call instead, which goes on under their call id.
    const toLower = outgoing("aa|a1", ["aa|a1"])
    const step = transition(context, toLower, remoteSignal("aa|a1", Call.Signal.Init(), "theirs"))
    expect(step.state).toEqual(
      CallState.Negotiating({
        callId: 1,
        remote: "aa|a1",
        uid: "theirs",
        role: "callee",
        remoteDescription: false,
        pending: []
      })
    )
    expect(step.instructions).toEqual([
      send("aa|a1", Call.Signal.Accept(), "theirs"),
      Instruction.StartTimer({ callId: 1, timer: "ring" }),
      Instruction.OpenPeer({ callId: 1, remote: "aa|a1", role: "callee" })
    ])
  })

  it("glare with one of several ringing devices: we answer it and end the other rings", () => {
    const context2 = { self: "me|m9" }
    const step = transition(context2, outgoing("bob", ["bob|b2", "bob|b3"]), remoteSignal("bob|b3", Call.Signal.Init()))
    expect(step.state).toMatchObject({ _tag: "Negotiating", remote: "bob|b3", role: "callee" })
    expect(sent(step)).toEqual([
      ["bob|b3", Call.Signal.Accept()],
      ["bob|b2", Call.Signal.Hangup({ reason: "answered-elsewhere" })]
    ])
  })

  it("ring timeout ends only the call it was started for", () => {
    const ringing = CallState.OutgoingInit({
      callId: 2,
      remote: "bob|b2",
      uid: "u2",
      ringing: ["bob|b2"],
      declined: []
    })
    expect(transition(context, ringing, Input.Timeout({ callId: 1, timer: "ring" })).ignored).toBe(true)
    const step = transition(context, ringing, Input.Timeout({ callId: 2, timer: "ring" }))
    expect(step.state).toEqual(CallState.Ending({ callId: 2, remote: "bob|b2", reason: "timeout", by: "local" }))
    expect(step.instructions[0]).toEqual(send("bob|b2", Call.Signal.Hangup({ reason: "timeout" }), "u2"))
    // Accepted but never connected: the restarted timer ends it too; once connected, the timer is moot.
    const stuck = CallState.Negotiating({
      callId: 2,
      remote: "bob|b2",
      uid: "u2",
      role: "caller",
      remoteDescription: true,
      pending: []
    })
    expect(transition(context, stuck, Input.Timeout({ callId: 2, timer: "ring" })).state._tag).toBe("Ending")
    const call = CallState.Active({ ...active("bob|b2", "caller"), callId: 2 })
    expect(transition(context, call, Input.Timeout({ callId: 2, timer: "ring" })).ignored).toBe(true)
  })

  it("the remote going offline: a ringing or negotiating call ends, an Active one waits out the grace period", () => {
    const ringing = CallState.IncomingInit({ callId: 1, remote: "bob|b2", uid: "u1" })
    expect(transition(context, ringing, Input.PeerOffline({ address: "bob|b2" })).state).toEqual(
      CallState.Ending({ callId: 1, remote: "bob|b2", reason: "offline", by: "remote" })
    )
    const call = active("bob|b2", "callee")
    expect(transition(context, call, Input.PeerOffline({ address: "zz|z9" })).ignored).toBe(true)
    const gone = transition(context, call, Input.PeerOffline({ address: "bob|b2" }))
    expect(gone.state).toEqual(CallState.Active({ ...call, away: true }))
    expect(gone.instructions).toEqual([Instruction.StartTimer({ callId: 1, timer: "grace" })])
    // Back in time (the same address: a resumed session, or our own roster refilled after we reconnected).
    const back = transition(context, gone.state, Input.PeerOnline({ address: "bob|b2" }))
    expect(back.state).toEqual(call)
    expect(back.instructions).toEqual([Instruction.StopTimer({ timer: "grace" })])
    // Not back in time: the call ends, with nobody to tell.
    const over = transition(context, gone.state, Input.Timeout({ callId: 1, timer: "grace" }))
    expect(over.state).toEqual(CallState.Ending({ callId: 1, remote: "bob|b2", reason: "offline", by: "remote" }))
    expect(over.instructions).toEqual([Instruction.ClosePeer({ callId: 1 })])
    // A grace timer that fires after the remote came back changes nothing.
    expect(transition(context, call, Input.Timeout({ callId: 1, timer: "grace" })).ignored).toBe(true)
  })

  it("moves: a party that reconnects under a new address announces it, and the call follows", () => {
    const call = active("bob|b2", "caller")
    // We reconnected: our new address goes to bob's user, under the call's id.
    const ours = transition({ self: "me|m8" }, call, Input.Reconnected({ address: "me|m8" }))
    expect(ours.state).toBe(call)
    expect(ours.instructions).toEqual([send("bob", Call.Signal.Moved())])
    // bob reconnected (both of us did, after a server restart): we follow, and tell its new address where we are.
    const away = CallState.Active({ ...call, away: true })
    const theirs = transition(context, away, remoteSignal("bob|b7", Call.Signal.Moved()))
    expect(theirs.state).toEqual(CallState.Active({ ...call, remote: "bob|b7" }))
    expect(theirs.instructions).toEqual([
      Instruction.StopTimer({ timer: "grace" }),
      send("bob|b7", Call.Signal.Moved())
    ])
    // bob's answer (from where we already send) only ends the wait; nothing bounces back.
    const answer = transition(
      context,
      CallState.Active({ ...call, remote: "bob|b7", away: true }),
      remoteSignal("bob|b7", Call.Signal.Moved())
    )
    expect(answer.state).toEqual(CallState.Active({ ...call, remote: "bob|b7" }))
    expect(sent(answer)).toEqual([])
    expect(
      transition(context, CallState.Active({ ...call, remote: "bob|b7" }), remoteSignal("bob|b7", Call.Signal.Moved()))
        .ignored
    )
      .toBe(true)
    // Then the call is with bob|b7 only.
    const hangup = transition(context, theirs.state, remoteSignal("bob|b2", Call.Signal.Hangup({ reason: "hangup" })))
    expect(hangup.ignored).toBe(true)
    // Nobody else can take the call over: another user, another call's id, a call without an id.
    for (
      const input of [
        remoteSignal("zz|z7", Call.Signal.Moved()),
        remoteSignal("bob|b7", Call.Signal.Moved(), "another"),
        remoteSignal("bob|b7", Call.Signal.Moved(), null)
      ]
    ) {
      expect(transition(context, away, input).ignored).toBe(true)
    }
    const anonymous = CallState.Active({ ...call, uid: undefined })
    expect(transition(context, anonymous, remoteSignal("bob|b7", Call.Signal.Moved(), null)).ignored).toBe(true)
    expect(transition(context, anonymous, Input.Reconnected({ address: "me|m8" })).ignored).toBe(true)
  })

  it("renegotiation: an offer during Active is answered; ours waits for its answer", () => {
    const call = active("bob|b2", "callee")
    // The remote adds a track: its offer is answered, and the call stays as it was.
    const theirs = transition(context, call, remoteSignal("bob|b2", Call.Signal.Offer({ sdp: "v=1" })))
    expect(theirs.state).toBe(call)
    expect(theirs.instructions).toEqual([
      Instruction.AnswerOffer({ callId: 1, remote: "bob|b2", uid: "u1", sdp: "v=1", rollback: false })
    ])
    // We add one: an offer goes out, and a second need meanwhile waits for the answer.
    const ours = transition(context, call, Input.NegotiationNeeded({ callId: 1 }))
    expect(ours.state).toEqual(CallState.Active({ ...call, offering: true }))
    expect(ours.instructions).toEqual([Instruction.SendOffer({ callId: 1, remote: "bob|b2", uid: "u1" })])
    expect(transition(context, ours.state, Input.NegotiationNeeded({ callId: 1 })).ignored).toBe(true)
    const answered = transition(context, ours.state, remoteSignal("bob|b2", Call.Signal.Answer({ sdp: "v=2" })))
    expect(answered.state).toEqual(call)
    expect(answered.instructions).toEqual([Instruction.ApplyAnswer({ callId: 1, sdp: "v=2" })])
    // An answer nobody asked for is ignored; so is a need before the call is Active (the first offer covers it).
    expect(transition(context, call, remoteSignal("bob|b2", Call.Signal.Answer({ sdp: "v=3" }))).ignored).toBe(true)
    expect(transition(context, negotiating("bob|b2", "caller"), Input.NegotiationNeeded({ callId: 1 })).ignored)
      .toBe(true)
    // The remote may renegotiate the moment it connects, before we see our side connected.
    const done = CallState.Negotiating({ ...negotiating("bob|b2", "caller"), remoteDescription: true })
    expect(transition(context, done, remoteSignal("bob|b2", Call.Signal.Offer({ sdp: "v=4" }))).instructions).toEqual([
      Instruction.AnswerOffer({ callId: 1, remote: "bob|b2", uid: "u1", sdp: "v=4", rollback: false })
    ])
  })

  it("glare while renegotiating resolves as for the first offer: the lower address keeps its offer", () => {
    // me|m1 against zz|z9: we are lower, their offer is ignored and ours stands.
    const lower = CallState.Active({ ...active("zz|z9", "caller"), offering: true })
    expect(transition(context, lower, remoteSignal("zz|z9", Call.Signal.Offer({ sdp: "v=1" }))).ignored).toBe(true)
    // me|m1 against aa|a1: we are higher, we take ours back, answer theirs, and offer again.
    const higher = CallState.Active({ ...active("aa|a1", "callee"), offering: true })
    const step = transition(context, higher, remoteSignal("aa|a1", Call.Signal.Offer({ sdp: "v=1" })))
    expect(step.state).toBe(higher)
    expect(step.instructions).toEqual([
      Instruction.AnswerOffer({ callId: 1, remote: "aa|a1", uid: "u1", sdp: "v=1", rollback: true }),
      Instruction.SendOffer({ callId: 1, remote: "aa|a1", uid: "u1" })
    ])
  })

  it("end-of-candidates travels like a candidate: held until the remote description, then added", () => {
    const end = { candidate: "", sdpMid: "0", sdpMLineIndex: 0 }
    const call = negotiating("bob|b2", "caller")
    const held = transition(context, call, remoteSignal("bob|b2", Call.Signal.Candidate({ candidate: end })))
    expect(held.state).toMatchObject({ pending: [end] })
    const answered = transition(context, held.state, remoteSignal("bob|b2", Call.Signal.Answer({ sdp: "v=0" })))
    expect(answered.instructions).toContainEqual(Instruction.AddCandidate({ callId: 1, candidate: end }))
    const ours = transition(context, answered.state, Input.LocalCandidate({ callId: 1, candidate: end }))
    expect(ours.instructions).toEqual([send("bob|b2", Call.Signal.Candidate({ candidate: end }))])
  })

  it("a disconnected peer connection gets a timeout to recover; a failed or closed one ends the call", () => {
    const call = active("bob|b2", "caller")
    const down = transition(context, call, Input.Disconnected({ callId: 1 }))
    expect(down.state).toEqual(CallState.Active({ ...call, disconnected: true }))
    expect(down.instructions).toEqual([Instruction.StartTimer({ callId: 1, timer: "disconnected" })])
    expect(transition(context, down.state, Input.Disconnected({ callId: 1 })).ignored).toBe(true)
    const recovered = transition(context, down.state, Input.Connected({ callId: 1 }))
    expect(recovered.state).toEqual(call)
    expect(recovered.instructions).toEqual([Instruction.StopTimer({ timer: "disconnected" })])
    const failed = transition(context, down.state, Input.Timeout({ callId: 1, timer: "disconnected" }))
    expect(failed.state).toEqual(CallState.Ending({ callId: 1, remote: "bob|b2", reason: "failed", by: "local" }))
    expect(sent(failed)).toEqual([["bob|b2", Call.Signal.Hangup({ reason: "failed" })]])
    expect(transition(context, call, Input.Timeout({ callId: 1, timer: "disconnected" })).ignored).toBe(true)
    expect(transition(context, call, Input.PeerFailed({ callId: 1, message: "connection failed" })).state)
      .toMatchObject({ _tag: "Ending", reason: "failed" })
  })
})

const outgoing = (remote: string, ringing: ReadonlyArray<string>, declined: ReadonlyArray<string> = []) =>
  CallState.OutgoingInit({ callId: 1, remote, uid: "u1", ringing, declined })
const negotiating = (remote: string, role: "caller" | "callee") =>
  CallState.Negotiating({ callId: 1, remote, uid: "u1", role, remoteDescription: false, pending: [] })
const active = (remote: string, role: "caller" | "callee") =>
  CallState.Active({ callId: 1, remote, uid: "u1", role, away: false, disconnected: false, offering: false })
/** `uid` null: a frame without a call id (a default parameter would turn an explicit `undefined` into "u1"). */
const send = (to: string, signal: Call.Signal, uid: string | null = "u1") =>
  Instruction.Send({ to, signal, uid: uid ?? undefined })
const remoteSignal = (from: string, signal: Call.Signal, uid: string | null = "u1") =>
  Input.Remote({ from, signal, uid: uid ?? undefined })
