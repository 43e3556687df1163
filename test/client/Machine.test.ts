/**
 * The client's transition machine under random sequences of inputs: API calls, socket events, server frames,
 * timers and the reconnection schedule, carried out by a model of the interpreter (MachineWorld.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Exit, HashMap, Option } from "effect"
import { Input } from "../../src/client/internal/Machine.js"
import type * as Roster from "../../src/client/Roster.js"
import { fc, prop } from "../support/prop.js"
import * as W from "./MachineWorld.js"

const kinds = {
  advance: 8,
  send: 3,
  request: 2,
  join: 1,
  leave: 1,
  withdraw: 1,
  presence: 4,
  probe: 1,
  reply: 2,
  roomAck: 1,
  roomsDisabled: 1,
  shutdown: 1,
  oversize: 1,
  junk: 1,
  handshakeError: 1,
  breakSocket: 2,
  socketClosed: 2,
  openFailed: 1,
  fire: 2,
  backoff: 2,
  stale: 1,
  ghost: 1
} as const
type Kind = keyof typeof kinds

interface Action {
  readonly kind: Kind
  readonly n: number
  readonly flag: boolean
}

const action: fc.Arbitrary<Action> = fc.record({
  kind: fc.oneof(
    ...Object.entries(kinds).map(([kind, weight]) => ({ weight, arbitrary: fc.constant(kind as Kind) }))
  ),
  n: fc.nat(11),
  flag: fc.boolean()
})

const outstandingRequests = (world: W.World) =>
  Array.from(world.tickets).filter(([, r]) => r.kind === "request" && r.answers === 0 && !r.withdrawn)

/** Moves the client on from where it is, so that random runs reach every phase. */
const advance = (world: W.World, { flag, n }: Action) => {
  const phase = world.state.phase
  const socket = world.socket
  if (socket?.status === "opening") return W.opened(world)
  if (socket?.status === "broken" || socket?.status === "closing") return W.socketClosed(world, 1006)
  switch (phase._tag) {
    case "Idle":
      return W.feed(world, Input.Start())
    case "Authenticating": {
      const previous = world.state.roster.self
      const id = flag && previous !== undefined ? previous : `s${n}`
      return W.receive(world, W.welcome(id, { resume: `t${n}`, resumed: n % 2 === 0 }))
    }
    case "Waiting":
      return W.backoffEnds(world, false)
    case "Online":
      return W.receive(world, W.presence(n, !flag || n > 8, n % 2))
    default:
      return
  }
}

const perform = (world: W.World, a: Action) => {
  const { flag, n } = a
  switch (a.kind) {
    case "advance":
      return advance(world, a)
    case "send":
      return W.send(world, n)
    case "request":
      return W.request(world)
    case "join":
      return W.room(world, "join", `r${n % 2}`)
    case "leave":
      return W.room(world, "leave", n % 3 === 0 ? "lobby" : `r${n % 2}`)
    case "withdraw":
      return W.withdraw(world, n)
    case "presence":
      return W.receive(world, W.presence(n, flag, n % 2))
    case "probe":
      return W.receive(world, { ...(W.presence(n, true) as object), probe: true } as W.Json)
    case "reply": {
      const open = outstandingRequests(world)
      if (open.length === 0) return
      const [ticket] = open[n % open.length]!
      const status = [200, 202, 404, 406][n % 4]!
      return W.receive(world, { type: "command", id: `r${ticket}`, node: "x:y", from: "u0|p0", status })
    }
    case "roomAck":
      return W.receive(world, { type: flag ? "join:ok" : "leave:ok", room: n % 3 === 0 ? "lobby" : `r${n % 2}` })
    case "roomsDisabled":
      return W.receive(world, { type: "error", status: 400, message: "Dynamic rooms disabled" })
    case "shutdown":
      return W.receive(world, { type: "event", name: "shutdown", message: "Server shutting down" })
    case "oversize":
      return W.receive(world, { type: "message", from: "u0|p0", data: "x".repeat(3000) })
    case "junk":
      return W.receive(world, flag ? "not a frame" : { hello: "no type" })
    case "handshakeError":
      return W.receive(world, { type: "error", status: [401, 503, 500, 408][n % 4]!, message: "refused" })
    case "breakSocket":
      if (world.socket?.status === "open") world.socket.status = "broken"
      return
    case "socketClosed":
      return W.socketClosed(world, [1000, 1001, 1006, undefined][n % 4])
    case "openFailed":
      if (world.socket?.status === "opening") return W.socketClosed(world, undefined)
      return
    case "fire":
      return W.fire(world, n)
    case "backoff":
      return W.backoffEnds(world, flag && n === 0)
    case "ghost": {
      // A server that has not noticed one of our earlier sessions die lists it, then announces its end.
      const former = world.state.roster.former
      if (former.length === 0 || world.state.phase._tag !== "Online") return
      const id = former[n % former.length]!
      const before = world.peers
      W.receive(world, { type: "presence", from: `me|${id}`, data: { id, user: "me", name: "me", online: flag } })
      expect(world.peers).toBe(before)
      return
    }
    case "stale": {
      const conn = world.state.conns - 1
      if (conn < 1) return
      if (flag) return W.receive(world, W.presence(n, true), conn)
      return W.feed(world, Input.Closed({ conn, code: 1006, cause: undefined, overLimit: false }))
    }
  }
}

