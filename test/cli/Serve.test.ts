/**
 * `symple-ts serve` as a process: options from flags and SYMPLE_* variables, --help, refusals, graceful stops.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import * as Net from "node:net"
import * as Serve from "../../src/cli/Serve.js"
import * as ServeOptions from "../../src/cli/ServeOptions.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import { connect, peer } from "../server/support.js"
import { run } from "./support.js"

/** The URL the server printed, once it listens. */
const listening = (program: Effect.Success<ReturnType<typeof run>>) =>
  Effect.map(program.line(/^Symple server listening on /), (line) => {
    const match = /listening on (\S+) \((?:demo page: (\S+), )?health: (\S+)\)/.exec(line)!
    return { url: match[1]!, page: match[2], health: match[3]! }
  })

const serve = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  run(["serve", "--host", "127.0.0.1", "--port", "0", ...args], env)

describe("symple-ts serve", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(
      `prints where it listens, serves peers and /health, and stops gracefully on ${signal} with exit code 0`,
      () =>
        Effect.gen(function*() {
          // With the demo page (the default) under SIGTERM, without it (`--no-demo`: 426 at /) under SIGINT.
          const demo = signal === "SIGTERM"
          const server = yield* serve(demo ? [] : ["--no-demo"])
          const { health, page, url } = yield* listening(server)
          expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
          expect(page).toBe(demo ? url.replace(/^ws/, "http") + "/" : undefined)
          const root = yield* Effect.promise(() => fetch(health.replace(/\/health$/, "/")))
          expect(root.status).toBe(demo ? 200 : 426)
          const status = yield* Effect.promise(() => fetch(health).then((response) => response.json()))
          expect(status).toMatchObject({ status: "ok", peers: 0 })
          const alice = yield* peer({ url }, "alice")
          server.child.kill(signal)
          expect(yield* alice.next((f) => f.type === "event")).toMatchObject({ name: "shutdown" })
          expect(yield* alice.closed).toEqual({ code: 1001, reason: "Server shutting down" })
          expect(yield* server.exited()).toEqual({ code: 0, signal: null })
          expect(server.lines).toContain("Symple server stopping")
          expect(server.stderr()).toBe("")
        }).pipe(Effect.scoped),
      { timeout: 60_000 }
    )
  }

  it.live("SYMPLE_* variables set options, and a flag wins over its variable", () =>
    Effect.gen(function*() {
      // The variable alone: frames over 200 bytes are refused.
      const small = yield* serve([], { SYMPLE_MAX_MESSAGE_SIZE: "200", SYMPLE_HOST: "0.0.0.0" })
      const smallUrl = (yield* listening(small)).url
      // --host beat SYMPLE_HOST.
      expect(smallUrl).toMatch(/^ws:\/\/127\.0\.0\.1:/)
      const alice = yield* peer({ url: smallUrl }, "alice")
      alice.send({ type: "message", to: ["alice"], data: { text: "x".repeat(300) } })
      expect(yield* alice.next((f) => f.type === "error")).toMatchObject({ status: 413 })
      // The flag over the variable: the same frame passes.
      const large = yield* serve(["--max-message-size", "1000"], { SYMPLE_MAX_MESSAGE_SIZE: "200" })
      const bob = yield* peer({ url: (yield* listening(large)).url }, "bob")
      bob.send({ type: "message", to: ["bob"], data: { text: "x".repeat(300) } })
      yield* bob.none((f) => f.type === "error", 200)
      // Booleans: --no-dynamic-rooms over SYMPLE_DYNAMIC_ROOMS=true.
      const fixed = yield* serve(["--no-dynamic-rooms"], { SYMPLE_DYNAMIC_ROOMS: "true" })
      const carol = yield* peer({ url: (yield* listening(fixed)).url }, "carol")
      carol.send({ type: "join", room: "lobby" })
      expect(yield* carol.next((f) => f.type === "error")).toMatchObject({
        status: 400,
        message: "Dynamic rooms disabled"
      })
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live(
    "a flag given leaves its bad variable unread; SYMPLE_PORT=0 listens on a free port and prints it",
    () =>
      Effect.gen(function*() {
        // --port 0 (from `serve`) wins over a SYMPLE_PORT that is not a port at all.
        const flagged = yield* serve([], { SYMPLE_PORT: "many" })
        const alice = yield* peer({ url: (yield* listening(flagged)).url }, "alice")
        expect(alice.id).toBeTruthy()
        // Port 0 from the environment: the printed URL carries the port the server took.
        const any = yield* run(["serve", "--host", "127.0.0.1", "--no-demo"], { SYMPLE_PORT: "0" })
        const { health, url } = yield* listening(any)
        const port = Number(/:(\d+)$/.exec(url)![1])
        expect(port).toBeGreaterThan(0)
        expect(port).not.toBe(ServerConfig.defaults.port)
        const status = yield* Effect.promise(() => fetch(health).then((response) => response.json()))
        expect(status).toMatchObject({ status: "ok" })
        yield* peer({ url }, "bob")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live("--help lists every option with its default and its variable", () =>
    Effect.gen(function*() {
      const help = yield* run(["serve", "--help"])
      expect(yield* help.exited()).toEqual({ code: 0, signal: null })
      const text = help.lines.join("\n")
      for (const option of Object.keys(ServeOptions.settings) as Array<ServeOptions.Flagged>) {
        const line = help.lines.find((l) => l.trimStart().startsWith(`--${ServeOptions.flagName(option)} `))
        expect(line, option).toBeDefined()
        expect(line).toContain(ServeOptions.variableName(option))
        expect(line).toContain(`default: ${ServeOptions.describe(option, ServerConfig.defaults).split("default: ")[1]}`)
      }
      expect(text).toContain("--port integer")
      expect(text).toContain("(default: 4500; SYMPLE_PORT)")
      expect(text).toContain("(default: 10000; SYMPLE_AUTH_TIMEOUT)")
      expect(text).toMatch(/--demo\s+serve the demo page/)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("bad options and a port in use end with a message and exit code 1", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string>, RegExp]> = [
        [["--port", "70000"], {}, /--port must be at most 65535, got 70000/],
        [["--rate-limit", "-1"], {}, /--rate-limit must be a number of at least 0, got -1/],
        [[], { SYMPLE_MAILBOX_SIZE: "-5" }, /SYMPLE_MAILBOX_SIZE must be a number of at least 0, got -5/],
        [["--rate-seconds", "0"], {}, /--rate-seconds must be more than 0/],
        [[], { SYMPLE_RATE_LIMIT: "many" }, /Invalid environment: .* at SYMPLE_RATE_LIMIT$/m],
        [[], { SYMPLE_PORT: "99999" }, /Invalid environment: Expected a value between 0 and 65535 at SYMPLE_PORT$/m],
        [["--port", "many"], {}, /Invalid value for flag --port: "many"/],
        [["--no-such-flag"], {}, /--no-such-flag/]
      ]
      yield* Effect.forEach(cases, ([args, env, message]) =>
        Effect.gen(function*() {
          // A --port flag would leave SYMPLE_PORT unread.
          const port = args.includes("--port") || env.SYMPLE_PORT !== undefined ? [] : ["--port", "0"]
          const refused = yield* run(["serve", "--host", "127.0.0.1", ...port, ...args], env)
          expect(yield* refused.exited(), args.join(" ")).toEqual({ code: 1, signal: null })
          expect(refused.stderr() + refused.lines.join("\n")).toMatch(message)
        }), { concurrency: 4, discard: true })
      // A port that is taken.
      const taken = yield* Effect.acquireRelease(
        Effect.callback<Net.Server>((resume) => {
          const holder = Net.createServer()
          holder.listen(0, "127.0.0.1", () => resume(Effect.succeed(holder)))
        }),
        (holder) => Effect.sync(() => holder.close())
      )
      const port = (taken.address() as Net.AddressInfo).port
      const busy = yield* run(["serve", "--host", "127.0.0.1", "--port", String(port)])
      expect(yield* busy.exited()).toEqual({ code: 1, signal: null })
      expect(busy.stderr()).toMatch(/Cannot listen: .*EADDRINUSE/)
    }).pipe(Effect.scoped), { timeout: 90_000 })

  it.live("a peer of a server started by the command is refused what the options refuse", () =>
    Effect.gen(function*() {
      const server = yield* serve(["--max-connections", "1"])
      const { url } = yield* listening(server)
      yield* peer({ url }, "alice")
      const second = yield* connect(url)
      expect(yield* second.next((f) => f.type === "error")).toMatchObject({ status: 503 })
    }).pipe(Effect.scoped), { timeout: 60_000 })
})

describe("serve options", () => {
  it.effect("every flag's variable is the one ServerConfig reads for its option", () =>
    Effect.gen(function*() {
      const samples: Record<ServeOptions.Kind, [string, unknown]> = {
        string: ["somewhere", "somewhere"],
        int: ["7", 7],
        number: ["2.5", 2.5],
        boolean: ["true", true],
        ms: ["1234", 1234]
      }
      for (const option of Object.keys(ServeOptions.settings) as Array<ServeOptions.Flagged>) {
        const [text, value] = samples[ServeOptions.settings[option].kind]
        const env = { [ServeOptions.variableName(option)]: text }
        const read = yield* ServerConfig.config.pipe(
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))
        )
        expect(read, option).toEqual({ [option]: value })
      }
    }))

  const withEnv = (env: Record<string, string>) => <A, E>(effect: Effect.Effect<A, E>) =>
    effect.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })))

  it.effect("a flag given wins over its variable, which is then not read; a bad variable without its flag fails", () =>
    Effect.gen(function*() {
      const badPort = withEnv({ SYMPLE_PORT: "many", SYMPLE_RATE_LIMIT: "-" })
      expect(yield* Serve.options({ port: Option.some(0), rateLimit: Option.some(5) }).pipe(badPort)).toMatchObject({
        port: 0,
        rateLimit: 5
      })
      const missed = yield* Serve.options({ port: Option.some(0), rateLimit: Option.none() }).pipe(badPort, Effect.flip)
      expect(missed.message).toMatch(/^Invalid environment: .* at SYMPLE_RATE_LIMIT$/)
      // Port 0 (any free port) from the environment.
      expect(yield* Serve.options({}).pipe(withEnv({ SYMPLE_PORT: "0" }))).toEqual({ port: 0, tls: undefined })
    }))

  it.effect("TLS: each flag wins over its own variable; the other half of the pair may come from its variable", () =>
    Effect.gen(function*() {
      const both = withEnv({ SYMPLE_TLS_CERT: "env.crt", SYMPLE_TLS_KEY: "env.key" })
      expect((yield* Serve.options({}, { tlsCert: Option.some("flag.crt") }).pipe(both)).tls).toEqual({
        cert: "flag.crt",
        key: "env.key"
      })
      expect((yield* Serve.options({}, { tlsKey: Option.some("flag.key") }).pipe(both)).tls).toEqual({
        cert: "env.crt",
        key: "flag.key"
      })
      // The flag replaces the certificate's variable, so the key is still missing.
      const certOnly = withEnv({ SYMPLE_TLS_CERT: "env.crt" })
      const refused = yield* Serve.options({}, { tlsCert: Option.some("flag.crt") }).pipe(certOnly, Effect.flip)
      expect(refused.message).toBe("--tls-cert needs its key: --tls-key (or SYMPLE_TLS_KEY)")
      expect((yield* Serve.options({}).pipe(both)).tls).toEqual({ cert: "env.crt", key: "env.key" })
    }))

  it("flags that were given win; the others leave the environment's values", () => {
    expect(ServeOptions.merge({ port: 1, host: "a" }, { port: Option.some(2), host: Option.none() })).toEqual({
      port: 2,
      host: "a"
    })
  })

  it("names: flag and variable from the option", () => {
    expect(ServeOptions.flagName("maxRoomsPerPeer")).toBe("max-rooms-per-peer")
    expect(ServeOptions.variableName("maxRoomsPerPeer")).toBe("SYMPLE_MAX_ROOMS_PER_PEER")
  })
})
