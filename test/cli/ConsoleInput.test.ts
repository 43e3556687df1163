import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { Input, parse } from "../../src/cli/ConsoleInput.js"
import { fc, prop } from "../support/prop.js"

describe("console input", () => {
  it("reads each command, its words, and the rest of the line as typed", () => {
    expect(parse("  hello   there ")).toEqual(Result.succeed(Input.Say({ text: "hello   there" })))
    expect(parse("//join is text")).toEqual(Result.succeed(Input.Say({ text: "/join is text" })))
    expect(parse("")).toEqual(Result.succeed(Input.Nothing()))
    expect(parse("/join lobby")).toEqual(Result.succeed(Input.Join({ room: "lobby" })))
    expect(parse("/leave  lobby ")).toEqual(Result.succeed(Input.Leave({ room: "lobby" })))
    expect(parse("/msg bob|x1  two  spaces")).toEqual(Result.succeed(Input.Msg({ to: "bob|x1", text: "two  spaces" })))
    expect(parse("/cmd bob a:b")).toEqual(
      Result.succeed(Input.Cmd({ to: "bob", node: "a:b", action: undefined, data: undefined }))
    )
    expect(parse("/cmd bob a:b get")).toEqual(
      Result.succeed(Input.Cmd({ to: "bob", node: "a:b", action: "get", data: undefined }))
    )
    expect(parse("/cmd bob a:b set {\"x\": [1, 2]}")).toEqual(
      Result.succeed(Input.Cmd({ to: "bob", node: "a:b", action: "set", data: { x: [1, 2] } }))
    )
    expect(parse("/cmd bob a:b 42")).toEqual(
      Result.succeed(Input.Cmd({ to: "bob", node: "a:b", action: undefined, data: 42 }))
    )
    expect(parse("/event lobby ring {\"n\":1}")).toEqual(
      Result.succeed(Input.Event({ to: "lobby", name: "ring", data: { n: 1 } }))
    )
    expect(parse("/who")).toEqual(Result.succeed(Input.Who()))
    expect(parse("/presence")).toEqual(Result.succeed(Input.Presence()))
    expect(parse("/help")).toEqual(Result.succeed(Input.Help()))
    expect(parse("/quit")).toEqual(Result.succeed(Input.Quit()))
    expect(parse("/exit")).toEqual(Result.succeed(Input.Quit()))
  })

  it("says what is wrong with a line it cannot read", () => {
    expect(parse("/nope")).toEqual(Result.fail("Unknown command /nope: /help lists the commands"))
    expect(parse("/msg bob")).toEqual(Result.fail("Usage: /msg <to> <text>"))
    expect(parse("/cmd bob a:b set {x}")).toSatisfy((r: Result.Result<Input, string>) =>
      Result.isFailure(r) && r.failure.startsWith("Invalid JSON (")
    )
  })

  prop("any line is read or refused with a message, never thrown", [fc.string({ unit: "binary", maxLength: 80 })], ([
    line
  ]) => {
    const result = parse(line)
    if (Result.isFailure(result)) expect(result.failure.length).toBeGreaterThan(0)
    else if (!line.trim().startsWith("/") || line.trim().startsWith("//")) {
      expect(result.success._tag === "Say" || result.success._tag === "Nothing").toBe(true)
    }
  })

  prop("a command line with any words after it is read or refused, never thrown", [
    fc.constantFrom("join", "leave", "msg", "cmd", "event", "who", "presence", "help", "quit", "x"),
    fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.json({ maxDepth: 2 })), { maxLength: 5 })
  ], ([name, args]) => {
    const result = parse(`/${name} ${args.join(" ")}`)
    if (Result.isFailure(result)) expect(result.failure).toMatch(/^(Usage: \/\w+|Invalid JSON \(|Unknown command \/)/)
    if (name === "x") expect(result).toEqual(Result.fail("Unknown command /x: /help lists the commands"))
  })
})