const checkCalls = (world: W.World) => {
  // Every call was answered exactly once, unless its caller withdrew it first (then never).
  for (const [ticket, record] of world.tickets) {
    expect({ ticket, answers: record.answers }).toEqual({ ticket, answers: record.withdrawn ? 0 : 1 })
    // A frame is written at most once; a send succeeds exactly when its frame was written, with that frame.
    expect(record.written).toBeLessThanOrEqual(1)
    if (record.kind === "send" && !record.withdrawn) {
      const exit = record.exit as Exit.Exit<unknown, unknown>
      expect(Exit.isSuccess(exit)).toBe(record.written === 1)
      if (Exit.isSuccess(exit)) expect(exit.value).toEqual(record.frame)
    }
  }
  // Frames leave in the order they were sent.
  expect(world.deliveries).toEqual([...world.deliveries].sort((a, b) => a - b))
  // Every connection starts with one auth, and nothing before it.
  for (const frames of world.wire.values()) {
    expect(frames[0]?.type).toBe("auth")
    expect(frames.filter((f) => f.type === "auth").length).toBe(1)
  }
}

describe("client machine", () => {
  const seen = new Set<string>()

  prop(
    "any sequence of inputs keeps the client legal; every call is answered once; no frame is lost or written twice",
    [fc.array(action, { maxLength: 80 })],
    ([actions]) => {
      const world = W.makeWorld()
      W.feed(world, Input.Start())
      for (const a of actions) perform(world, a)
      W.close(world)
      expect(world.state.phase._tag).toBe("Stopped")
      expect(HashMap.size(world.peers)).toBe(0)
      checkCalls(world)
      for (const tag of world.seen) seen.add(tag)
    },
    { fastCheck: { numRuns: 400 } }
  )

  it("the random runs reach every phase", () => {
    // Runs after the property in this file (tests in a file run in order).
    expect([...seen].sort()).toEqual(expect.arrayContaining([
      "Authenticating",
      "Closed",
      "Connecting",
      "Error",
      "Online",
      "Stopped",
      "Waiting"
    ]))
  })

  prop(
    "frames sent while reconnecting go out once the next session is online, in order, from that session",
    [fc.array(fc.nat(5), { minLength: 1, maxLength: 8 }), fc.nat(3)],
    ([variants, failures]) => {
      const world = W.makeWorld()
      W.feed(world, Input.Start())
      W.opened(world)
      W.receive(world, W.welcome("s1"))
      world.socket!.status = "broken"
      const tickets = variants.map((v) => W.send(world, v))
      W.socketClosed(world, 1006)
      for (let i = 0; i < failures; i++) {
        W.backoffEnds(world, false)
        W.socketClosed(world, undefined)
      }
      W.backoffEnds(world, false)
      W.opened(world)
      expect(world.deliveries).toEqual([])
      W.receive(world, W.welcome("s2"))
      expect(world.deliveries).toEqual(tickets)
      const conn = world.state.conns
      const routed = (world.wire.get(conn) ?? []).filter((f) => f.type === "message" || f.type === "command")
      expect(routed.every((f) => "from" in f && f.from === "me|s2")).toBe(true)
    },
    { fastCheck: { numRuns: 200 } }
  )
})

// --- the roster through reconnections -------------------------------------------------------------------------

const peerIds = fc.uniqueArray(fc.nat(5), { minLength: 1, maxLength: 6 })

/** Online as s1 with these peers, then the connection lost and `failures` attempts failed before the next opens. */
const online = (world: W.World, ids: ReadonlyArray<number>, token?: string) => {
  W.feed(world, Input.Start())
  W.opened(world)
  W.receive(world, W.welcome("s1", token === undefined ? {} : { resume: token }))
  for (const id of ids) W.receive(world, W.presence(id, true))
}

