/**
 * The benchmark's server (`bench/servers/ours.ts`) as the runner starts it: it prints where it listens, serves
 * peers, and stops gracefully on SIGTERM and SIGINT with exit code 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { peer } from "../server/support.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface Started {
  readonly child: ChildProcess
  readonly port: number
  /** The exit code, or the signal that ended it. */
  readonly exited: Promise<number | string | null>
}

const start = Effect.acquireRelease(
  Effect.callback<Started, Error>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/servers/ours.ts", "0"], {
      cwd: root,
      env: { ...process.env, HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const exited = new Promise<number | string | null>((done) =>
      child.once("exit", (code, signal) => done(code ?? signal))
    )
    let output = ""
    const read = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const line = /^\{"listening":(\d+)/m.exec(output)
      if (line !== null) resume(Effect.succeed({ child, port: Number(line[1]), exited }))
    }
    child.stdout.on("data", read)
    child.stderr.on("data", (chunk: Buffer) => void (output += chunk.toString("utf8")))
    void exited.then((code) => resume(Effect.fail(new Error(`exited (${code}) before listening: ${output}`))))
  }),
  ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
)

describe("bench/servers/ours.ts", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(`stops gracefully on ${signal} with exit code 0`, () =>
      Effect.gen(function*() {
        const server = yield* start
        const alice = yield* peer({ url: `ws://127.0.0.1:${server.port}` }, "alice")
        server.child.kill(signal)
        expect(yield* alice.next((f) => f.type === "event")).toMatchObject({ name: "shutdown" })
        expect(yield* alice.closed).toEqual({ code: 1001, reason: "Server shutting down" })
        expect(yield* Effect.promise(() => server.exited)).toBe(0)
      }).pipe(Effect.scoped), { timeout: 60_000 })
  }
})
