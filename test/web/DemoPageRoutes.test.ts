/**
 * DemoPage's routes over plain HTTP (no browser): what is served, how, from where, and what a page that cannot be
 * served answers. The browser tests (DemoPage.test.ts) prove the page works.
 */
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Zlib from "node:zlib"
import { describe, expect } from "vitest"
import { DemoPage } from "../../src/web/index.js"
import { startServer } from "../server/support.js"
import { nodeImports } from "../support/nodeImports.js"

const get = (port: number, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers })
    return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) }
  })

describe("DemoPage routes", () => {
  it.live(
    "serve the page at / and its script, gzipped when asked, beside the server's own routes",
    () =>
      Effect.gen(function*() {
        const server = yield* startServer({ routes: DemoPage.layer() })
        const page = yield* get(server.port, "/")
        expect(page.status).toBe(200)
        expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8")
        expect(page.headers.get("content-security-policy")).toContain("script-src 'self'")
        const html = page.body.toString("utf8")
        expect(html).toContain(`<script type="module" src="/demo/app.js"></script>`)
        expect(html).not.toMatch(/https?:\/\//)

        const plain = yield* get(server.port, "/demo/app.js", { "accept-encoding": "identity" })
        expect(plain.status).toBe(200)
        expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
        expect(plain.headers.get("content-encoding")).toBeNull()
        const zipped = yield* get(server.port, "/demo/app.js", { "accept-encoding": "gzip, br" })
        // fetch inflates what it receives: the header says it travelled gzipped, the body must be the same script.
        expect(zipped.headers.get("content-encoding")).toBe("gzip")
        expect(zipped.body.equals(plain.body)).toBe(true)
        // Built from this package's client and call session, with no other origin to load from.
        const script = plain.body.toString("utf8")
        expect(script).toContain("symple/CallSession")
        expect(script).toContain("symple/SympleClient")
        expect(script).not.toMatch(/\bimport\s*\(?\s*["']https?:/)

        expect((yield* get(server.port, "/health")).status).toBe(200)
        expect((yield* get(server.port, "/demo/nothing.js")).status).toBe(404)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "write puts the assets in a directory, and layer({ directory }) serves them as they are",
    () =>
      Effect.gen(function*() {
        const directory = Fs.mkdtempSync(Path.join(Os.tmpdir(), "symple-demo-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(directory, { recursive: true, force: true })))
        const assets = yield* DemoPage.bundle
        yield* DemoPage.write(assets, Path.join(directory, "web"))
        expect(Fs.readdirSync(Path.join(directory, "web")).sort()).toEqual(["app.js", "index.html"])
        const server = yield* startServer({ routes: DemoPage.layer({ directory: Path.join(directory, "web") }) })
        expect((yield* get(server.port, "/")).body.toString("utf8")).toBe(assets.html)
        expect((yield* get(server.port, "/demo/app.js")).body.toString("utf8")).toBe(assets.script)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("a page that cannot be read answers 500 with the reason; the server is unaffected", () =>
    Effect.gen(function*() {
      const missing = Path.join(Os.tmpdir(), "symple-demo-missing", String(Date.now()))
      const server = yield* startServer({ routes: DemoPage.layer({ directory: missing }) })
      const page = yield* get(server.port, "/")
      expect(page.status).toBe(500)
      expect(page.body.toString("utf8")).toContain(`Cannot read the demo page from ${missing}`)
      expect((yield* get(server.port, "/health")).status).toBe(200)
      expect((yield* DemoPage.fromDirectory(missing).pipe(Effect.flip)).reason).toBe("Read")
    }).pipe(Effect.scoped))
})

describe("npm start", () => {
  it("serves the demo page at / (bundled from a clean checkout's sources on the first request)", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env }
    for (const key of Object.keys(env)) if (key.startsWith("SYMPLE_")) delete env[key]
    env["SYMPLE_HOST"] = "127.0.0.1"
    // Any free port: the server prints the one it took.
    env["SYMPLE_PORT"] = "0"
    const root = fileURLToPath(new URL("../../", import.meta.url))
    const npm = spawn("npm", ["start"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    const exited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)))
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let output = ""
        const timer = setTimeout(() => reject(new Error(`npm start did not say where it listens: ${output}`)), 30_000)
        const read = (chunk: Buffer) => {
          output += chunk.toString("utf8")
          const found = /listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(output)
          if (found === null) return
          clearTimeout(timer)
          resolve(Number(found[1]))
        }
        npm.stdout.on("data", read)
        npm.stderr.on("data", read)
      })
      const page = await fetch(`http://127.0.0.1:${port}/`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain("<title>Symple demo</title>")
      const script = await fetch(`http://127.0.0.1:${port}/demo/app.js`)
      expect(script.status).toBe(200)
      expect((await script.text()).length).toBeGreaterThan(50_000)
    } finally {
      npm.kill("SIGTERM")
      expect(await exited).toBe(0)
    }
  }, 60_000)
})

describe("the page's bundle", () => {
  it("takes the client, the call session and the protocol from src, and nothing of Node", async () => {
    const entry = fileURLToPath(new URL("../../src/web/internal/page/main.ts", import.meta.url))
    const { found, inputs } = await nodeImports({ entryPoints: [entry] })
    expect(found).toEqual([])
    for (const module of ["src/client/SympleClient.ts", "src/call/CallSession.ts", "src/protocol/Call.ts"]) {
      expect(inputs.some((path) => path.endsWith(module))).toBe(true)
    }
    expect(inputs.some((path) => path.includes("src/server/"))).toBe(false)
  }, 60_000)
})
