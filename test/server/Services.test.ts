import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, HashMap, Layer, Logger, Scope, Stream } from "effect"
import * as SympleServer from "../../src/server/index.js"
import { connect, eventually, isMessage, isPresenceOf, peer, settle } from "./support.js"

const local = { port: 0, host: "127.0.0.1" } as const

/** Builds a server layer in the test's scope and returns the server and everything else the layer provides. */
const build = <ROut, E>(
  layer: Layer.Layer<ROut, E>
): Effect.Effect<{ readonly server: SympleServer.Server; readonly context: Context.Context<ROut> }, E, Scope.Scope> =>
  Effect.map(Layer.build(layer), (context) => ({
    server: Context.get(context as Context.Context<SympleServer.SympleServer>, SympleServer.SympleServer),
    context
  }))

/** A log line: the message and the cause, as the application's Logger receives them. */
const collectingLogger = (lines: Array<string>) =>
  Logger.make((options) => {
    lines.push(`${String(options.message)} ${Cause.pretty(options.cause)}`)
  })

describe("services swapped by Layer", () => {
  it.live("a custom Router, Authenticator, JoinPolicy, rate-limit policy and PeerRegistry are the ones used", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      // Routing: the protocol's, recording what it resolves (inject included).
      const router = Layer.succeed(
        SympleServer.Router.Router,
        SympleServer.Router.make({
          resolve: (state, sender, to) => {
            log.push(`resolve ${JSON.stringify(to)}`)
            return SympleServer.Router.resolve(state, sender, to)
          },
          resolveInjected: (state, to) => {
            log.push(`inject ${JSON.stringify(to)}`)
            return SympleServer.Router.resolveInjected(state, to)
          }
        })
      )
      // Authentication: one token per user, and everyone starts in "lobby" under an upper-case name.
      const authenticator = Layer.succeed(
        SympleServer.Authenticator.Authenticator,
        SympleServer.Authenticator.Authenticator.of({
          authenticate: (auth, connecting) =>
            auth.token === `key-${auth.user}`
              ? Effect.succeed({
                peer: { ...SympleServer.Authenticator.peerFromAuth(auth, connecting), name: auth.user.toUpperCase() },
                rooms: [auth.user, "lobby"]
              })
              : Effect.fail(new SympleServer.Authenticator.AuthError({ message: "Wrong key" }))
        })
      )
      // Joins: only rooms named public-*. A policy of the application's turns dynamic rooms on in token mode.
      const joinPolicy = SympleServer.JoinPolicy.layer((_peer, room) => room.startsWith("public-"))
      // Rate limit: three frames per session, whoever it is; releases are counted.
      let released = 0
      const rateLimit = Layer.succeed(
        SympleServer.RateLimit.RateLimit,
        SympleServer.RateLimit.RateLimit.of({
          admission: () => {
            let frames = 0
            return { admit: () => ++frames <= 3, release: Effect.sync(() => void released++) }
          }
        })
      )
      // Registry: the built-in one, recording its transitions.
      const registry = Layer.effect(
        SympleServer.PeerRegistry.PeerRegistry,
        Effect.map(SympleServer.PeerRegistry.make, (inner) =>
          SympleServer.PeerRegistry.PeerRegistry.of({
            ...inner,
            connect: (member, peer, rooms, options) => {
              log.push(`connect ${member.user}`)
              return inner.connect(member, peer, rooms, options)
            },
            disconnect: (id) => {
              log.push(`disconnect`)
              return inner.disconnect(id)
            },
            join: (id, room) => {
              log.push(`join ${room}`)
              return inner.join(id, room)
            }
          }))
      )
      const { server } = yield* build(
        SympleServer.layerWithoutDefaults({ ...local, authentication: true }).pipe(
          Layer.provide(Layer.mergeAll(router, authenticator, joinPolicy, rateLimit, registry))
        )
      )

      const refused = yield* connect(server.url)
      refused.send({ type: "auth", user: "eve", token: "guess" })
      expect(yield* refused.next()).toEqual({ type: "error", status: 401, message: "Wrong key" })
      const alice = yield* peer(server, "alice", { token: "key-alice" })
      const bob = yield* peer(server, "bob", { token: "key-bob" })
      expect(alice.welcome.peer?.name).toBe("ALICE")
      expect(alice.welcome.rooms).toEqual(["alice", "lobby"])
      yield* alice.next(isPresenceOf(bob, true))
      yield* settle(alice, bob)
      expect(log).toEqual(["connect alice", "connect bob"])

      alice.send({ type: "join", room: "secret" })
      expect(yield* alice.next()).toMatchObject({ type: "error", status: 403 })
      alice.send({ type: "join", room: "public-1" })
      expect(yield* alice.next()).toEqual({ type: "join:ok", room: "public-1" })
      alice.send({ type: "message", to: bob.address, data: { n: 1 } })
      expect((yield* bob.next(isMessage())).data).toEqual({ n: 1 })
      expect(yield* server.inject({ type: "message", to: "lobby", from: "bridge", data: { n: 2 } })).toBe(2)
      expect(log).toEqual([
        "connect alice",
        "connect bob",
        "join public-1",
        `resolve ${JSON.stringify(bob.address)}`,
        "inject \"lobby\""
      ])
      // The fourth frame is one too many for the custom policy.
      alice.send({ type: "message", to: bob.address, data: { n: 3 } })
      expect(yield* alice.next((f) => f.type === "error")).toEqual({
        type: "error",
        status: 429,
        message: "Rate limit exceeded"
      })
      expect((yield* alice.closed).code).toBe(1008)
      yield* eventually(Effect.suspend(() => released === 1 ? Effect.void : Effect.fail(new Error("not released"))))
      expect(log.at(-1)).toBe("disconnect")
    }).pipe(Effect.scoped))

  it.live("the registry's changes: every published state, in order, and none for a transition that changes nothing", () =>
    Effect.gen(function*() {
      const { context, server } = yield* build(
        SympleServer.layerWithoutDefaults(local).pipe(
          Layer.provideMerge(SympleServer.PeerRegistry.layer),
          Layer.provide(SympleServer.layerDefaults(local))
        )
      )
      const registry = Context.get(context, SympleServer.PeerRegistry.PeerRegistry)
      const seen: Array<string> = []
      yield* SympleServer.PeerRegistry.PeerRegistry.pipe(
        Effect.provideContext(context),
        Effect.flatMap((r) =>
          Stream.runForEach(r.changes, (state) =>
            Effect.sync(() => {
              const rooms = Array.from(
                HashMap.entries(state.rooms),
                ([room, members]) => `${room}:${members.map((m) => m.user).join("+")}`
              ).sort()
              seen.push(rooms.join(" "))
            }))
        ),
        Effect.forkScoped({ startImmediately: true })
      )
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* alice.next(isPresenceOf(bob, true))
      bob.send({ type: "join", room: "games" })
      yield* bob.next((f) => f.type === "join:ok")
      bob.send({ type: "leave", room: "nowhere" })
      yield* bob.next((f) => f.type === "leave:ok")
      bob.send({ type: "leave", room: "lobby" })
      yield* bob.next((f) => f.type === "leave:ok")
      alice.ws.close()
      yield* eventually(Effect.suspend(() => seen.length === 6 ? Effect.void : Effect.fail(new Error(seen.join("\n")))))
      expect(seen).toEqual([
        "",
        "alice:alice lobby:alice",
        "alice:alice bob:bob lobby:alice+bob",
        "alice:alice bob:bob games:bob lobby:alice+bob",
        "alice:alice bob:bob games:bob lobby:alice",
        "bob:bob games:bob"
      ])
      // The server reads the same registry.
      expect(HashMap.size((yield* registry.snapshot).sessions)).toBe(yield* server.peerCount)
    }).pipe(Effect.scoped))
})

