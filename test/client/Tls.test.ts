/**
 * wss:// and https:// on one port with a certificate made at test time; clients over TLS on Node (`ws`, with a
 * `ca`) and on a runtime's global WebSocket, as in a browser.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, PubSub } from "effect"
import { execFile } from "node:child_process"
import * as Https from "node:https"
import { fileURLToPath } from "node:url"
import { NodeSympleClient } from "../../src/client/node.js"
import { Message } from "../../src/protocol/index.js"
import * as SympleServer from "../../src/server/index.js"
import { certificates } from "../support/tls.js"

const startTls = (tls: SympleServer.ServerOptions["tls"]) =>
  SympleServer.makeWithDefaults({ port: 0, host: "127.0.0.1", tls })

const httpsGet = (url: string, ca?: string) =>
  Effect.callback<{ readonly status: number; readonly body: string }, Error>((resume) => {
    const request = Https.get(url, ca === undefined ? {} : { ca }, (response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => void (body += chunk.toString()))
      response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
    })
    request.on("error", (error) => resume(Effect.fail(error)))
  })

describe("TLS", () => {
  it.live("a server with a certificate (files) serves wss:// and https:// on one port", () =>
    Effect.gen(function*() {
      const { ca, certFile, keyFile } = certificates()
      const server = yield* startTls({ cert: certFile, key: keyFile })
      expect(server.url).toBe(`wss://127.0.0.1:${server.port}`)
      const health = yield* httpsGet(`https://127.0.0.1:${server.port}/health`, ca)
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body)).toMatchObject({ status: "ok" })
      // Two Node clients trusting the private CA talk over wss://: one by URL, one by secure + host + port.
      const alice = yield* NodeSympleClient.make({ url: server.url, user: "alice", rooms: ["lobby"], ca })
      const bob = yield* NodeSympleClient.make({
        secure: true,
        host: "localhost",
        port: server.port,
        user: "bob",
        rooms: ["lobby"],
        ca: Buffer.from(ca)
      })
      expect(bob.url).toBe(`wss://localhost:${server.port}/`)
      yield* alice.awaitOnline
      yield* bob.awaitOnline
      const inbox = yield* bob.subscribe
      yield* alice.send(Message.message({ to: ["lobby"], data: { text: "over TLS" } }))
      const received = yield* PubSub.take(inbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
      expect(received).toMatchObject({ data: { text: "over TLS" } })
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("the certificate and key may be given as PEM text", () =>
    Effect.gen(function*() {
      const { ca, cert, key } = certificates()
      const server = yield* startTls({ cert, key: Buffer.from(key) })
      const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", ca: [ca] })
      expect((yield* client.awaitOnline).user).toBe("alice")
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live(
    "a client that does not trust the certificate's authority is not let in, and says why",
    () =>
      Effect.gen(function*() {
        const { certFile, keyFile } = certificates()
        const server = yield* startTls({ cert: certFile, key: keyFile })
        const client = yield* NodeSympleClient.make({ url: server.url, user: "alice", reconnection: false })
        const failure = yield* Effect.flip(client.awaitOnline)
        expect(failure._tag).toBe("ClientClosed")
        const state = yield* client.currentState
        expect(state._tag).toBe("Error")
        expect(state._tag === "Error" ? state.message : "").toMatch(/certificate/i)
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )

  it.live("unusable certificates fail the start with ServerError reason Tls", () =>
    Effect.gen(function*() {
      const { certFile, keyFile } = certificates()
      const missing = yield* Effect.flip(startTls({ cert: `${certFile}.missing`, key: keyFile }))
      expect(missing).toMatchObject({ _tag: "ServerError", reason: "Tls" })
      expect(missing.message).toMatch(/^Cannot read the TLS certificate .*\.missing: .*ENOENT/)
      const garbage = yield* Effect.flip(
        startTls({ cert: "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n", key: keyFile })
      )
      expect(garbage).toMatchObject({ _tag: "ServerError", reason: "Tls" })
      expect(garbage.message).toMatch(/^Invalid TLS certificate or key: /)
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live(
    "the platform-neutral client on a global WebSocket (as in a browser) connects over wss://",
    () =>
      Effect.gen(function*() {
        const { caFile, certFile, keyFile } = certificates()
        const server = yield* startTls({ cert: certFile, key: keyFile })
        const fixture = fileURLToPath(new URL("fixtures/globalWebSocket.ts", import.meta.url))
        // A browser trusts the authorities of its system; this process is told of the test's one the same way.
        const output = yield* Effect.callback<string, Error>((resume) => {
          execFile(
            process.execPath,
            ["--import", "tsx", fixture, `wss://localhost:${server.port}`],
            { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, timeout: 20_000 },
            (error, stdout) =>
              resume(error === null ? Effect.succeed(stdout) : Effect.fail(new Error(`${error}: ${stdout}`)))
          )
        })
        expect(output).toMatch(/^online browser\|\S+\n$/)
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )
})
