import { describe, expect, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { readFileSync } from "node:fs"
import { Frame } from "../../src/protocol/index.js"

const isRouted = (frame: Frame.Frame): frame is Frame.Routed =>
  frame.type === "message" || frame.type === "presence" || frame.type === "command" || frame.type === "event"

const Fixtures = Schema.Struct({
  description: Schema.String,
  accepted: Schema.Array(Schema.Struct({ label: Schema.String, raw: Schema.String })),
  refused: Schema.Array(Schema.Struct({
    label: Schema.String,
    raw: Schema.String,
    message: Schema.String,
    frameType: Schema.optionalKey(Schema.String),
    why: Schema.String
  }))
})

const fixtures = Schema.decodeUnknownSync(Schema.fromJsonString(Fixtures))(
  readFileSync(new URL("../fixtures/wire-frames.json", import.meta.url), "utf8")
)

describe("frames recorded from the JavaScript and C++ peers", () => {
  it("are many, distinct, from both servers, and cover every frame type", () => {
    const raws = fixtures.accepted.map((f) => f.raw)
    expect(raws.length).toBeGreaterThanOrEqual(25)
    expect(new Set(raws).size).toBe(raws.length)
    expect(fixtures.accepted.some((f) => f.label.startsWith("JS-"))).toBe(true)
    expect(fixtures.accepted.some((f) => f.label.startsWith("CPP-"))).toBe(true)
    const types = new Set(raws.map((raw) => (JSON.parse(raw) as { type: string }).type))
    expect([...types].sort()).toStrictEqual([...Frame.types].sort())
  })

  for (const { label, raw } of fixtures.accepted) {
    it(`decodes ${label}: ${raw.length > 80 ? raw.slice(0, 80) + "…" : raw}`, () => {
      const decoded = Frame.decode(raw)
      if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
      const wire = JSON.parse(raw) as unknown
      expect(decoded.success).toStrictEqual(wire)
      expect(JSON.parse(Frame.unsafeEncode(decoded.success))).toStrictEqual(wire)
      expect(Result.map(Frame.encode(decoded.success), (text) => JSON.parse(text))).toStrictEqual(Result.succeed(wire))
      // routed frames are forwarded as received: re-encoding gives back the very bytes, key order included
      if (isRouted(decoded.success)) expect(Frame.unsafeEncode(decoded.success)).toBe(raw)
    })
  }

  for (const { frameType, label, message, raw, why } of fixtures.refused) {
    it(`refuses ${label}: ${raw} (${why})`, () => {
      const decoded = Frame.decode(raw)
      if (Result.isSuccess(decoded)) throw new Error(`accepted ${raw}`)
      expect(decoded.failure.status).toBe(400)
      expect(decoded.failure.message).toBe(message)
      expect(decoded.failure.frameType).toBe(frameType)
    })
  }
})
