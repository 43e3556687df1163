import { describe, expect, it } from "@effect/vitest"
import { envelope, forEachRecord, openEnvelope, publishEnvelope } from "../../src/redis/RedisBroker.js"
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

  prop(
    "a PUBLISH carries the envelope as it is, after the channel",
    [fc.array(record, { minLength: 1, maxLength: 8 }), fc.string({ minLength: 1, maxLength: 40 })],
    ([records, name]) => {
      const channel = Buffer.from(name)
      const body = envelope(records)
      const expected = Buffer.concat([
        Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$${channel.length}\r\n`, "latin1"),
        channel,
        Buffer.from(`\r\n$${body.length}\r\n`, "latin1"),
        body,
        Buffer.from("\r\n", "latin1")
      ])
      expect(publishEnvelope(channel, records).equals(expected)).toBe(true)
    }
  )

  prop("a visitor sees each record in order, and nothing of what is not an envelope", [
    fc.array(record, { minLength: 1, maxLength: 6 }),
    fc.nat()
  ], ([records, cut]) => {
    const whole = envelope(records)
    const seen: Array<{ ids: Array<string>; bytes: Uint8Array }> = []
    expect(forEachRecord(whole, (ids, bytes) => seen.push({ ids: [...ids], bytes: new Uint8Array(bytes) }))).toBe(true)
    expect(seen).toEqual(records)
    // Cut inside the last record: not an envelope, and nothing is handed out (not even the whole records before).
    const last = envelope(records.slice(-1)).length
    const at = whole.length - 1 - (cut % (last - 1))
    let calls = 0
    expect(forEachRecord(whole.subarray(0, at), () => calls++)).toBe(false)
    expect(calls).toBe(0)
  })

  it("a frame for many recipients carries every id", () => {
    const ids = Array.from({ length: 70_000 }, (_, i) => `s${i}`)
    const opened = openEnvelope(envelope([{ ids, bytes: new Uint8Array([0x81, 0]) }]))
    expect(opened?.[0]?.ids).toEqual(ids)
  })

  it("garbage is not an envelope", () => {
    expect(openEnvelope(Buffer.from("hello"))).toBeUndefined()
    expect(openEnvelope(Buffer.from([0, 0, 0, 2, 0x7b, 0x7d, 0, 0, 0, 0]))).toBeUndefined()
  })
})
