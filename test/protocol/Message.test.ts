import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { Frame, Message } from "../../src/protocol/index.js"
import { fc, prop } from "../support/prop.js"

const isRouted = (frame: Frame.Frame): frame is Frame.Routed =>
  frame.type === "message" || frame.type === "presence" || frame.type === "command" || frame.type === "event"

const decodeRouted = (text: string): Frame.Routed => {
  const frame = Result.getOrThrow(Frame.decode(text))
  if (!isRouted(frame)) throw new Error(`not routed: ${text}`)
  return frame
}

describe("respond", () => {
  it("answers the JS-4 recording byte for byte", () => {
    const received = decodeRouted(
      "{\"type\":\"message\",\"subtype\":\"chat\",\"data\":{\"text\":\"hi bob\"},\"id\":\"grcp36n4ypl\",\"to\":\"bob|eut9bw8nlrg5t9ddqvua5l\",\"from\":\"alice|ata63vh6tyvr4pv9z9q58k\"}"
    )
    const reply = Message.respond(received, { data: { text: "hi alice (reply)" } }, "bob|eut9bw8nlrg5t9ddqvua5l")
    expect(Frame.unsafeEncode(reply)).toBe(
      "{\"type\":\"message\",\"subtype\":\"chat\",\"data\":{\"text\":\"hi alice (reply)\"},\"id\":\"grcp36n4ypl\",\"to\":\"alice|ata63vh6tyvr4pv9z9q58k\",\"from\":\"bob|eut9bw8nlrg5t9ddqvua5l\"}"
    )
  })

  it("answers the CPP-5 recording (C++ key order aside)", () => {
    const received = decodeRouted(
      "{\"data\":{\"text\":\"hi bob\"},\"from\":\"alice|RSajWdo7QD2QvfYq\",\"id\":\"x6no2n8dh2\",\"subtype\":\"chat\",\"to\":\"bob|H3tY8QeaI06C3ya8\",\"type\":\"message\"}"
    )
    const reply = Message.respond(received, { data: { text: "reply" } }, "bob|H3tY8QeaI06C3ya8")
    expect(reply).toStrictEqual(JSON.parse(
      "{\"data\":{\"text\":\"reply\"},\"from\":\"bob|H3tY8QeaI06C3ya8\",\"id\":\"x6no2n8dh2\",\"subtype\":\"chat\",\"to\":\"alice|RSajWdo7QD2QvfYq\",\"type\":\"message\"}"
    ))
  })

  it("turns a command request into a final response", () => {
    const request = Message.command("media:video:start", { from: "alice|a1", to: "bob|b1", data: { x: 1 } })
    expect(Message.isRequest(request)).toBe(true)
    const response = Message.respond(request, { status: 200 }, "bob|b1")
    expect(response).toStrictEqual({ ...request, status: 200, to: "alice|a1", from: "bob|b1" })
    expect(Message.isRequest(response)).toBe(false)
    expect(Message.isResponse(response)).toBe(true)
    expect(response.id).toBe(request.id)
  })

  it("leaves out to and from when they are unknown", () => {
    const reply = Message.respond({ type: "event", name: "x", to: "bob|1" })
    expect(reply).toStrictEqual({ type: "event", name: "x" })
  })

  const address = fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })).map(([u, i]) => `${u}|${i}`)
  prop("keeps the id and everything else, swaps the addresses", {
    frame: fc.record({
      type: fc.constantFrom("message" as const, "command" as const, "event" as const, "presence" as const),
      id: fc.string(),
      from: address,
      to: address,
      subtype: fc.string(),
      data: fc.jsonValue({ maxDepth: 2 })
    }, { requiredKeys: ["type", "id", "from"] }),
    me: address
  }, ({ frame, me }) => {
    const routed = frame as Frame.Routed
    const reply = Message.respond(routed, {}, me)
    expect(reply.id).toBe(routed.id)
    expect(reply.to).toBe(routed.from)
    expect(reply.from).toBe(me)
    const { from: _f, to: _t, ...rest } = routed
    const { from: _rf, to: _rt, ...replyRest } = reply
    expect(replyRest).toStrictEqual(rest)
    // answering the answer goes back to the responder
    expect(Message.respond(reply, {}, routed.from).to).toBe(me)
  })
})

describe("transactions", () => {
  it("a request has an id and no status", () => {
    expect(Message.isRequest({ type: "command", id: "1" })).toBe(true)
    expect(Message.isRequest({ type: "command", id: "1", status: 200 })).toBe(false)
    expect(Message.isRequest({ type: "command" })).toBe(false)
    expect(Message.isResponse({ type: "message", id: "1", status: 404 })).toBe(true)
    expect(Message.isResponse({ type: "message", id: "1" })).toBe(false)
  })

  it("202 and 406 are not final, every other status is", () => {
    expect(Message.isFinalStatus(202)).toBe(false)
    expect(Message.isFinalStatus(406)).toBe(false)
    for (const status of [101, 200, 201, 204, 400, 401, 404, 408, 500, 504]) {
      expect(Message.isFinalStatus(status)).toBe(true)
    }
    expect(Message.isSuccess(200)).toBe(true)
    expect(Message.isSuccess(202)).toBe(false)
    expect(Message.isSuccess(404)).toBe(false)
  })
})

