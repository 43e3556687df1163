import { describe, expect, it } from "@effect/vitest"
import { Option, Result } from "effect"
import * as Form from "../../src/protocol/Form.js"
import { Frame, Json } from "../../src/protocol/index.js"
import { fc, prop } from "../support/prop.js"

/** The example of wire-survey.md §7.6, with its elided strings filled in. */
const surveyExample = JSON.parse(
  `{"type":"form","action":"form","partial":false,"id":"profile","label":"Profile","hint":"Edit your profile",
 "elements":[
   {"type":"page","id":"main","label":"Profile Settings","elements":[
     {"type":"section","id":"basic","label":"Basic Info","live":true,"elements":[
       {"type":"text","id":"name","label":"Display Name","hint":"Shown to others","values":["Alice"]},
       {"type":"list","id":"role","label":"Role","options":{"admin":"Administrator","member":"Member"},"values":["member"]},
       {"type":"boolean","id":"active","label":"Active","values":["1"],"error":"Cannot deactivate yourself"}]}]}]}`
) as unknown

const build = (): Form.Form =>
  Form.make([
    Form.page("main", "Profile Settings", [
      Form.section("basic", "Basic Info", [
        Form.text("name", "Display Name", "Alice", { hint: "Shown to others" }),
        Form.list("role", "Role", { admin: "Administrator", member: "Member" }, ["member"]),
        Form.boolean("active", "Active", true, { error: "Cannot deactivate yourself" })
      ], { live: true })
    ])
  ], { id: "profile", label: "Profile", hint: "Edit your profile" })

/** JSON cannot carry `-0`; everything else must come back exactly. */
const wireValue = (u: unknown): unknown => JSON.parse(JSON.stringify(u))

const throughTheWire = (form: Form.Form): Option.Option<Form.Form> => {
  const text = Result.getOrThrow(Frame.encode(Form.toCommand("profile:edit", form, { to: "bob|b1" })))
  const frame = Result.getOrThrow(Frame.decode(text))
  if (frame.type !== "command") throw new Error(`not a command: ${text}`)
  return Form.fromCommand(frame)
}

describe("Form builders", () => {
  it("build exactly the survey's example", () => {
    expect(build()).toStrictEqual(surveyExample)
    expect(Result.isSuccess(Form.decode(surveyExample))).toBe(true)
  })

  it("write action and partial, which the C++ reader requires", () => {
    expect(Form.make([])).toStrictEqual({ type: "form", action: "form", partial: false, elements: [] })
    expect(Form.make([], { action: "result", partial: true })).toMatchObject({ action: "result", partial: true })
  })

  it("write values as strings: booleans 1/0, numbers stringified", () => {
    expect(Form.boolean("b", "B", false).values).toStrictEqual(["0"])
    expect(Form.boolean("b", "B", true).values).toStrictEqual(["1"])
    expect(Form.number("n", "N", 42).values).toStrictEqual(["42"])
    expect(Form.number("n", "N", 1.5).values).toStrictEqual(["1.5"])
    expect(Form.field("list-multi", "l", "L", { values: ["a", 2, true] }).values).toStrictEqual(["a", "2", "1"])
    expect(Form.list("l", "L", { a: "A", b: "B" }, ["a", "b"], { multiple: true })).toStrictEqual({
      type: "list-multi",
      id: "l",
      label: "L",
      options: { a: "A", b: "B" },
      values: ["a", "b"]
    })
    expect(Form.text("t", "T")).toStrictEqual({ type: "text", id: "t", label: "T" })
  })

  it("put the form in a command request", () => {
    const command = Form.toCommand("profile:edit", build(), { to: "bob|b1" })
    expect(command).toMatchObject({ type: "command", node: "profile:edit", action: "execute", to: "bob|b1" })
    expect(command.form).toStrictEqual(surveyExample)
    expect(command.id).toMatch(/^[0-9A-Za-z]{16}$/)
  })
})

