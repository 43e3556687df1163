import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { Frame } from "../../src/protocol/index.js"

/**
 * Refusals of values built in memory (the wire ones are in `WireFixtures.test.ts`), with the messages Effect 3's
 * `ArrayFormatter` gave for them, recorded from the Effect 3 build: error frames and logs keep that wording.
 */
const refusals: ReadonlyArray<readonly [string, unknown, string]> = [
  [
    "a NaN JSON value",
    { type: "message", data: Number.NaN },
    "Invalid message frame: \"data\": Expected null, actual NaN"
  ],
  [
    "an undefined JSON value",
    { type: "message", data: undefined },
    "Invalid message frame: \"data\": Expected null, actual undefined"
  ],
  [
    "a bad value deep in a JSON value, reported at the JSON value",
    { type: "command", form: { a: [{ b: Number.NaN }] } },
    "Invalid command frame: \"form\": Expected null, actual {\"a\":[{\"b\":NaN}]}"
  ],
  [
    "a bad value in a JSON array",
    { type: "auth", user: "u", rooms: [[1, [2, [Number.NaN]]]] },
    "Invalid auth frame: \"rooms\".0: Expected null, actual [1,[2,[NaN]]]"
  ],
  [
    "an undefined value in a JSON object",
    { type: "auth", user: "u", data: { a: undefined } },
    "Invalid auth frame: \"data\".\"a\": Expected null, actual undefined"
  ],
  [
    "an infinite number",
    {
      type: "welcome",
      protocol: "symple/4",
      status: Number.POSITIVE_INFINITY,
      peer: { id: "i", user: "u" },
      rooms: []
    },
    "Invalid welcome frame: \"status\": Expected a finite number, actual Infinity"
  ],
  [
    "a NaN number",
    { type: "event", time: Number.NaN },
    "Invalid event frame: \"time\": Expected a finite number, actual NaN"
  ],
  [
    "a bad peer field",
    { type: "welcome", protocol: "symple/4", status: 200, peer: { id: "i", user: Number.NaN }, rooms: [] },
    "Invalid welcome frame: \"peer\".\"user\": Expected string, actual NaN"
  ],
  [
    "a bad peer extra",
    { type: "welcome", protocol: "symple/4", status: 200, peer: { id: "i", user: "u", x: undefined }, rooms: [] },
    "Invalid welcome frame: \"peer\".\"x\": Expected null, actual undefined"
  ],
  [
    "a bad element of a string array",
    { type: "welcome", protocol: "symple/4", status: 200, peer: { id: "i", user: "u" }, rooms: ["a", 42] },
    "Invalid welcome frame: \"rooms\".1: Expected string, actual 42"
  ],
  [
    "an array for an object",
    { type: "auth", user: "u", data: ["a"] },
    "Invalid auth frame: \"data\": Expected JsonObject, actual [\"a\"]"
  ],
  [
    "a string for a number",
    { type: "error", status: "200" },
    "Invalid error frame: \"status\": Expected number, actual \"200\""
  ]
]

/** `Frame.encode` validates against the union of every frame: what it says when the tag matches no frame. */
const untagged: ReadonlyArray<readonly [string, unknown, string]> = [
  [
    "an unknown type",
    { type: "bogus", x: 1 },
    "Invalid bogus frame: \"type\": Expected \"auth\" | \"welcome\" | \"error\" | \"message\" | \"presence\" | \"command\" | \"event\" | \"join\" | \"join:ok\" | \"leave\" | \"leave:ok\" | \"close\", actual \"bogus\""
  ],
  ["no type", {}, "Invalid undefined frame: \"type\": is missing"],
  ["not an object", "x", "Invalid undefined frame: Expected Frame, actual \"x\""]
]

const message = (result: Result.Result<unknown, { readonly message: string }>): string =>
  Result.isFailure(result) ? result.failure.message : `accepted ${JSON.stringify(result.success)}`

describe("error wording stays Effect 3's", () => {
  for (const [label, value, expected] of refusals) {
    it(label, () => {
      expect(message(Frame.decodeUnknown(value))).toBe(expected)
      expect(message(Frame.encode(value as Frame.Frame))).toBe(expected)
    })
  }
  for (const [label, value, expected] of untagged) {
    it(`encode: ${label}`, () => {
      expect(message(Frame.encode(value as Frame.Frame))).toBe(expected)
    })
  }
})