describe("commands", () => {
  it("param is 1-based", () => {
    expect(Message.param("media:video:quality", 1)).toBe("media")
    expect(Message.param("media:video:quality", 2)).toBe("video")
    expect(Message.param("media:video:quality", 3)).toBe("quality")
    expect(Message.param("media:video:quality", 4)).toBeUndefined()
    expect(Message.param("media:video:quality", 0)).toBeUndefined()
    expect(Message.param("media:video:quality", -1)).toBeUndefined()
    expect(Message.param("media:video:quality", 1.5)).toBeUndefined()
    expect(Message.param("a", 1)).toBe("a")
    expect(Message.param("a::b", 2)).toBe("")
    expect(Message.nodeSegments("a:b:c")).toStrictEqual(["a", "b", "c"])
  })

  it("matches the survey's examples for media:video:quality", () => {
    const node = "media:video:quality"
    expect(Message.matches("media:video:*", node)).toBe(true)
    expect(Message.matches("media:*", node)).toBe(true)
    expect(Message.matches("media:*:quality", node)).toBe(true)
    expect(Message.matches("*", node)).toBe(true)
    expect(Message.matches("media:video:quality", node)).toBe(true)
    expect(Message.matches("media:video", node)).toBe(false)
    expect(Message.matches("media:video:quality:x", node)).toBe(false)
    expect(Message.matches("media:audio:*", node)).toBe(false)
    expect(Message.matches("*:video", node)).toBe(false)
    expect(Message.matches("*:*:*", node)).toBe(true)
    expect(Message.matches("media:*", "media")).toBe(false)
    expect(Message.matches("*", "")).toBe(true)
  })

  /** The rules as PROTOCOL.md states them, one by one. */
  const reference = (pattern: string, node: string): boolean => {
    if (pattern === "*") return true
    const want = pattern.split(":")
    const have = node.split(":")
    const trailingStar = want[want.length - 1] === "*"
    if (want.length > have.length) return false
    if (have.length > want.length && !trailingStar) return false
    return want.every((segment, i) => segment === "*" || segment === have[i])
  }

  const path = fc.array(fc.constantFrom("*", "a", "b", "", "**", "a*"), { minLength: 1, maxLength: 5 })
    .map((segments) => segments.join(":"))
  prop("matches agrees with the reference rules", [path, path], ([pattern, node]) => {
    expect(Message.matches(pattern, node)).toBe(reference(pattern, node))
  }, { fastCheck: { numRuns: 5000 } })

  prop("a node matches itself, and trailing * matches every extension", [path, path], ([node, tail]) => {
    const literal = node.replaceAll("*", "x")
    expect(Message.matches(literal, literal)).toBe(true)
    expect(Message.matches(`${literal}:*`, `${literal}:${tail}`)).toBe(true)
    expect(Message.matches(`${literal}:${tail}:y`, literal)).toBe(false)
  })

  it("action defaults to execute", () => {
    expect(Message.action({ type: "command", node: "a" })).toBe("execute")
    expect(Message.action({ type: "command", node: "a", action: "get" })).toBe("get")
    const built = Message.command("a:b")
    expect(built).toMatchObject({ type: "command", node: "a:b", action: "execute" })
    expect(Message.command("a:b", { action: "set" }).action).toBe("set")
    expect(Message.isRequest(built)).toBe(true)
  })
})

describe("events", () => {
  it("carry their creation time in Unix seconds", () => {
    expect(Message.event("typing", {}, 1_764_000_000_000).time).toBe(1_764_000_000)
    expect(Message.event("typing", {}, 1_764_000_000_500).time).toBe(1_764_000_000.5)
    expect(Message.unixSeconds(1500)).toBe(1.5)
    const before = Date.now() / 1000
    const event = Message.event("typing", { to: "bob|1" })
    const after = Date.now() / 1000
    expect(event).toMatchObject({ type: "event", name: "typing", to: "bob|1" })
    expect(event.time).toBeGreaterThanOrEqual(before)
    expect(event.time).toBeLessThanOrEqual(after)
    // seconds, not milliseconds: within a day of now
    expect(Math.abs(event.time! - after)).toBeLessThan(86_400)
  })

  it("are valid wire frames", () => {
    const event = Message.event("shutdown", { subtype: "shutdown", message: "Server shutting down" })
    expect(Frame.decode(Frame.unsafeEncode(event))).toStrictEqual(Result.succeed(event))
  })
})

describe("constructors", () => {
  it("give routed frames fresh random ids", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => Message.randomId()))
    expect(ids.size).toBe(1000)
    for (const id of ids) expect(id).toMatch(/^[0-9A-Za-z]{16}$/)
    expect(Message.randomId(8)).toMatch(/^[0-9A-Za-z]{8}$/)
    expect(Message.message({ to: "bob" })).toMatchObject({ type: "message", to: "bob" })
    expect(Message.message().id).toMatch(/^[0-9A-Za-z]{16}$/)
    expect(Message.presence({ probe: true }).probe).toBe(true)
  })

  it("build error frames", () => {
    expect(Message.error(401, "Missing user field")).toStrictEqual({
      type: "error",
      status: 401,
      message: "Missing user field"
    })
    expect(Frame.unsafeEncode(Message.error(413, "Message too large"))).toBe(
      "{\"type\":\"error\",\"status\":413,\"message\":\"Message too large\"}"
    )
  })
})
