import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { freePort } from "../support/freePort.js"
import { peer } from "./support.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Whether something accepts connections on the port. */
const listening = (port: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
  })

/** The processes below `pid`, from `ps`. */
const descendants = (pid: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  for (const line of execFileSync("ps", ["-A", "-o", "pid=,ppid="], { encoding: "utf8" }).trim().split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number) as [number, number]
    children.set(parent, [...(children.get(parent) ?? []), child])
  }
  const out: Array<number> = []
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      out.push(child)
      walk(child)
    }
  }
  walk(pid)
  return out
}

/** Still running (a zombie, gone but not yet reaped, does not count). */
const running = (pid: number): boolean => {
  try {
    return !execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).trim().startsWith("Z")
  } catch {
    return false
  }
}

interface Started {
  readonly npm: ChildProcess
  readonly port: number
  /** The processes below npm once the server listens. */
  readonly tree: ReadonlyArray<number>
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** `npm start` on a free port, as Docker or systemd would run it; whatever is left is killed (by pid) at the end. */
const npmStart = Effect.acquireRelease(
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => freePort("127.0.0.1"))
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const key of Object.keys(env)) if (key.startsWith("SYMPLE_")) delete env[key]
    Object.assign(env, { SYMPLE_HOST: "127.0.0.1", SYMPLE_PORT: String(port) })
    const npm = spawn("npm", ["start"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      npm.once("exit", (code, signal) => resolve({ code, signal }))
    )
    let output = ""
    npm.stdout.on("data", (chunk) => void (output += String(chunk)))
    npm.stderr.on("data", (chunk) => void (output += String(chunk)))
    const deadline = Date.now() + 20_000
    while (!(yield* listening(port))) {
      if (npm.exitCode !== null || Date.now() > deadline) {
        return yield* Effect.fail(new Error(`npm start did not listen on ${port}: ${output}`))
      }
      yield* Effect.sleep(50)
    }
    return { npm, port, tree: descendants(npm.pid!), exited } satisfies Started
  }),
  // Orphans included: the tree was taken while npm was still its root.
  ({ npm, tree }) =>
    Effect.sync(() => {
      for (const pid of [npm.pid!, ...tree, ...descendants(npm.pid!)]) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // Already gone.
        }
      }
    })
)

describe.skipIf(process.platform === "win32")("npm start", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(
      `${signal} to npm reaches the server: shutdown event, close 1001, nothing left running`,
      () =>
        Effect.gen(function*() {
          const { exited, npm, port, tree } = yield* npmStart
          const alice = yield* peer({ url: `ws://127.0.0.1:${port}` }, "alice")
          // Only npm is signalled, as Docker and systemd do; not its process group.
          npm.kill(signal)
          expect(yield* alice.next((f) => f.type === "event")).toMatchObject({ name: "shutdown" })
          expect(yield* alice.closed).toEqual({ code: 1001, reason: "Server shutting down" })
          yield* Effect.promise(() => exited).pipe(Effect.timeoutOrElse({
            duration: 10_000,
            orElse: () => Effect.fail(new Error("npm did not exit"))
          }))
          expect(yield* listening(port)).toBe(false)
          expect(tree.filter(running)).toEqual([])
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )
  }
})
