/**
 * The command over TLS: `serve --tls-cert --tls-key` (or SYMPLE_TLS_*) and `console --url wss://… --ca`, with a
 * certificate made at test time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { certificates } from "../support/tls.js"
import { onlineAs, type Program, run } from "./support.js"

const listening = (server: Program) =>
  Effect.map(server.line(/^Symple server listening on /), (line) => {
    const match = /listening on wss:\/\/127\.0\.0\.1:(\d+) \((?:demo page: https:\S+, )?health: (https:\S+)\)$/.exec(
      line
    )
    if (match === null) throw new Error(`not a TLS listening line: ${line}`)
    return { port: Number(match[1]), health: match[2]! }
  })

describe("symple-ts over TLS", () => {
  it.live(
    "serve --tls-cert --tls-key serves wss://; two consoles trusting the CA talk over it",
    () =>
      Effect.gen(function*() {
        const { caFile, certFile, keyFile } = certificates()
        const server = yield* run([
          "serve",
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--tls-cert",
          certFile,
          "--tls-key",
          keyFile
        ])
        const { health, port } = yield* listening(server)
        expect(health).toBe(`https://127.0.0.1:${port}/health`)
        const url = `wss://localhost:${port}`
        const alice = yield* run(["console", "--url", url, "--user", "alice", "--rooms", "lobby", "--ca", caFile])
        const aliceAddress = yield* onlineAs(alice)
        const bob = yield* run(["console", "--url", url, "--user", "bob", "--rooms", "lobby", "--ca", caFile])
        yield* onlineAs(bob)
        yield* alice.line(/^\+ bob\|/)
        yield* alice.type("hello over wss")
        expect(yield* bob.line(/hello over wss/)).toBe(`[lobby] ${aliceAddress}: hello over wss`)
        // Without the CA, the certificate is not trusted: said, and retried.
        const eve = yield* run(["console", "--url", url, "--user", "eve"])
        expect(yield* eve.line(/^! /)).toMatch(/^! Could not open the WebSocket: .*certificate.*, retrying$/)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("SYMPLE_TLS_CERT and SYMPLE_TLS_KEY (PEM text) do the same", () =>
    Effect.gen(function*() {
      const { caFile, cert, key } = certificates()
      const server = yield* run(["serve", "--host", "127.0.0.1", "--port", "0"], {
        SYMPLE_TLS_CERT: cert,
        SYMPLE_TLS_KEY: key
      })
      const { port } = yield* listening(server)
      const alice = yield* run(["console", "--url", `wss://localhost:${port}`, "--user", "alice", "--ca", caFile])
      yield* onlineAs(alice)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live(
    "half a certificate, or one that cannot be read, ends serve with a message and exit code 1",
    () =>
      Effect.gen(function*() {
        const { caFile, certFile, keyFile } = certificates()
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, RegExp]> = [
          [["--tls-cert", certFile], {}, /--tls-cert needs its key: --tls-key \(or SYMPLE_TLS_KEY\)/],
          [["--tls-key", keyFile], {}, /--tls-key needs a certificate: --tls-cert \(or SYMPLE_TLS_CERT\)/],
          [[], { SYMPLE_TLS_CERT: certFile }, /SYMPLE_TLS_CERT and SYMPLE_TLS_KEY go together: set both/],
          [["--tls-cert", `${certFile}.missing`, "--tls-key", keyFile], {}, /Cannot read the TLS certificate .*ENOENT/],
          [["--tls-cert", caFile, "--tls-key", keyFile], {}, /Invalid TLS certificate or key: /]
        ]
        yield* Effect.forEach(cases, ([args, env, message]) =>
          Effect.gen(function*() {
            const refused = yield* run(["serve", "--host", "127.0.0.1", "--port", "0", ...args], env)
            expect(yield* refused.exited(), args.join(" ")).toEqual({ code: 1, signal: null })
            expect(refused.stderr(), args.join(" ")).toMatch(message)
          }), { concurrency: 3, discard: true })
        const noCa = yield* run([
          "console",
          "--url",
          "wss://localhost:1",
          "--user",
          "alice",
          "--ca",
          "/nonexistent/ca.pem"
        ])
        expect((yield* noCa.exited()).code).toBe(1)
        expect(noCa.stderr()).toMatch(/\/nonexistent\/ca\.pem/)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
