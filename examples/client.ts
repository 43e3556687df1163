/**
 * A Symple client on Node: shows its state and the roster as they change, prints messages, answers `time:*`
 * commands, and greets the lobby.
 *
 *   npx tsx examples/client.ts [url] [user]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, HashMap, Stream } from "effect"
import { NodeSympleClient } from "../src/client/node.js"
import { Message } from "../src/protocol/index.js"

const url = process.argv[2] ?? "ws://localhost:4500"
const user = process.argv[3] ?? "example"

const program = Effect.gen(function*() {
  const client = yield* NodeSympleClient.make({ url, user, rooms: ["lobby"] })

  yield* client.state.pipe(Stream.runForEach((state) => Console.log("state:", state._tag)), Effect.forkChild)
  yield* client.roster.changes.pipe(
    Stream.map((peers) => Array.from(HashMap.values(peers), (p) => `${p.user}|${p.id}`).sort().join(", ")),
    Stream.changes,
    Stream.runForEach((line) => Console.log("roster:", line)),
    Effect.forkChild
  )
  yield* client.messages.pipe(
    Stream.runForEach((m) => Console.log(`${m.from}: ${JSON.stringify(m.data)}`)),
    Effect.forkChild
  )
  // Answered with status 200 and this data; other command requests get 404.
  yield* client.onCommand("time:*", () => Effect.succeed({ data: { now: Date.now() } }))

  const me = yield* client.awaitOnline
  yield* Console.log(`online as ${me.user}|${me.id}`)
  yield* client.send(Message.message({ to: ["lobby"], data: { text: `hello from ${user}` } }))
  yield* Effect.never
})

NodeRuntime.runMain(Effect.scoped(program))
