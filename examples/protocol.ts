// The README's protocol example, kept compiling and running.
import { Option, Result } from "effect"
import { Address, Form, Frame, Message } from "../src/protocol/index.js"

const result = Frame.decode("{\"type\":\"message\",\"to\":\"bob|k3J9\",\"data\":{\"text\":\"hi\"}}")
if (Result.isSuccess(result)) {
  const frame = result.success // Frame.Frame, a union discriminated on `type`
  if (frame.type === "message") console.log(frame.data) // narrowed to Frame.Message
  Address.parse("bob|k3J9") // { user: "bob", id: "k3J9" }
} else {
  console.log(result.failure.status, result.failure.message) // 400 "Invalid JSON", 'Unknown message type "x"', ...
}
Message.matches("media:video:*", "media:video:quality") // true
const ev = Message.event("ring") // { type: "event", id, name: "ring", time: 1764000000.123 }
Frame.unsafeEncode(ev) // or Frame.encode(ev): validates, Result<string, FrameError>

// Forms ride in command.form
const form = Form.make([Form.page("main", "Settings", [Form.section("basic", "Basic", [
  Form.text("name", "Display name", "Alice"),
  Form.boolean("active", "Active", true),
  Form.list("role", "Role", { admin: "Administrator", member: "Member" }, ["member"])
])])])
const request = Form.toCommand("profile:edit", form, { to: "bob|k3J9" })
const active = Option.flatMap(Form.fromCommand(request), (f) => Form.getField(f, "active")).pipe(
  Option.map(Form.boolValue)
) // Some(true)
const answer = Form.withAction(Form.setValue(form, "name", "Bob"), "submit")
console.log(Frame.unsafeEncode(request), answer.action, active)