describe("Form readers", () => {
  const form = build()

  it("find fields by id, depth first", () => {
    const name = Form.getField(form, "name")
    expect(Option.map(name, Form.value)).toStrictEqual(Option.some(Option.some("Alice")))
    expect(Option.map(Form.getField(form, "role"), Form.values)).toStrictEqual(Option.some(["member"]))
    expect(Form.getField(form, "missing")).toStrictEqual(Option.none())
    expect(Form.hasField(form, "active")).toBe(true)
    expect(Form.hasField(form, "activ")).toBe(false)
    expect(Form.hasField(form, "activ", { partial: true })).toBe(true)
    // pages and sections are found too, as in C++
    expect(Option.map(Form.getField(form, "basic"), (e) => e.type)).toStrictEqual(Option.some("section"))
    expect(Form.descendants(form).map((e) => e.id)).toStrictEqual(["main", "basic", "name", "role", "active"])
    expect(Form.fields(form).map((e) => e.id)).toStrictEqual(["name", "role", "active"])
    expect(Form.entries(form)).toStrictEqual([["name", ["Alice"]], ["role", ["member"]], ["active", ["1"]]])
  })

  it("read booleans: 1, true and on are true", () => {
    const read = (values: ReadonlyArray<string>) => Form.boolValue({ type: "boolean", values })
    expect(read(["1"])).toBe(true)
    expect(read(["true"])).toBe(true)
    expect(read(["on"])).toBe(true)
    expect(read(["0"])).toBe(false)
    expect(read(["false"])).toBe(false)
    expect(read(["off"])).toBe(false)
    expect(read(["yes"])).toBe(false)
    expect(read([""])).toBe(false)
    expect(read([])).toBe(false)
    expect(Form.boolValue({ type: "boolean" })).toBe(false)
    expect(Option.map(Form.getField(form, "active"), Form.boolValue)).toStrictEqual(Option.some(true))
  })

  prop("boolValue reads what boolean writes", [fc.boolean()], ([b]) => {
    expect(Form.boolValue(Form.boolean("b", "B", b))).toBe(b)
  })

  prop("numberValue reads what number writes", [fc.double({ noNaN: true, noDefaultInfinity: true })], ([n]) => {
    expect(Form.numberValue(Form.number("n", "N", n))).toStrictEqual(Option.some(n + 0))
  })

  it("read numbers strictly", () => {
    const read = (text: string) => Form.numberValue({ type: "number", values: [text] })
    expect(read("12")).toStrictEqual(Option.some(12))
    expect(read("-1e3")).toStrictEqual(Option.some(-1000))
    expect(read("")).toStrictEqual(Option.none())
    expect(read("12px")).toStrictEqual(Option.none())
    expect(read("Infinity")).toStrictEqual(Option.none())
    expect(Form.numberValue({ type: "number" })).toStrictEqual(Option.none())
  })

  it("know the action, partial flag and validity", () => {
    expect(Form.action(form)).toBe("form")
    expect(Form.action({ type: "form" })).toBe("form")
    expect(Form.action(Form.make([], { action: "cancel" }))).toBe("cancel")
    expect(Form.isPartial(form)).toBe(false)
    expect(Form.isPartial(Form.make([], { partial: true }))).toBe(true)
    expect(Form.hasErrors(form)).toBe(true)
    expect(Form.isValid(form)).toBe(false)
    expect(Form.isValid(Form.clearErrors(form))).toBe(true)
    expect(Form.isValid(Form.make([], { error: "whole form" }))).toBe(false)
  })
})

describe("Form combinators", () => {
  const form = build()

  it("set values and errors without touching the original", () => {
    const renamed = Form.setValue(form, "name", "Bob")
    expect(Option.flatMap(Form.getField(renamed, "name"), Form.value)).toStrictEqual(Option.some("Bob"))
    expect(Option.flatMap(Form.getField(form, "name"), Form.value)).toStrictEqual(Option.some("Alice"))
    const off = Form.setValue(form, "active", false)
    expect(Option.map(Form.getField(off, "active"), Form.values)).toStrictEqual(Option.some(["0"]))
    const multi = Form.setValues(form, "role", ["admin", "member"])
    expect(Option.map(Form.getField(multi, "role"), Form.values)).toStrictEqual(Option.some(["admin", "member"]))
    const flagged = Form.setError(Form.clearErrors(form), "name", "Too short")
    expect(Option.map(Form.getField(flagged, "name"), (e) => e.error)).toStrictEqual(Option.some("Too short"))
    expect(Form.isValid(Form.setError(flagged, "name", undefined))).toBe(true)
    expect(form).toStrictEqual(surveyExample)
  })

  it("clear the errors when submitting", () => {
    const submitted = Form.withAction(form, "submit")
    expect(Form.action(submitted)).toBe("submit")
    expect(Form.isValid(submitted)).toBe(true)
    const result = Form.withAction(form, "result")
    expect(Form.action(result)).toBe("result")
    expect(Form.hasErrors(result)).toBe(true)
  })

  it("merge a partial form by id", () => {
    const update = Form.make([
      Form.page("main", "Profile Settings", [
        Form.section("basic", "Basic Info", [Form.text("name", "Display Name", "Bob")])
      ])
    ], { partial: true })
    const merged = Form.merge(form, update)
    expect(Form.isPartial(merged)).toBe(false)
    expect(Form.entries(merged)).toStrictEqual([["name", ["Bob"]], ["role", ["member"]], ["active", ["1"]]])
    // the attributes the update does not repeat are kept
    expect(Option.map(Form.getField(merged, "name"), (e) => e.hint)).toStrictEqual(Option.some("Shown to others"))
    expect(Option.map(Form.getField(merged, "basic"), (e) => e.live)).toStrictEqual(Option.some(true))
  })

  it("merge an element sent without its page and section where it lives", () => {
    const update = Form.make([Form.boolean("active", "Active", false), Form.text("extra", "Extra", "x")], {
      partial: true
    })
    const merged = Form.merge(form, update)
    expect(Form.entries(merged)).toStrictEqual([
      ["name", ["Alice"]],
      ["role", ["member"]],
      ["active", ["0"]],
      ["extra", ["x"]]
    ])
    expect(merged.elements?.map((e) => e.id)).toStrictEqual(["main", "extra"])
  })
})

