import { describe, expect, it } from "@effect/vitest"
import { Option, Result } from "effect"
import * as Call from "../../src/protocol/Call.js"
import * as Frame from "../../src/protocol/Frame.js"
import { fc, prop } from "../support/prop.js"

const text = fc.string({ minLength: 1, maxLength: 40 })
const address = fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[A-Za-z0-9+/]{1,16}$/))
  .map(([user, id]) => `${user}|${id}`)
const candidateLine = fc.stringMatching(/^candidate:[0-9a-f]{1,8} 1 udp [0-9]{1,10} 127\.0\.0\.1 [0-9]{1,5} typ host$/)
const candidate: fc.Arbitrary<Call.IceCandidate> = fc.record(
  { candidate: candidateLine, sdpMid: fc.string({ maxLength: 4 }), sdpMLineIndex: fc.nat(8) },
  { requiredKeys: ["candidate"] }
)

const signal: fc.Arbitrary<Call.Signal> = fc.oneof(
  fc.constant(Call.Signal.Init()),
  fc.constant(Call.Signal.Accept()),
  text.map((reason) => Call.Signal.Reject({ reason })),
  text.map((reason) => Call.Signal.Hangup({ reason })),
  text.map((sdp) => Call.Signal.Offer({ sdp })),
  text.map((sdp) => Call.Signal.Answer({ sdp })),
  candidate.map((candidate) => Call.Signal.Candidate({ candidate })),
  fc.constant(Call.Signal.Moved())
)
const callId = fc.option(fc.stringMatching(/^[A-Za-z0-9]{1,16}$/), { nil: undefined })

/** Sends a frame through JSON and the protocol decoder, as a peer would receive it (with `from` set). */
const overTheWire = (frame: Frame.Message, from: string): Frame.Message => {
  const decoded = Frame.decode(JSON.stringify({ ...frame, from }))
  if (Result.isFailure(decoded) || decoded.success.type !== "message") throw new Error("not a message frame")
  return decoded.success
}

