import { describe, expect, it } from "@effect/vitest"
import { Address, Peer } from "../../src/protocol/index.js"
import { fc, prop } from "../support/prop.js"

const part = fc.string({ maxLength: 12 })
const user = part.filter((s) => !s.includes("|"))
/** Strings rich in separators, so the properties meet `|` in every position. */
const barred = fc.array(fc.constantFrom("|", "a", "b", "", "é"), { maxLength: 8 }).map((xs) => xs.join(""))

describe("Address", () => {
  it("parses user|id, user, |id and user|", () => {
    expect(Address.parse("alice|ata63vh6")).toStrictEqual({ user: "alice", id: "ata63vh6" })
    expect(Address.parse("alice")).toStrictEqual({ user: "alice", id: "" })
    expect(Address.parse("|ata63vh6")).toStrictEqual({ user: "", id: "ata63vh6" })
    expect(Address.parse("alice|")).toStrictEqual({ user: "alice", id: "" })
    expect(Address.parse("")).toStrictEqual({ user: "", id: "" })
    // everything after the first bar is the id, as the C++ server parses it
    expect(Address.parse("bob|abc|extra")).toStrictEqual({ user: "bob", id: "abc|extra" })
    // C++ ids contain + and /
    expect(Address.parse("erin|0weEk/OymOgoAiaj")).toStrictEqual({ user: "erin", id: "0weEk/OymOgoAiaj" })
  })

  it("formats user, user|id and |id", () => {
    expect(Address.format(Address.make("alice", "x1"))).toBe("alice|x1")
    expect(Address.format(Address.make("alice"))).toBe("alice")
    expect(Address.format(Address.make("", "x1"))).toBe("|x1")
    expect(Address.format(Address.make("", ""))).toBe("")
    expect(Peer.address({ user: "fred", id: "fohjDfDVvFQmkdF+" })).toBe("fred|fohjDfDVvFQmkdF+")
  })

  it("is valid with a user or an id, full with both", () => {
    expect(Address.isValid(Address.parse("alice"))).toBe(true)
    expect(Address.isValid(Address.parse("|x"))).toBe(true)
    expect(Address.isValid(Address.parse("a|x"))).toBe(true)
    expect(Address.isValid(Address.parse(""))).toBe(false)
    expect(Address.isValid(Address.parse("|"))).toBe(false)
    expect(Address.isFull(Address.parse("a|x"))).toBe(true)
    expect(Address.isFull(Address.parse("a"))).toBe(false)
    expect(Address.isFull(Address.parse("|x"))).toBe(false)
    expect(Address.isFull(Address.parse("a|"))).toBe(false)
    expect(Address.hasSeparator("a|x")).toBe(true)
    expect(Address.hasSeparator("lobby")).toBe(false)
  })

  prop("parse ∘ format is the identity on addresses whose user has no bar", [user, part], ([u, id]) => {
    expect(Address.parse(Address.format(Address.make(u, id)))).toStrictEqual({ user: u, id })
  }, { fastCheck: { numRuns: 1000 } })

  prop("parse ∘ format is the identity on bar-rich ids", [user, barred], ([u, id]) => {
    expect(Address.parse(Address.format(Address.make(u, id)))).toStrictEqual({ user: u, id })
  }, { fastCheck: { numRuns: 1000 } })

  prop("format ∘ parse is the identity except for a lone trailing bar", [fc.oneof(barred, part)], ([text]) => {
    const lone = text.indexOf("|") === text.length - 1
    expect(Address.format(Address.parse(text))).toBe(lone ? text.slice(0, -1) : text)
  }, { fastCheck: { numRuns: 1000 } })

  prop("parse splits at the first bar", [barred], ([text]) => {
    const { id, user: u } = Address.parse(text)
    expect(u.includes("|")).toBe(false)
    expect(Address.hasSeparator(text) ? `${u}|${id}` : u).toBe(text)
    expect(Address.isValid({ user: u, id })).toBe(u !== "" || id !== "")
    expect(Address.isFull({ user: u, id })).toBe(u !== "" && id !== "")
  }, { fastCheck: { numRuns: 1000 } })
})