describe("Form on the wire", () => {
  it("decodes identically on the other side", () => {
    expect(throughTheWire(build())).toStrictEqual(Option.some(surveyExample))
  })

  it("reads a form as a C++ peer serialises it (keys sorted)", () => {
    const cpp =
      "{\"action\":\"form\",\"elements\":[{\"elements\":[{\"id\":\"q\",\"label\":\"Quality\",\"options\":{\"hd\":\"HD\",\"sd\":\"SD\"},\"type\":\"list\",\"values\":[\"hd\"]},{\"id\":\"on\",\"label\":\"On\",\"live\":true,\"type\":\"boolean\",\"values\":[\"true\"]}],\"id\":\"s\",\"label\":\"Stream\",\"type\":\"section\"}],\"partial\":false,\"type\":\"form\"}"
    const command = Result.getOrThrow(Frame.decode(`{"form":${cpp},"id":"x","node":"media:config","type":"command"}`))
    if (command.type !== "command") throw new Error("not a command")
    const form = Form.fromCommand(command)
    expect(Option.map(form, (f) => Form.entries(f))).toStrictEqual(Option.some([["q", ["hd"]], ["on", ["true"]]]))
    expect(Option.flatMap(form, (f) => Option.map(Form.getField(f, "on"), Form.boolValue))).toStrictEqual(
      Option.some(true)
    )
  })

  it("keeps element types and keys it does not know", () => {
    const form = {
      type: "form",
      action: "form",
      partial: false,
      elements: [{ type: "slider", id: "volume", values: ["7"], min: 0, max: 11, required: true }],
      owner: { user: "alice" }
    } as const
    expect(Form.decode(form)).toStrictEqual(Result.succeed(form))
    expect(throughTheWire(form)).toStrictEqual(Option.some(form))
  })

  it("refuses malformed forms", () => {
    const bad: ReadonlyArray<Json.Json> = [
      { type: "page" },
      { type: "form", action: "bogus" },
      { type: "form", partial: "no" },
      { type: "form", elements: {} },
      { type: "form", elements: [{ id: "x" }] },
      { type: "form", elements: [{ type: "text", values: [1] }] },
      { type: "form", elements: [{ type: "text", values: "a" }] },
      { type: "form", elements: [{ type: "list", options: { a: 1 } }] },
      { type: "form", elements: [{ type: "section", elements: [{ type: "text", live: "yes" }] }] },
      "form",
      null
    ]
    for (const form of bad) {
      expect(Result.isFailure(Form.decode(form))).toBe(true)
      expect(Form.fromCommand({ type: "command", node: "a", form })).toStrictEqual(Option.none())
    }
    expect(Form.fromCommand({ type: "command", node: "a" })).toStrictEqual(Option.none())
  })

  it.prop("round trips any form through a command frame", [Form.Form], ([form]) => {
    expect(throughTheWire(form)).toStrictEqual(Option.some(wireValue(form)))
  }, { arbitrary: { runs: 300 } })

  prop("every built field decodes and is found again", {
    type: fc.constantFrom(...Form.fieldTypes),
    // Not the enclosing section's id, which `getField` would find first.
    id: fc.string({ minLength: 1 }).filter((id) => id !== "s"),
    label: fc.string(),
    values: fc.array(fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxLength: 3 }),
    live: fc.boolean()
  }, ({ id, label, live, type, values }) => {
    const form = Form.make([Form.section("s", "S", [Form.field(type, id, label, { values, live })])])
    const back = throughTheWire(form)
    expect(back).toStrictEqual(Option.some(form))
    const found = Option.flatMap(back, (f) => Form.getField(f, id))
    expect(Option.map(found, Form.values)).toStrictEqual(Option.some(values.map(Form.valueString)))
  }, { fastCheck: { numRuns: 300 } })
})