/**
 * A server whose `JoinPolicy` or `Router` is `service` (the other services are the defaults), in the test's scope;
 * what it logs goes to `lines` when they are given.
 */
const serverWith = <S extends SympleServer.JoinPolicy.JoinPolicy | SympleServer.Router.Router>(
  service: Layer.Layer<S>,
  lines?: Array<string>
) => {
  const layer = SympleServer.layerWithoutDefaults(local).pipe(
    Layer.provide(service),
    Layer.provide(SympleServer.layerDefaults(local))
  )
  return build(lines === undefined ? layer : layer.pipe(Layer.provide(Logger.layer([collectingLogger(lines)]))))
}

/** The first line logged with `text` in it, once there is one. */
const logged = (lines: ReadonlyArray<string>, text: string) =>
  eventually(Effect.suspend(() => {
    const found = lines.find((l) => l.includes(text))
    return found === undefined ? Effect.fail(new Error(`not logged: ${text}`)) : Effect.succeed(found)
  }))

describe("a connection's work and defects", () => {
  it.live("a throwing Router ends that connection only, and the Logger given to the server's layer sees it", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const throwing = Layer.succeed(
        SympleServer.Router.Router,
        SympleServer.Router.make({
          resolve: (state, sender, to) => {
            if (to === "boom") throw new Error("router bug")
            return SympleServer.Router.resolve(state, sender, to)
          }
        })
      )
      const { server } = yield* serverWith(throwing, lines)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* alice.next(isPresenceOf(bob, true))
      alice.send({ type: "message", to: "boom", data: {} })
      expect((yield* alice.closed).code).toBe(1006)
      const line = yield* logged(lines, "Symple connection failed")
      expect(line).toContain("router bug")
      yield* bob.next(isPresenceOf(alice, false))
      expect(yield* server.peerCount).toBe(1)
    }).pipe(Effect.scoped))

  it.live("a join policy that dies while the connection waits for it ends that connection, logged", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const dying = Layer.succeed(
        SympleServer.JoinPolicy.JoinPolicy,
        SympleServer.JoinPolicy.JoinPolicy.of({
          authorizeJoin: (_peer, room) =>
            room === "cursed"
              ? Effect.andThen(Effect.sleep(10), Effect.die(new Error("policy bug")))
              : Effect.succeed(true)
        })
      )
      const { server } = yield* serverWith(dying, lines)
      const alice = yield* peer(server, "alice", { rooms: ["lobby"] })
      const bob = yield* peer(server, "bob", { rooms: ["lobby"] })
      yield* alice.next(isPresenceOf(bob, true))
      alice.send({ type: "join", room: "cursed" })
      // Waits behind the pending join, then goes nowhere: the connection has ended.
      alice.send({ type: "message", to: bob.address, data: { late: true } })
      expect((yield* alice.closed).code).toBe(1006)
      const line = yield* logged(lines, "Symple connection failed")
      expect(line).toContain("policy bug")
      yield* bob.next(isPresenceOf(alice, false))
      yield* bob.none(isMessage())
      bob.send({ type: "join", room: "open" })
      expect(yield* bob.next((f) => f.type !== "presence")).toEqual({ type: "join:ok", room: "open" })
    }).pipe(Effect.scoped))

  it.live("what a connection waits for stops when the connection ends", () =>
    Effect.gen(function*() {
      let stopped = 0
      const forever = Layer.succeed(
        SympleServer.JoinPolicy.JoinPolicy,
        SympleServer.JoinPolicy.JoinPolicy.of({
          authorizeJoin: () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void stopped++)))
        })
      )
      const { server } = yield* serverWith(forever)
      const alice = yield* peer(server, "alice")
      alice.send({ type: "join", room: "limbo" })
      yield* alice.none(() => true, 50)
      expect(stopped).toBe(0)
      alice.ws.close()
      yield* eventually(Effect.suspend(() => stopped === 1 ? Effect.void : Effect.fail(new Error("still waiting"))))
      expect(yield* server.peerCount).toBe(0)
      expect(yield* server.connectionCount).toBe(0)
    }).pipe(Effect.scoped))

  it.live("stopping the server stops what its connections wait for, and still says goodbye", () =>
    Effect.gen(function*() {
      let stopped = 0
      const forever = Layer.succeed(
        SympleServer.JoinPolicy.JoinPolicy,
        SympleServer.JoinPolicy.JoinPolicy.of({
          authorizeJoin: () => Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => void stopped++)))
        })
      )
      const serverScope = yield* Scope.make()
      const { server } = yield* serverWith(forever).pipe(Scope.provide(serverScope))
      const alice = yield* peer(server, "alice")
      alice.send({ type: "join", room: "limbo" })
      yield* alice.none(() => true, 50)
      yield* Scope.close(serverScope, Exit.void)
      expect(yield* alice.next((f) => f.type === "event")).toMatchObject({ name: "shutdown" })
      expect(yield* alice.closed).toEqual({ code: 1001, reason: "Server shutting down" })
      expect(stopped).toBe(1)
    }).pipe(Effect.scoped))
})
