import { describe, expect, it } from "@effect/vitest"
import { Json } from "../../src/protocol/index.js"
import { fc, prop } from "../support/prop.js"
import { topLevelMembers } from "./jsonText.js"

/** The reference: read every top-level member as written and look for a key seen before. */
const repeats = (text: string): boolean => {
  const keys = topLevelMembers(text).map(([key]) => key)
  return new Set(keys).size !== keys.length
}

const detects = (text: string): boolean => Json.hasRepeatedKey(text, JSON.parse(text) as object)

// Key names that clash with each other once decoded, with nested keys and with strings holding their spelling.
const names = ["type", "from", "to", "data", "a", "ä", "a/b", "q\"", "", "x\\y", "\u2028", "😀"]

/** A key spelled as JSON, each character either plainly or (where `escape` says) as a `\u` escape. */
const spelled = fc.tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { maxLength: 3 })).map(([name, escape]) =>
  `"${
    Array.from(name, (ch, i) =>
      escape.length > 0 && escape[i % escape.length]
        ? Array.from(ch.split(""), (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")
        : JSON.stringify(ch).slice(1, -1)).join("")
  }"`
)

const space = fc.constantFrom("", "", "", " ", "\n\t ")

const leaf = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value)),
  fc.constantFrom(...names).map((name) => JSON.stringify(`"${name}":1,"${name}"`)),
  fc.constantFrom("\"\\\\\"", "\"\\\\\\\"\"", "\"a\\\\\\\\\"", "[]", "{}", "[[],{}]"),
  // Long values take the key-by-key search.
  fc.integer({ min: 1000, max: 1500 }).map((n) => JSON.stringify("x".repeat(n)))
)

const { object } = fc.letrec((tie) => ({
  object: fc.array(fc.tuple(space, spelled, space, space, tie("value"), space), { maxLength: 6 }).map((members) =>
    `{${members.map(([a, key, b, c, value, d]) => `${a}${key}${b}:${c}${value}${d}`).join(",")}}`
  ),
  value: fc.oneof(
    { depthSize: "small" },
    leaf,
    tie("object"),
    fc.array(tie("value"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`)
  )
}))

const text = fc.tuple(space, object as fc.Arbitrary<string>, space).map(([a, body, b]) => `${a}${body}${b}`)

describe("Json.hasRepeatedKey", () => {
  it("finds a repeated top-level key in any spelling, and nothing else", () => {
    expect(detects("{}")).toBe(false)
    expect(detects(`{"type":"message","from":"a|1"}`)).toBe(false)
    expect(detects(`{"from":"c|x","type":"message","from":"a|1"}`)).toBe(true)
    expect(detects(`{"fr\\u006fm":"c|x","type":"message","from":"a|1"}`)).toBe(true)
    expect(detects(`{ "from" : "c|x" , "from" :"a|1" }`)).toBe(true)
    expect(detects(`{"type":"message","data":{"type":1,"type":2}}`)).toBe(false)
    expect(detects(`{"type":"message","data":"\\"type\\":1,\\"type\\":2"}`)).toBe(false)
    expect(detects(`{"type":"message","data":"\\\\","type":"x"}`)).toBe(true)
    const long = "x".repeat(2000)
    expect(detects(`{"type":"message","data":"${long}"}`)).toBe(false)
    expect(detects(`{"type":"message","data":{"type":"${long}"}}`)).toBe(false)
    expect(detects(`{"type":"message","data":"${long}","type":"event"}`)).toBe(true)
    expect(detects(`{"type":"message","data":"${long}","typ\\u0065":"event"}`)).toBe(true)
  })

  prop("agrees with a plain reader of the top-level members", [text], ([text]) => {
    expect(detects(text)).toBe(repeats(text))
  }, { fastCheck: { numRuns: 2000 } })

  prop("never flags what JSON.stringify writes", [fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }))], ([
    value
  ]) => {
    expect(detects(JSON.stringify(value))).toBe(false)
  })
})
