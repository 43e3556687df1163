/**
 * What the demo page's chat makes of message frames.
 */
import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { Call } from "../../src/protocol/index.js"
import * as Chat from "../../src/web/internal/page/Chat.js"

describe("demo page chat", () => {
  it("a chat line goes out in the JavaScript client's shape, to a room or to a peer", () => {
    expect(Chat.message("lobby", "hi")).toMatchObject({
      type: "message",
      to: "lobby",
      subtype: "chat",
      data: { text: "hi" }
    })
    expect(typeof Chat.message("lobby", "hi").id).toBe("string")
  })

  it("a received message is a room line or a direct line by its `to`", () => {
    const from = "bob|b1"
    expect(Chat.lineOf({ type: "message", from, to: "lobby", data: { text: "all" } })).toEqual(
      Option.some({ kind: "room", from, to: "lobby", text: "all" })
    )
    expect(Chat.lineOf({ type: "message", from, to: "alice|a1", subtype: "chat", data: { text: "you" } })).toEqual(
      Option.some({ kind: "direct", from, to: "alice|a1", text: "you" })
    )
    // A string payload is the text; no `to` means everyone sharing a room.
    expect(Chat.lineOf({ type: "message", from, data: "plain" })).toEqual(
      Option.some({ kind: "room", from, to: "", text: "plain" })
    )
  })

  it("call signalling, messages without text and messages without a sender are not chat", () => {
    expect(Chat.lineOf({ ...Call.message("alice|a1", Call.Signal.Init()), from: "bob|b1" })).toEqual(Option.none())
    expect(Chat.lineOf({ type: "message", from: "bob|b1", to: "lobby", data: { n: 1 } })).toEqual(Option.none())
    expect(Chat.lineOf({ type: "message", to: "lobby", data: { text: "who?" } })).toEqual(Option.none())
  })
})
