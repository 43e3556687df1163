/**
 * The client's public entry must bundle for the browser without any Node import.
 */
import { Effect, Exit, Scope } from "effect"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { WebSocket } from "ws"
import { createClient } from "../../src/client/index.js"
import { nodeImports } from "../support/nodeImports.js"
import * as Scripted from "./ScriptedServer.js"

const entry = fileURLToPath(new URL("../../src/client/index.ts", import.meta.url))

describe("browser bundle", () => {
  it("src/client/index.ts bundles for the browser without Node built-ins or Node-only packages", async () => {
    const { found, inputs } = await nodeImports({ entryPoints: [entry] })
    expect(found).toEqual([])
    expect(inputs.some((path) => path.endsWith("src/client/SympleClient.ts"))).toBe(true)
    expect(inputs.some((path) => path.endsWith("src/client/Facade.ts"))).toBe(true)
    expect(inputs.some((path) => path.endsWith("src/client/NodeSympleClient.ts"))).toBe(false)
  }, 60_000)

  it("the check notices Node imports, direct or through a package", async () => {
    const direct = await nodeImports({ stdin: { contents: "import \"node:http\"", loader: "ts" } })
    expect(direct.found.length).toBe(1)
    const node = fileURLToPath(new URL("../../src/client/NodeSympleClient.ts", import.meta.url))
    const indirect = await nodeImports({ entryPoints: [node] })
    expect(indirect.found.some((f) => f.startsWith("@effect/platform-node"))).toBe(true)
  }, 60_000)
})

describe("global WebSocket constructor", () => {
  it("the platform-neutral facade runs on a global WebSocket, as in a browser", async () => {
    const scope = Effect.runSync(Scope.make())
    const g = globalThis as { WebSocket?: unknown }
    const previous = g.WebSocket
    g.WebSocket = WebSocket
    try {
      const server = await Effect.runPromise(Scope.provide(Scripted.make(), scope))
      const client = createClient({ url: server.url, user: "browser" })
      const connecting = client.connect()
      const { conn } = await Effect.runPromise(Scripted.accept(server, "b1"))
      expect((await connecting).id).toBe("b1")
      const got = new Promise<unknown>((resolve) => client.on("message", (m) => resolve(m.data)))
      conn.socket.send(Buffer.from(JSON.stringify({ type: "message", from: "x|1", data: "binary" })), { binary: true })
      expect(await got).toBe("binary")
      await client.close()
      expect(await Effect.runPromise(conn.nextOf("close"))).toEqual({ type: "close" })
    } finally {
      g.WebSocket = previous
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 30_000)
})
