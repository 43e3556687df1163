import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Http from "node:http"
import WebSocket from "ws"

/** Starts `test/server/fixtures/serve.ts` under `sh -c "ulimit -n <files>; exec node ..."`; killed with the scope. */
const serveWithFileLimit = (files: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess.ChildProcess; readonly port: number; readonly max: number }, Error>(
      (resume) => {
        const child = ChildProcess.spawn(
          "sh",
          ["-c", `ulimit -n ${files} && exec "${process.execPath}" --import tsx test/server/fixtures/serve.ts`],
          { stdio: ["ignore", "pipe", "inherit"] }
        )
        let out = ""
        child.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const match = /listening (\d+) (\d+)/.exec(out)
          if (match !== null) resume(Effect.succeed({ child, port: Number(match[1]), max: Number(match[2]) }))
        })
        child.on("exit", (code) => resume(Effect.fail(new Error(`server exited (${code}): ${out}`))))
      }
    ),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const health = (port: number) =>
  Effect.callback<number, Error>((resume) => {
    const request = Http.get({ host: "127.0.0.1", port, path: "/health", timeout: 2000 }, (response) => {
      response.resume()
      resume(Effect.succeed(response.statusCode ?? 0))
    })
    request.on("timeout", () => request.destroy(new Error("health timed out")))
    request.on("error", (error) => resume(Effect.fail(error)))
  })

describe("process limits", () => {
  it.live("by default, connections stay under the open-file limit: the excess gets 503 + 1013, /health still answers", () =>
    Effect.gen(function*() {
      const { max, port } = yield* serveWithFileLimit(256)
      expect(max).toBe(256 - 64)
      // Refused sockets hold a descriptor until their close handshake ends: a burst of refusals larger than the
      // headroom could still run out of descriptors, so this one stays within it.
      const clients = max + 16
      const outcomes = yield* Effect.forEach(
        Array.from({ length: clients }),
        () =>
          Effect.callback<string>((resume) => {
            const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
            let refused = false
            ws.on("message", (data) => {
              refused = String(data).includes("Server at capacity")
            })
            ws.on("open", () => setTimeout(() => resume(Effect.succeed(refused ? "refused" : "open")), 300))
            ws.on("close", (code) => resume(Effect.succeed(refused && code === 1013 ? "refused" : `closed ${code}`)))
            ws.on("error", (error) => resume(Effect.succeed(`error ${error.message}`)))
          }),
        { concurrency: "unbounded" }
      )
      const counts: Record<string, number> = {}
      for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
      expect(counts, JSON.stringify(counts)).toEqual({ open: max, refused: clients - max })
      expect(yield* health(port)).toBe(200)
    }).pipe(Effect.scoped))
})
