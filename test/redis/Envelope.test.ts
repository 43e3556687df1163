import { describe, expect, it } from "@effect/vitest"
import { envelope, openEnvelope } from "../../src/redis/RedisBroker.js"
import { fc, prop } from "../support/prop.js"

const record = fc.record({
  ids: fc.array(fc.string({ unit: "grapheme" }), { minLength: 1, maxLength: 5 }),
  bytes: fc.uint8Array({ maxLength: 300 })
})

describe("envelopes between nodes", () => {
  prop(
    "records come out as they went in, in order",
    [fc.array(record, { minLength: 1, maxLength: 8 })],
    ([records]) => {
      const opened = openEnvelope(envelope(records))
      expect(opened?.map((r) => ({ ids: r.ids, bytes: new Uint8Array(r.bytes) }))).toEqual(records)
    }
  )

  prop("a cut envelope is refused, never misread", [fc.array(record, { minLength: 1, maxLength: 4 }), fc.nat()], (
    [records, cut]
  ) => {
    const whole = envelope(records)
    const at = 1 + (cut % (whole.length - 1))
    const opened = openEnvelope(whole.subarray(0, at))
    // A cut between two records is a shorter envelope; anywhere else it is not one.
    if (opened !== undefined) expect(opened.length).toBeLessThan(records.length)
  })

  it("garbage is not an envelope", () => {
    expect(openEnvelope(Buffer.from("hello"))).toBeUndefined()
    expect(openEnvelope(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d, 0, 0, 0, 0]))).toBeUndefined()
  })
})
