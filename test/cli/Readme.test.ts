/**
 * The README's quick start and TLS steps, run as written: each `npx symple-ts …` line of those blocks runs the
 * command (the bundle `npm run build` makes, which is what `npx` runs once the package is installed), each `curl`
 * line is requested. Port 4500 becomes a free port: through `SYMPLE_PORT` and `SYMPLE_URL` for the lines that name
 * no port, in the text of those that do.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import * as Https from "node:https"
import * as Path from "node:path"
import { freePort } from "../support/freePort.js"
import { certificates } from "../support/tls.js"
import { onlineAs, type Program, root, run } from "./support.js"

const readme = readFileSync(Path.join(root, "README.md"), "utf8")

/** The commands of the first `sh` block after `heading`, without their comments. */
const steps = (heading: string): ReadonlyArray<string> => {
  const at = readme.indexOf(`\n${heading}\n`)
  if (at < 0) throw new Error(`no heading ${heading}`)
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))
  if (block === null) throw new Error(`no sh block under ${heading}`)
  return block[1]!.split("\n").map((line) => line.replace(/\s+#.*$/, "").trim()).filter((line) => line !== "")
}

interface Response {
  readonly status: number
  readonly body: string
}

const get = (url: string, ca: string | undefined) =>
  Effect.callback<Response, Error>((resume) => {
    const onResponse = (response: Http.IncomingMessage) => {
      let body = ""
      response.on("data", (chunk: Buffer) => void (body += chunk.toString()))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    }
    const request = url.startsWith("https:")
      ? Https.get(url, ca === undefined ? {} : { ca }, onResponse)
      : Http.get(url, onResponse)
    request.on("error", (error) => resume(Effect.fail(error)))
  })

/** Runs a block's lines in order: servers until they listen, consoles until they are online, requests. */
const runSteps = (lines: ReadonlyArray<string>, cwd: string = root) =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(() => freePort())
    const programs: Array<Program> = []
    const responses: Array<Response> = []
    const scheme = lines.some((line) => line.includes("wss://")) ? "wss" : "ws"
    const env = { SYMPLE_PORT: String(port), SYMPLE_URL: `${scheme}://localhost:${port}` }
    for (const line of lines) {
      const words = line.replaceAll(":4500", `:${port}`).split(/\s+/)
      if (words[0] === "npm" && words[1] === "install") continue // this checkout is installed already
      if (words[0] === "npx" && words[1] === "symple-ts") {
        const program = yield* run(words.slice(2), env, { cwd })
        programs.push(program)
        yield* words[2] === "serve" ? Effect.asVoid(program.line(/^Symple server listening on /)) : onlineAs(program)
        continue
      }
      if (words[0] === "curl") {
        const cacert = words.indexOf("--cacert")
        const ca = cacert < 0 ? undefined : readFileSync(Path.join(cwd, words[cacert + 1]!), "utf8")
        responses.push(yield* get(words.at(-1)!, ca))
        continue
      }
      return yield* Effect.die(new Error(`a README step this test cannot run: ${line}`))
    }
    return { programs, responses }
  })

describe("README", () => {
  it.live("quick start: a server, two consoles that talk, /health", () =>
    Effect.gen(function*() {
      const lines = steps("## Quick start")
      expect(lines.filter((line) => line.startsWith("npx symple-ts "))).toHaveLength(3)
      const { programs: [server, alice, bob], responses: [health] } = yield* runSteps(lines)
      expect(server!.lines[0]).toMatch(/^Symple server listening on ws:\/\/0\.0\.0\.0:\d+ /)
      const aliceAddress = yield* onlineAs(alice!)
      yield* alice!.line(/^\+ bob\|/)
      // As the README says: what alice types goes to lobby, and bob's console prints it.
      yield* alice!.type("hello")
      expect(yield* bob!.line(/hello/)).toBe(`[lobby] ${aliceAddress}: hello`)
      expect(health!.status).toBe(200)
      expect(JSON.parse(health!.body)).toMatchObject({ status: "ok", peers: 2 })
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("TLS: wss:// and https:// with the certificate files the README names", () =>
    Effect.gen(function*() {
      const lines = steps("### TLS")
      expect(lines.filter((line) => line.startsWith("npx symple-ts "))).toHaveLength(2)
      // ca.pem, server.pem and server.key, made at test time.
      const { dir } = certificates()
      const { programs: [server, alice], responses: [health] } = yield* runSteps(lines, dir)
      expect(server!.lines[0]).toMatch(/^Symple server listening on wss:\/\//)
      yield* onlineAs(alice!)
      expect(health!.status).toBe(200)
      expect(JSON.parse(health!.body)).toMatchObject({ status: "ok", peers: 1 })
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("metrics and readiness", () =>
    Effect.gen(function*() {
      const lines = steps("### Metrics and readiness")
      const serve = yield* run(["serve", "--host", "127.0.0.1", "--port", "0"])
      const url = /listening on ws:\/\/(\S+) /.exec(yield* serve.line(/^Symple server listening on /))![1]!
      const answers = yield* Effect.forEach(lines, (line) => {
        const words = line.replace("localhost:4500", url).split(/\s+/)
        expect(words[0]).toBe("curl")
        return get(words.at(-1)!, undefined)
      })
      expect(answers.map((answer) => answer.status)).toEqual([200, 200])
      expect(answers[0]!.body).toContain("# TYPE symple_connections gauge")
      expect(JSON.parse(answers[1]!.body)).toEqual({ status: "ready" })
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