const blip = (world: W.World, noise: ReadonlyArray<Action>) => {
  world.socket!.status = "broken"
  W.socketClosed(world, 1006)
  for (const a of noise) {
    switch (a.kind) {
      case "send":
        W.send(world, a.n)
        break
      case "request":
        W.request(world)
        break
      case "fire":
        W.fire(world, a.n)
        break
      case "openFailed":
        W.backoffEnds(world, false)
        W.socketClosed(world, undefined)
        break
      case "handshakeError":
        // Open, auth sent, then the socket drops before any welcome.
        W.backoffEnds(world, false)
        W.opened(world)
        W.socketClosed(world, 1006)
        break
      default:
        break
    }
  }
  W.backoffEnds(world, false)
  W.opened(world)
}

const noise = fc.array(
  fc.record({
    kind: fc.constantFrom<Kind>("send", "request", "fire", "openFailed", "handshakeError"),
    n: fc.nat(11),
    flag: fc.boolean()
  }),
  { maxLength: 12 }
)

const flaps = (changes: ReadonlyArray<Roster.Change>) => changes.filter((c) => c._tag !== "Updated")

describe("client roster through reconnections", () => {
  prop(
    "a resumed session keeps the roster without a single PeerConnected or PeerDisconnected",
    [peerIds, noise, fc.boolean()],
    ([ids, actions, repeat]) => {
      const world = W.makeWorld()
      online(world, ids, "t1")
      const before = W.rosterOf(world)
      const mark = world.changes.length
      blip(world, actions)
      // Every reconnection offers the token; it is spent only by a welcome.
      expect(W.auths(world).slice(1).map((a) => (a as { resume?: string }).resume)).toEqual(
        W.auths(world).slice(1).map(() => "t1")
      )
      W.receive(world, W.welcome("s1", { resume: "t2", resumed: true }))
      // The server replays nothing new; a repeat of what we know changes nothing either.
      if (repeat) { for (const id of ids) W.receive(world, W.presence(id, true)) }
      for (let i = 0; i < 3; i++) W.fire(world, i)
      expect(world.changes.slice(mark)).toEqual([])
      expect(W.rosterOf(world)).toEqual(before)
      expect(world.pending).toEqual([])
      expect(world.state.resume).toBe("t2")
      // No probe: the neighbours of a resumed session see nothing.
      const last = world.wire.get(world.state.conns) ?? []
      expect(last.some((f) => f.type === "presence" && "probe" in f)).toBe(false)
    },
    { fastCheck: { numRuns: 300 } }
  )

  prop(
    "a new session: peers seen again raise no event, new sessions of their users replace them, the others go once " +
      "at the end of the grace period",
    [peerIds, noise, fc.array(fc.nat(8), { maxLength: 12 }), fc.constantFrom(undefined, false)],
    ([ids, actions, seenAgain, resumed]) => {
      const world = W.makeWorld()
      online(world, ids, resumed === undefined ? undefined : "t1")
      const mark = world.changes.length
      blip(world, actions)
      W.receive(world, W.welcome("s2", resumed === undefined ? {} : { resumed }))
      // Our own entry moved to the new session.
      expect(world.changes.slice(mark)).toEqual([
        expect.objectContaining({ _tag: "Updated", previous: expect.objectContaining({ id: "s1" }) })
      ])
      // The model: ids 0-5 are the old sessions (user u<id % 3>), 6-8 new sessions of users u0-u2.
      const pending = new Set(ids.map((id) => `p${id}`))
      const expected: Array<string> = []
      for (const n of seenAgain) {
        const id = `p${n}`
        const present = HashMap.has(world.peers, id)
        W.receive(world, W.presence(n, true))
        if (present) {
          pending.delete(id)
          continue
        }
        const user = `u${n % 3}`
        const replaced = [...pending].filter((p) => `u${Number(p.slice(1)) % 3}` === user).sort()[0]
        if (replaced !== undefined) {
          pending.delete(replaced)
          expected.push(`Updated:${replaced}>${id}`)
        } else {
          expected.push(`Connected:${id}`)
        }
      }
      const grace = Array.from(world.timers.values()).find((t) => t._tag === "Grace")
      expect(grace === undefined).toBe(pending.size === 0 && ids.length === 0)
      if (grace !== undefined) W.feed(world, Input.Timeout({ timer: grace }))
      for (const id of [...pending].sort()) expected.push(`Disconnected:${id}`)
      const seen = world.changes.slice(mark + 1).map((c) =>
        c._tag === "Updated" ? `Updated:${c.previous.id}>${c.peer.id}` : `${c._tag}:${c.peer.id}`
      )
      expect(seen.filter((s) => !s.startsWith("Disconnected"))).toEqual(expected.filter((s) => !s.startsWith("Disc")))
      expect(seen.filter((s) => s.startsWith("Disconnected")).sort()).toEqual(
        expected.filter((s) => s.startsWith("Disconnected")).sort()
      )
      expect(world.pending).toEqual([])
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("while the client is offline its roster is kept, every peer pending, without an event", () => {
    const world = W.makeWorld()
    online(world, [0, 1])
    expect(flaps(world.changes).length).toBe(3)
    world.socket!.status = "broken"
    W.socketClosed(world, 1006)
    expect(HashMap.size(world.peers)).toBe(3)
    expect(world.pending.length).toBe(3)
  })
})

describe("client machine details", () => {
  it("our own peer record is cleaned of what a JavaScript server echoes from auth", () => {
    const world = W.makeWorld()
    W.feed(world, Input.Start())
    W.opened(world)
    W.receive(world, {
      type: "welcome",
      protocol: "symple/4",
      status: 200,
      peer: {
        type: "auth",
        user: "me",
        rooms: ["lobby"],
        token: "",
        data: { agent: "raw" },
        id: "js1",
        online: true,
        name: "me",
        host: "127.0.0.1"
      },
      rooms: ["me", "lobby"]
    })
    const self = {
      type: "Peer",
      user: "me",
      data: { agent: "raw" },
      id: "js1",
      online: true,
      name: "me",
      host: "127.0.0.1"
    }
    expect(world.state.phase._tag === "Online" && world.state.phase.self).toEqual(self)
    const probe = (world.wire.get(1) ?? []).find((f) => f.type === "presence")
    expect(probe).toMatchObject({ type: "presence", probe: true, data: { ...self, mood: "fine" } })
    expect(JSON.stringify(probe)).not.toMatch(/token|rooms|"auth"/)
    expect(Option.getOrUndefined(HashMap.get(world.peers, "js1"))).toEqual(self)
  })

  it("a reply to a request that has not gone out yet answers nothing; the reply after it went out does", () => {
    // Found by the first property (one run in a few thousand): a reply that settled a request still in the outbox
    // left the request waiting for no reply, and its frame went out after it was answered.
    const world = W.makeWorld()
    online(world, [])
    world.socket!.status = "broken"
    const ticket = W.request(world)
    const reply = { type: "command", id: `r${ticket}`, node: "x:y", from: "u0|p0", status: 200 }
    W.receive(world, reply)
    expect(world.tickets.get(ticket)).toMatchObject({ answers: 0, written: 0 })
    W.socketClosed(world, 1006)
    W.backoffEnds(world, false)
    W.opened(world)
    W.receive(world, W.welcome("s2"))
    expect(world.tickets.get(ticket)).toMatchObject({ answers: 0, written: 1 })
    W.receive(world, reply)
    const record = world.tickets.get(ticket)!
    expect(record).toMatchObject({ answers: 1, written: 1 })
    expect(record.exit).toEqual(Exit.succeed(reply))
  })

  it("a frame over maxFrameSize closes the connection with 1009 and ends it as TooLarge", () => {
    const world = W.makeWorld()
    online(world, [])
    W.receive(world, { type: "message", data: "é".repeat(1100) })
    expect(world.socket?.status).toBe("closing")
    // What else the condemned connection brings is not read.
    W.receive(world, W.presence(1, true))
    expect(HashMap.has(world.peers, "p1")).toBe(false)
    W.socketClosed(world, 1009)
    const shown = world.shown.at(-1)
    expect(shown?._tag === "Error" && shown.message).toBe(
      "The server sent a frame of 2228 bytes over the client's maxFrameSize of 2048 bytes"
    )
    expect(world.backoff).toBe(true)
  })

  it("the resume token: kept from welcome, offered by the next auth, dropped on shutdown and when none comes", () => {
    const world = W.makeWorld()
    online(world, [], "t1")
    world.socket!.status = "broken"
    W.socketClosed(world, 1006)
    W.backoffEnds(world, false)
    W.opened(world)
    expect(W.auths(world).at(-1)).toMatchObject({ type: "auth", user: "me", resume: "t1" })
    // A server without the extension: a new session, no token.
    W.receive(world, W.welcome("s2"))
    expect(world.state.resume).toBeUndefined()
    world.socket!.status = "broken"
    W.socketClosed(world, 1006)
    W.backoffEnds(world, false)
    W.opened(world)
    expect(W.auths(world).at(-1)).not.toHaveProperty("resume")
    W.receive(world, W.welcome("s3", { resume: "t3" }))
    W.receive(world, { type: "event", name: "shutdown", message: "Server shutting down" })
    W.socketClosed(world, 1001)
    expect(world.shown.at(-1)?._tag).toBe("Closed")
    W.backoffEnds(world, false)
    W.opened(world)
    expect(W.auths(world).at(-1)).not.toHaveProperty("resume")
    // `resumed: true` with another id is a new session.
    W.receive(world, W.welcome("s4", { resume: "t4", resumed: true }))
    expect(world.changes.at(-1)).toMatchObject({ _tag: "Updated", previous: { id: "s3" }, peer: { id: "s4" } })
  })
})
