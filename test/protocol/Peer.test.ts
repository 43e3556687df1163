import { describe, expect, it } from "@effect/vitest"
import { Option, Result, Schema } from "effect"
import { Json, Peer } from "../../src/protocol/index.js"
import { fc } from "../support/prop.js"

describe("Peer", () => {
  it("keeps every application field of a JS server peer, token included", () => {
    // JS-19: the JS server's peer object is the auth frame merged with the session
    const peer = {
      type: "auth",
      user: "hank",
      name: "Hank (from session)",
      token: "tok-hank",
      rooms: ["team-r"],
      role: "admin",
      id: "mtyzhsj2xm1w1q4bjk4zm",
      online: true,
      host: "127.0.0.1"
    }
    expect(Peer.decode(peer)).toStrictEqual(Option.some(peer))
  })

  it("keeps the extra fields of a C++ server peer", () => {
    const peer = {
      agent: "raw",
      id: "g04uExQrMuRO239v",
      name: "Carol",
      online: true,
      peerType: "bot",
      type: "Peer",
      user: "carol"
    }
    expect(Peer.decode(peer)).toStrictEqual(Option.some(peer))
    expect(Peer.address(peer)).toBe("carol|g04uExQrMuRO239v")
  })

  it("needs a string id and user, and JSON extras", () => {
    expect(Peer.decode({ id: "x" })).toStrictEqual(Option.none())
    expect(Peer.decode({ id: "x", user: 123 })).toStrictEqual(Option.none())
    expect(Peer.decode({ id: "x", user: "u", online: "yes" })).toStrictEqual(Option.none())
    expect(Peer.decode({ id: "x", user: "u", extra: Number.NaN })).toStrictEqual(Option.none())
    expect(Peer.decode({ id: "x", user: "u", extra: undefined })).toStrictEqual(Option.none())
  })

  it("reserves the keys the server owns", () => {
    expect([...Peer.reservedKeys].sort()).toStrictEqual(["id", "name", "online", "type", "user"])
  })

  it.prop("extra fields survive a trip through JSON", {
    peer: Peer.Peer
  }, ({ peer }) => {
    const back = Peer.decode(JSON.parse(JSON.stringify(peer)))
    expect(back).toStrictEqual(Option.some(JSON.parse(JSON.stringify(peer))))
  })
})

describe("Json", () => {
  const validate = Schema.decodeUnknownResult(Schema.toType(Json.Json))

  it("admits JSON values only", () => {
    for (const u of [null, true, 0, -1.5, "", [], {}, { a: [1, { b: null }] }]) {
      expect(validate(u)).toStrictEqual(Result.succeed(u))
    }
    for (const u of [undefined, Number.NaN, Number.POSITIVE_INFINITY, () => 1, [undefined], { a: undefined }]) {
      expect(Result.isFailure(validate(u))).toBe(true)
    }
  })

  it("has no __proto__ keys", () => {
    const hostile = JSON.parse("{\"__proto__\":{\"polluted\":true},\"a\":1}") as unknown
    expect(validate(hostile)).toStrictEqual(Result.succeed({ a: 1 }))
    expect(Schema.is(Json.Key)("__proto__")).toBe(false)
    expect(Schema.is(Json.Key)("constructor")).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  const keys = (value: Json.Json): Array<string> =>
    Array.isArray(value)
      ? value.flatMap(keys)
      : Json.isObject(value)
      ? Object.keys(value).flatMap((key) => [key, ...keys(value[key]!)])
      : []

  it.prop("never generates what JSON cannot carry", [Json.Json], ([value]) => {
    expect(typeof JSON.stringify(value)).toBe("string")
    // No key may be `__proto__` (a string value may well be: fast-check likes that string).
    expect(keys(value)).not.toContain("__proto__")
    expect(validate(JSON.parse(JSON.stringify(value)))).toStrictEqual(Result.succeed(JSON.parse(JSON.stringify(value))))
  })

  it("isObject is true for objects only", () => {
    expect(Json.isObject({})).toBe(true)
    expect(Json.isObject([])).toBe(false)
    expect(Json.isObject(null)).toBe(false)
    expect(Json.isObject("x")).toBe(false)
    expect(fc.sample(fc.array(fc.anything()), 20).every((a) => !Json.isObject(a))).toBe(true)
  })
})