describe("protocol/Call", () => {
  prop("every signal survives the wire, with its call id, and is strict on output", [
    signal,
    address,
    address,
    callId
  ], ([s, to, from, id]) => {
    // `moved` needs the call id: without one there is nothing to send.
    const callId = s._tag === "Moved" ? id ?? "c1" : id
    const frame = Call.message(to, s, { callId })
    expect(frame.subtype).toBe(`call:${Call.actionOfSignal(s)}`)
    expect(Call.isStrict(frame)).toBe(true)
    const parsed = Call.parse(overTheWire(frame, from))
    expect(parsed).toEqual(Option.some({ from, signal: s, id: frame.id, ...(callId === undefined ? {} : { callId }) }))
  })

  prop("any data on a call subtype never throws and yields a signal or none", [
    fc.constantFrom(...Call.actions),
    fc.jsonValue(),
    address
  ], ([action, data, from]) => {
    const frame: Frame.Message = { type: "message", subtype: Call.subtype(action), data: data as never, from }
    const parsed = Call.parse(frame)
    if (Option.isSome(parsed)) {
      // Whatever was read back is itself sendable in the strict shape.
      expect(Call.isStrict(Call.message("a|b", parsed.value.signal))).toBe(true)
    }
    return true
  })

  it("init and accept take {} , absent data, or extra keys", () => {
    for (const data of [undefined, {}, { url: "x", engine: "mjpeg" }, null]) {
      const frame: Frame.Message = {
        type: "message",
        subtype: "call:accept",
        from: "bob|1",
        ...(data === undefined ? {} : { data })
      }
      expect(Option.map(Call.parse(frame), (i) => i.signal)).toEqual(Option.some(Call.Signal.Accept()))
    }
    expect(Call.message("bob|1", Call.Signal.Init()).data).toEqual({})
  })

  it("candidates: missing sdpMLineIndex accepted, a= stripped, output strict", () => {
    const icey: Frame.Message = {
      type: "message",
      subtype: "call:candidate",
      from: "bob|1",
      data: { candidate: "a=candidate:1 1 UDP 2122317823 127.0.0.1 5000 typ host", sdpMid: "0" }
    }
    const parsed = Option.getOrThrow(Call.parse(icey))
    expect(parsed.signal).toEqual(
      Call.Signal.Candidate({
        candidate: { candidate: "candidate:1 1 UDP 2122317823 127.0.0.1 5000 typ host", sdpMid: "0" }
      })
    )
    expect(Call.message("bob|1", parsed.signal).data).toEqual({
      candidate: "candidate:1 1 UDP 2122317823 127.0.0.1 5000 typ host",
      sdpMid: "0"
    })
    // A leading a= in a locally gathered candidate is removed on output too.
    const prefixed = Call.Signal.Candidate({ candidate: { candidate: "a=candidate:x", sdpMLineIndex: 0 } })
    const local = Call.message("bob|1", prefixed)
    expect(local.data).toEqual({ candidate: "candidate:x", sdpMLineIndex: 0 })
    expect(Call.isStrict(local)).toBe(true)
  })

  it("end-of-candidates: an empty candidate line is read, sent and strict", () => {
    const end: Frame.Message = {
      type: "message",
      subtype: "call:candidate",
      from: "bob|1",
      data: { candidate: "", sdpMid: "0", sdpMLineIndex: 0 }
    }
    const parsed = Option.getOrThrow(Call.parse(end))
    expect(parsed.signal).toEqual(
      Call.Signal.Candidate({ candidate: { candidate: "", sdpMid: "0", sdpMLineIndex: 0 } })
    )
    expect(Call.isEndOfCandidates((parsed.signal as { candidate: Call.IceCandidate }).candidate)).toBe(true)
    const out = Call.message("bob|1", parsed.signal)
    expect(out.data).toEqual({ candidate: "", sdpMid: "0", sdpMLineIndex: 0 })
    expect(Call.isStrict(out)).toBe(true)
    // Without a media section it applies to all of them, as addIceCandidate takes it.
    expect(Option.map(Call.parse({ ...end, data: { candidate: " " } }), (i) => i.signal)).toEqual(
      Option.some(Call.Signal.Candidate({ candidate: { candidate: "" } }))
    )
  })

  it("unusable payloads are none", () => {
    const from = "bob|1"
    const cases: Array<[string, unknown]> = [
      ["call:offer", {}],
      ["call:offer", { type: "offer", sdp: "" }],
      ["call:offer", { type: "answer", sdp: "v=0" }],
      ["call:answer", { sdp: "v=0" }],
      ["call:candidate", { candidate: "a=" }],
      ["call:candidate", "candidate:1"],
      ["call:dance", {}],
      ["chat", {}]
    ]
    for (const [subtype, data] of cases) {
      expect(Call.parse({ type: "message", subtype, from, data: data as never })).toEqual(Option.none())
    }
    // The sender must be a full address.
    for (const bad of [undefined, "bob", "|1", "bob|"]) {
      const frame: Frame.Message = {
        type: "message",
        subtype: "call:init",
        ...(bad === undefined ? {} : { from: bad })
      }
      expect(Call.parse(frame)).toEqual(Option.none())
    }
  })

  it("reject and hangup default their reason", () => {
    const read = (subtype: string, data?: unknown) =>
      Option.map(
        Call.parse({ type: "message", subtype, from: "bob|1", ...(data === undefined ? {} : { data: data as never }) }),
        (i) => i.signal
      )
    expect(read("call:reject")).toEqual(Option.some(Call.Signal.Reject({ reason: "declined" })))
    expect(read("call:reject", { reason: 7 })).toEqual(Option.some(Call.Signal.Reject({ reason: "declined" })))
    expect(read("call:hangup", {})).toEqual(Option.some(Call.Signal.Hangup({ reason: "hangup" })))
    expect(read("call:reject", { reason: "busy" })).toEqual(Option.some(Call.Signal.Reject({ reason: "busy" })))
    expect(Call.message("a|b", Call.Signal.Reject({ reason: "" })).data).toEqual({ reason: "declined" })
  })

  it("the callId extension: written into data when given, read back, and absent from the references' frames", () => {
    expect(Call.message("bob|1", Call.Signal.Init(), { callId: "c1" }).data).toEqual({ callId: "c1" })
    expect(Call.message("bob|1", Call.Signal.Hangup({ reason: "hangup" }), { callId: "c1" }).data).toEqual({
      reason: "hangup",
      callId: "c1"
    })
    // Extra keys in data are what both references ignore: the frames they send parse as before, without a call id.
    const reference: Frame.Message = { type: "message", subtype: "call:init", from: "bob|1", data: {} }
    expect(Call.parse(reference)).toEqual(Option.some({ from: "bob|1", signal: Call.Signal.Init() }))
    const withId: Frame.Message = { ...reference, data: { callId: "c9" } }
    expect(Option.map(Call.parse(withId), (i) => i.callId)).toEqual(Option.some("c9"))
    // An unusable call id is no call id.
    for (const bad of [7, "", null]) {
      expect(Option.map(Call.parse({ ...reference, data: { callId: bad } }), (i) => i.callId)).toEqual(
        Option.some(undefined)
      )
    }
    expect(Call.isStrictData("init", { callId: "" })).toBe(false)
    expect(Call.isStrictData("init", { callId: "c1", url: "x" })).toBe(false)
  })

  it("call:moved: needs a call id, and alone among the actions may go to a bare user", () => {
    const moved: Frame.Message = { type: "message", subtype: "call:moved", from: "bob|2", data: { callId: "c1" } }
    expect(Call.parse(moved)).toEqual(Option.some({ from: "bob|2", signal: Call.Signal.Moved(), callId: "c1" }))
    expect(Call.parse({ ...moved, data: {} })).toEqual(Option.none())
    expect(Call.parse({ type: "message", subtype: "call:moved", from: "bob|2" })).toEqual(Option.none())
    const toUser = Call.message("bob", Call.Signal.Moved(), { callId: "c1" })
    expect(toUser).toMatchObject({ to: "bob", subtype: "call:moved", data: { callId: "c1" } })
    expect(Call.isStrict(toUser)).toBe(true)
    expect(Call.isStrict(Call.message("bob", Call.Signal.Moved()))).toBe(false)
    expect(Call.isStrict(Call.message("bob", Call.Signal.Hangup({ reason: "hangup" }), { callId: "c1" }))).toBe(false)
  })
})
