import { describe, expect, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { Frame, FrameError, Json } from "../../src/protocol/index.js"
import { fc, fromSchema, prop } from "../support/prop.js"

const schemas = Frame.schemas

/** JSON cannot carry `-0` (`JSON.stringify(-0)` is `"0"`); every other value must come back exactly. */
const wireValue = (u: unknown): unknown =>
  Object.is(u, -0)
    ? 0
    : Array.isArray(u)
    ? u.map(wireValue)
    : Json.isObject(u)
    ? Object.fromEntries(Object.entries(u).map(([k, v]) => [k, wireValue(v)]))
    : u

const roundTrip = (frame: Frame.Frame) => {
  const text = Frame.unsafeEncode(frame)
  const decoded = Frame.decode(text)
  if (Result.isFailure(decoded)) throw new Error(`${text} did not decode: ${decoded.failure.message}`)
  expect(decoded.success).toStrictEqual(wireValue(frame))
  // the validating encoder writes the same JSON value (key order aside) and it decodes to the same frame
  const encoded = Frame.encode(frame)
  if (Result.isFailure(encoded)) throw new Error(`${text} did not encode: ${encoded.failure.message}`)
  expect(JSON.parse(encoded.success)).toStrictEqual(wireValue(frame))
  expect(Frame.decode(encoded.success)).toStrictEqual(Result.succeed(wireValue(frame)))
  // a binary WebSocket frame carrying the same text decodes the same way
  expect(Frame.decode(new TextEncoder().encode(text))).toStrictEqual(decoded)
}

const expectBadRequest = (result: Result.Result<unknown, FrameError>, message?: string | RegExp) => {
  if (Result.isSuccess(result)) throw new Error(`accepted: ${JSON.stringify(result.success).slice(0, 200)}`)
  expect(result.failure).toBeInstanceOf(FrameError)
  expect(result.failure.status).toBe(400)
  expect(result.failure.message.length).toBeGreaterThan(0)
  expect(result.failure.message).not.toContain("\n")
  if (message !== undefined) expect(result.failure.message).toMatch(message)
}

describe("Frame round trips", () => {
  it("covers every frame type", () => {
    expect([...Frame.types].sort()).toStrictEqual(Object.keys(schemas).sort())
  })

  for (const [type, schema] of Object.entries(schemas)) {
    it.prop(`decode ∘ encode is the identity for ${type}`, [schema as Schema.Codec<Frame.Frame>], ([frame]) => {
      expect(frame.type).toBe(type)
      roundTrip(frame)
    }, { arbitrary: { runs: 300 } })
  }

  it.prop("decode ∘ encode is the identity for the union", [Frame.Frame], ([frame]) => roundTrip(frame), {
    arbitrary: { runs: 500 }
  })

  const known = new Set([
    "type",
    "id",
    "from",
    "to",
    "subtype",
    "data",
    "status",
    "notes",
    "probe",
    "node",
    "action",
    "form",
    "name",
    "time",
    "message"
  ])
  const extraKey = fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !known.has(k) && k !== "__proto__")
  const extras = fc.dictionary(extraKey, fromSchema(Json.Json), { minKeys: 1, maxKeys: 5 })
  const routedType = fc.constantFrom("message" as const, "presence" as const, "command" as const, "event" as const)

  const routedFrame = { type: routedType, extra: extras, id: fc.string() }
  prop("routed frames keep extra fields", routedFrame, ({ extra, id, type }) => {
    const frame = { ...extra, type, id } as Frame.Frame
    const decoded = Frame.decode(JSON.stringify(frame))
    expect(decoded).toStrictEqual(Result.succeed(wireValue(frame)))
    const again = Result.flatMap(decoded, Frame.encode)
    expect(Result.map(again, (text) => JSON.parse(text))).toStrictEqual(Result.succeed(wireValue(frame)))
    for (const key of Object.keys(extra)) expect(Result.getOrThrow(decoded)).toHaveProperty([key])
  }, { fastCheck: { numRuns: 300 } })

  it("keeps the extra fields of a recorded frame", () => {
    const text =
      "{\"type\":\"presence\",\"probe\":true,\"data\":{\"user\":\"bob\",\"rooms\":[]},\"capabilities\":{\"video\":true},\"x\":null}"
    expect(Frame.decode(text)).toStrictEqual(Result.succeed(JSON.parse(text)))
  })

  it("refuses on encode what the wire cannot carry", () => {
    expectBadRequest(Frame.encode({ type: "error", status: Number.POSITIVE_INFINITY, message: "x" }), /status/)
    expectBadRequest(Frame.encode({ type: "event", name: "n", time: Number.NaN }), /time/)
    expectBadRequest(Frame.encode({ type: "join:ok", room: 42 } as unknown as Frame.Frame), /room/)
    expectBadRequest(Frame.encode({ type: "message", data: undefined } as unknown as Frame.Frame))
  })

  it("drops __proto__ keys on encode, so what it writes is readable", () => {
    const data = JSON.parse("{\"__proto__\":{\"polluted\":true},\"ok\":1}") as Json.Json
    const encoded = Frame.encode({ type: "message", data })
    expect(Result.map(encoded, (text) => text.includes("__proto__"))).toStrictEqual(Result.succeed(false))
    expect(Result.flatMap(encoded, Frame.decode)).toStrictEqual(Result.succeed({ type: "message", data: { ok: 1 } }))
  })
})

