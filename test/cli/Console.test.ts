/**
 * `symple-ts console` driven as a person would drive it, through its stdin and stdout, against a real server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeSympleClient } from "../../src/client/node.js"
import { startServer } from "../server/support.js"
import { onlineAs, run } from "./support.js"

const consoleOf = (url: string, user: string, ...args: ReadonlyArray<string>) =>
  run(["console", "--url", url, "--user", user, ...args])

describe("symple-ts console", () => {
  it.live(
    "two consoles talk: presence, room text, direct messages, events, commands, rooms, /who, /quit",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer()
        const alice = yield* consoleOf(server.url, "alice", "--rooms", "lobby")
        const aliceAddress = yield* onlineAs(alice)
        const bob = yield* consoleOf(server.url, "bob", "--name", "Bob", "--rooms", "lobby")
        const bobAddress = yield* onlineAs(bob)
        expect(yield* alice.line(/^\+ bob\|/)).toBe(`+ ${bobAddress} online (Bob)`)
        expect(yield* bob.line(/^\* rooms: /)).toBe("* rooms: bob, lobby (current: lobby)")

        // Plain text goes to the current room.
        yield* alice.type("hello lobby")
        expect(yield* bob.line(/hello lobby/)).toBe(`[lobby] ${aliceAddress}: hello lobby`)
        // /msg to a user, to a full address.
        yield* bob.type("/msg alice hi alice")
        expect(yield* alice.line(/hi alice/)).toBe(`[alice] ${bobAddress}: hi alice`)
        yield* alice.type(`/msg ${bobAddress} just you`)
        expect(yield* bob.line(/just you/)).toBe(`[direct] ${aliceAddress}: just you`)
        // Events, with and without data.
        yield* alice.type("/event bob ring")
        expect(yield* bob.line(/^event from/)).toBe(`event from ${aliceAddress}: ring`)
        yield* alice.type(`/event bob hangup {"reason":"busy"}`)
        expect(yield* bob.line(/hangup/)).toBe(`event from ${aliceAddress}: hangup {"reason":"busy"}`)
        // A command: bob's console prints it; nothing answers it there, so his client says 404.
        yield* alice.type(`/cmd ${bobAddress} media:video:start set {"quality":"hd"}`)
        expect(yield* bob.line(/^command from/)).toBe(
          `command from ${aliceAddress}: media:video:start set {"quality":"hd"}`
        )
        expect(yield* alice.line(/media:video:start failed/)).toBe(
          `! media:video:start failed: status 404 from ${bobAddress}`
        )
        // Rooms: a new current room, then back to none.
        yield* alice.type("/join staff")
        expect(yield* alice.line(/joined staff/)).toBe("* joined staff (current room)")
        yield* bob.type("/join staff")
        yield* bob.line(/joined staff/)
        yield* alice.type("in staff now")
        expect(yield* bob.line(/in staff now/)).toBe(`[staff] ${aliceAddress}: in staff now`)
        yield* alice.type("/leave staff")
        expect(yield* alice.line(/left staff/)).toBe("* left staff (no current room)")
        yield* alice.type("lost words")
        expect(yield* alice.line(/no current room:/)).toBe("! no current room: /join a room, or /msg <to> <text>")
        // /who, /presence, /help.
        yield* alice.type("/who")
        expect(yield* alice.line(/peer online:$/)).toBe("* 1 peer online:")
        expect(yield* alice.line(/^ {2}bob\|/)).toBe(`  ${bobAddress} (Bob)`)
        yield* alice.type("/presence")
        yield* alice.line(/^\* presence sent$/)
        yield* alice.type("/help")
        yield* alice.line(/^\/quit/)

        // /quit: a clean exit, and the other side sees the peer go.
        yield* bob.type("/quit")
        expect(yield* bob.exited()).toEqual({ code: 0, signal: null })
        expect(yield* alice.line(/^- bob\|/)).toBe(`- ${bobAddress} offline`)
        expect(bob.lines.at(-1)).toBe("* bye")
        // The end of input quits as well.
        alice.child.stdin.end()
        expect(yield* alice.exited()).toEqual({ code: 0, signal: null })
        // Nothing went to stderr: every problem was answered on stdout.
        expect(alice.stderr() + bob.stderr()).toBe("")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("/cmd prints the reply, or that none came in time", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const clock = yield* NodeSympleClient.make({ url: server.url, user: "clock", rooms: ["lobby"] })
      yield* clock.onCommand("time:*", (command) => Effect.succeed({ data: { node: command.node ?? "", now: 42 } }))
      const clockPeer = yield* clock.awaitOnline
      const silent = yield* NodeSympleClient.make({
        url: server.url,
        user: "silent",
        rooms: ["lobby"],
        answerUnhandledCommands: false
      })
      yield* silent.awaitOnline
      const alice = yield* consoleOf(server.url, "alice", "--rooms", "lobby", "--request-timeout", "300")
      yield* onlineAs(alice)
      yield* alice.type(`/cmd clock|${clockPeer.id} time:now`)
      expect(yield* alice.line(/^reply/)).toBe(
        `reply 200 to time:now from clock|${clockPeer.id}: {"node":"time:now","now":42}`
      )
      yield* alice.type("/cmd silent time:now get")
      expect(yield* alice.line(/no reply/)).toBe("! time:now: no reply within 300 ms")
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("bad input gets a clear message and the console goes on", () =>
    Effect.gen(function*() {
      const server = yield* startServer()
      const alice = yield* consoleOf(server.url, "alice", "--rooms", "lobby")
      yield* onlineAs(alice)
      const answers: ReadonlyArray<readonly [string, string]> = [
        ["/bogus", "! Unknown command /bogus: /help lists the commands"],
        ["/", "! Unknown command /: /help lists the commands"],
        ["/join", "! Usage: /join <room>"],
        ["/join a b", "! Usage: /join <room>"],
        ["/msg bob", "! Usage: /msg <to> <text>"],
        ["/cmd bob", "! Usage: /cmd <to> <node> [action] [json]"],
        ["/event bob", "! Usage: /event <to> <name> [json]"],
        ["/who now", "! Usage: /who"]
      ]
      for (const [input, answer] of answers) {
        yield* alice.type(input)
        expect(yield* alice.line(new RegExp(`^${answer.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`))).toBe(answer)
      }
      yield* alice.type("/cmd bob node {not json")
      expect(yield* alice.line(/Invalid JSON/)).toMatch(
        /^! Invalid JSON \(.+\): \/cmd <to> <node> \[action\] \[json\]$/
      )
      // A join the server refuses: its error, and the console is still there.
      yield* alice.type(`/join ${"r".repeat(300)}`)
      expect(yield* alice.line(/cannot join r+/)).toMatch(/^! cannot join r{300}: /)
      yield* alice.type("/who")
      yield* alice.line(/^\* no other peer online$/)
      expect(alice.child.exitCode).toBe(null)
      expect(alice.stderr()).toBe("")
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live(
    "a refused authentication ends the console with exit code 1 and the server's reason",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer({ authentication: true })
        const alice = yield* consoleOf(server.url, "alice", "--token", "wrong")
        expect(yield* alice.line(/^! /)).toMatch(/^! .*Authentication failed.*\(status 401\)$/)
        expect(yield* alice.exited()).toEqual({ code: 1, signal: null })
        expect(alice.stderr()).toBe("")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("a console without --user is told so and exits non-zero", () =>
    Effect.gen(function*() {
      const nobody = yield* run(["console", "--url", "ws://127.0.0.1:1"])
      const exited = yield* nobody.exited()
      expect(exited.code).not.toBe(0)
      expect(nobody.stderr() + nobody.lines.join("\n")).toMatch(/--user/)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