describe("Frame.decode refuses hostile input with a 400 and never throws", () => {
  const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
    ["null", "null", /Expected a JSON object, got null/],
    ["an empty array", "[]", /got an array/],
    ["a number", "42", /got a number/],
    ["a string", "\"x\"", /got a string/],
    ["true", "true", /got a boolean/],
    ["an empty object", "{}", /Missing message type/],
    ["a numeric type", "{\"type\":7}", /type must be a string/],
    ["a null type", "{\"type\":null}", /type must be a string/],
    ["an unknown type", "{\"type\":\"bogus\",\"x\":1}", /Unknown message type "bogus"/],
    ["an inherited type name", "{\"type\":\"toString\"}", /Unknown message type "toString"/],
    ["no type", "{\"hello\":\"no type\"}", /Missing message type/],
    ["invalid JSON", "this is not json", /^Invalid JSON$/],
    ["truncated JSON", "{\"type\":\"message\"", /^Invalid JSON$/],
    ["an empty frame", "", /^Empty frame$/],
    ["a blank frame", "  \n", /^Empty frame$/],
    ["a non-string room", "{\"type\":\"join\",\"room\":42}", /Invalid join frame: "room"/],
    ["a numeric user", "{\"type\":\"auth\",\"user\":123}", /Invalid auth frame: "user"/],
    ["auth without user", "{\"type\":\"auth\",\"name\":\"x\"}", /Invalid auth frame: "user"/],
    ["a non-object auth data", "{\"type\":\"auth\",\"user\":\"a\",\"data\":[1]}", /Invalid auth frame: "data"/],
    ["a string status", "{\"type\":\"message\",\"status\":\"200\"}", /Invalid message frame: "status"/],
    ["a numeric from", "{\"type\":\"message\",\"from\":5}", /Invalid message frame: "from"/],
    ["a string probe", "{\"type\":\"presence\",\"probe\":\"yes\"}", /Invalid presence frame: "probe"/],
    ["a welcome without peer", "{\"type\":\"welcome\",\"protocol\":\"symple/4\",\"status\":200,\"rooms\":[]}", /peer/],
    ["a 1,000-deep nested array", "[".repeat(1000) + "]".repeat(1000), /got an array/],
    ["a 100,000-deep nested array", "[".repeat(100_000) + "]".repeat(100_000), /./],
    ["a 5 MB string", JSON.stringify("x".repeat(5 * 1024 * 1024)), /got a string/],
    ["a 5 MB non-JSON text", "x".repeat(5 * 1024 * 1024), /^Invalid JSON$/],
    ["a __proto__ key", "{\"type\":\"message\",\"__proto__\":{\"polluted\":true}}", /__proto__/],
    [
      "a nested __proto__ key",
      "{\"type\":\"message\",\"data\":{\"a\":[{\"__proto__\":{\"polluted\":true}}]}}",
      /__proto__/
    ],
    ["an escaped __proto__ key", "{\"type\":\"message\",\"\\u005f_proto__\":{\"polluted\":true}}", /__proto__/],
    [
      "a __proto__ auth data",
      "{\"type\":\"auth\",\"user\":\"a\",\"data\":{\"__proto__\":{\"polluted\":true}}}",
      /__proto__/
    ]
  ]

  for (const [label, text, message] of cases) {
    it(label, () => {
      expectBadRequest(Frame.decode(text), message)
      expectBadRequest(Frame.decode(new TextEncoder().encode(text)), message)
    })
  }

  it("refuses values that are not JSON text through decodeUnknown", () => {
    for (const u of [null, [], 42, "x", undefined, () => 1, Symbol("s"), { type: 7 }, {}]) {
      expectBadRequest(Frame.decodeUnknown(u))
    }
    expectBadRequest(Frame.decodeUnknown({ type: "message", data: Number.NaN }), /data/)
    expectBadRequest(Frame.decodeUnknown({ type: "message", data: undefined }), /data/)
  })

  it("refuses invalid UTF-8", () => {
    expectBadRequest(Frame.decode(new Uint8Array([0xff, 0xfe, 0xfd])), /^Invalid UTF-8$/)
    const bytes = new TextEncoder().encode("{\"type\":\"message\",\"data\":\"..\"}")
    bytes[bytes.length - 3] = 0xc3
    bytes[bytes.length - 4] = 0x28
    expectBadRequest(Frame.decode(bytes), /^Invalid UTF-8$/)
    expectBadRequest(Frame.decode(new Uint8Array([0xed, 0xa0, 0x80])), /^Invalid UTF-8$/) // a UTF-16 surrogate
  })

  it("accepts deep nesting inside data, and encodes it", () => {
    const deep = "[".repeat(1000) + "]".repeat(1000)
    const text = `{"type":"message","data":${deep}}`
    const decoded = Frame.decode(text)
    expect(Result.isSuccess(decoded)).toBe(true)
    expect(Result.flatMap(decoded, Frame.encode)).toStrictEqual(Result.succeed(text))
  })

  it("never throws on pathological nesting built in memory", () => {
    let data: Json.Json = []
    for (let i = 0; i < 100_000; i++) data = [data]
    const frame = { type: "message", data } as const
    expect(() => Frame.decodeUnknown(frame)).not.toThrow()
    expect(() => Frame.encode(frame)).not.toThrow()
    expectBadRequest(Frame.decodeUnknown(frame), /nested too deeply/)
    expectBadRequest(Frame.encode(frame))
  })

  it("leaves Object.prototype untouched", () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    const texts = [
      "{\"type\":\"message\",\"__proto__\":{\"polluted\":true}}",
      "{\"type\":\"presence\",\"data\":{\"__proto__\":{\"polluted\":true}}}",
      "{\"type\":\"message\",\"constructor\":{\"prototype\":{\"polluted\":true}}}",
      "{\"type\":\"auth\",\"user\":\"u\",\"data\":{\"constructor\":{\"prototype\":{\"polluted\":true}}}}",
      "{\"type\":\"welcome\",\"protocol\":\"symple/4\",\"status\":200,\"rooms\":[],\"peer\":{\"id\":\"i\",\"user\":\"u\",\"__proto__\":{\"polluted\":true}}}"
    ]
    for (const text of texts) {
      const result = Frame.decode(text)
      // whatever the outcome, decoding and re-encoding must not reach the prototype chain
      Result.map(result, (frame) => Frame.encode(frame))
      Result.map(result, (frame) => JSON.stringify({ ...frame }))
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toStrictEqual(before)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype).not.toHaveProperty("polluted")
    // constructor/prototype keys are harmless data and are kept as such
    const kept = Frame.decode(texts[2]!)
    expect(Result.map(kept, (frame) => Object.hasOwn(frame, "constructor"))).toStrictEqual(Result.succeed(true))
  })

  const neverThrows = (raw: string | Uint8Array) => {
    const result = Frame.decode(raw)
    if (Result.isFailure(result)) {
      expect(result.failure.status).toBe(400)
      expect(result.failure.message).not.toBe("")
    } else {
      expect(Frame.isType(result.success.type)).toBe(true)
      expect(Result.isSuccess(Frame.encode(result.success))).toBe(true)
    }
  }

  it("numbers that overflow a double are refused (JSON cannot carry an infinity); underflow is just 0", () => {
    // Found by the mangled-bytes property: e-79 became e379, which JSON.parse reads as -Infinity.
    expectBadRequest(
      Frame.decode("{\"probe\":-4.969729477061672e379,\"id\":\"error\",\"type\":\"command\"}"),
      "Number out of range"
    )
    expectBadRequest(Frame.decode("{\"type\":\"message\",\"data\":1E+309}"), "Number out of range")
    expectBadRequest(Frame.decode(`{"type":"message","data":${"9".repeat(400)}}`), "Number out of range")
    expect(Frame.decode("{\"type\":\"message\",\"data\":1e308}")).toStrictEqual(
      Result.succeed({ type: "message", data: 1e308 })
    )
    expect(Frame.decode("{\"type\":\"message\",\"data\":1e-400}")).toStrictEqual(
      Result.succeed({ type: "message", data: 0 })
    )
    expect(Frame.decode(`{"type":"message","data":"${"9".repeat(400)}e999"}`)).toStrictEqual(
      Result.succeed({ type: "message", data: `${"9".repeat(400)}e999` })
    )
  })

  prop("arbitrary strings", [fc.string({ unit: "binary", maxLength: 200 })], ([s]) => neverThrows(s), {
    fastCheck: { numRuns: 1000 }
  })
  prop("arbitrary bytes", [fc.uint8Array({ maxLength: 200 })], ([b]) => neverThrows(b), {
    fastCheck: { numRuns: 1000 }
  })
  prop("arbitrary JSON", [fc.json({ maxDepth: 4 })], ([s]) => neverThrows(s), { fastCheck: { numRuns: 1000 } })

  const fieldValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...Frame.types))
  const frameLike = fc.record({
    type: fc.oneof(fc.constantFrom(...Frame.types), fc.jsonValue({ maxDepth: 1 })),
    fields: fc.dictionary(
      fc.constantFrom("user", "id", "from", "to", "data", "status", "room", "peer", "rooms", "probe", "time", "x"),
      fieldValue
    )
  }).map(({ fields, type }) => JSON.stringify({ ...fields, type }))
  prop("arbitrary frame-like objects", [frameLike], ([s]) => neverThrows(s), { fastCheck: { numRuns: 2000 } })
  const mutated = fc.tuple(
    fromSchema(Frame.Frame),
    fc.constantFrom("id", "from", "to", "status", "time", "probe", "node", "data", "user", "room", "peer", "rooms"),
    fc.option(fc.jsonValue({ maxDepth: 2 }))
  ).map(([frame, key, value]) => JSON.stringify(value === null ? frame : { ...frame, [key]: value }))
  // `decode` refuses `__proto__` keys before validating (on purpose), so such texts have nothing to compare.
  const comparable = fc.oneof(mutated, frameLike).filter((text) => !text.includes("__proto__"))
  prop("the parsed-JSON fast path agrees with the schemas", [comparable], ([text]) => {
    const slow = Frame.decodeUnknown(JSON.parse(text))
    expect(Frame.decode(text)).toStrictEqual(slow)
  }, { fastCheck: { numRuns: 3000 } })
  prop("arbitrary frame-like objects with mangled bytes", [frameLike, fc.nat(), fc.integer({ min: 0, max: 255 })], (
    [s, at, byte]
  ) => {
    const bytes = new TextEncoder().encode(s)
    bytes[at % bytes.length] = byte
    neverThrows(bytes)
  }, { fastCheck: { numRuns: 1000 } })
})
