/**
 * Property tests: any sequence of presence frames (online / offline, repeats, snapshots) leaves the roster equal
 * to a simple model, and the facade agrees with the Effect API.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, HashMap, Option, PubSub } from "effect"
import type * as Facade from "../../src/client/Facade.js"
import * as NodeSympleClient from "../../src/client/NodeSympleClient.js"
import * as Roster from "../../src/client/Roster.js"
import type * as Peer from "../../src/protocol/Peer.js"
import { fc, prop, propLive } from "../support/prop.js"
import { drain, eventually } from "./helpers.js"
import * as Scripted from "./ScriptedServer.js"

type Op =
  | { readonly kind: "presence"; readonly peer: number; readonly online: boolean; readonly mood: number }
  | { readonly kind: "snapshot" }
  | { readonly kind: "repeat" }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("presence" as const),
      peer: fc.nat(3),
      online: fc.boolean(),
      mood: fc.nat(2)
    })
  },
  { weight: 1, arbitrary: fc.constant({ kind: "snapshot" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "repeat" as const }) }
)
const ops = fc.array(op, { maxLength: 40 })

const peerData = (peer: number, online: boolean, mood: number) => ({
  id: `p${peer}`,
  user: `user${peer}`,
  name: `User ${peer}`,
  online,
  type: "Peer",
  mood: `m${mood}`
})

/** The frames a server would send for these operations, and what a roster must end up holding. */
const script = (sequence: ReadonlyArray<Op>) => {
  const model = new Map<string, ReturnType<typeof peerData>>()
  const frames: Array<Scripted.JsonObject> = []
  const changes: Array<string> = []
  let last: Scripted.JsonObject | undefined
  const emit = (data: ReturnType<typeof peerData>) => {
    const before = model.get(data.id)
    if (data.online) {
      if (before === undefined) changes.push(`Connected:${data.id}`)
      else if (before.mood !== data.mood) changes.push(`Updated:${data.id}`)
      model.set(data.id, data)
    } else if (before !== undefined) {
      changes.push(`Disconnected:${data.id}`)
      model.delete(data.id)
    }
    last = { type: "presence", from: `${data.user}|${data.id}`, data }
    frames.push(last)
  }
  for (const o of sequence) {
    if (o.kind === "presence") emit(peerData(o.peer, o.online, o.mood))
    else if (o.kind === "snapshot") { for (const data of Array.from(model.values())) emit(data) }
    else if (last !== undefined) emit(last.data as ReturnType<typeof peerData>)
  }
  return { frames, model, changes }
}

const sortPeers = (peers: ReadonlyArray<Peer.Peer>) => [...peers].sort((a, b) => a.id.localeCompare(b.id))

describe("roster model", () => {
  prop("applying presence matches a simple model, with one event per real change", [ops], ([sequence]) => {
    const { frames, model, changes } = script(sequence)
    let peers: Roster.Peers = HashMap.empty()
    const seen: Array<string> = []
    for (const frame of frames) {
      const peer = Roster.peerOf(frame.data)
      expect(Option.isSome(peer)).toBe(true)
      if (Option.isNone(peer)) continue
      const [next, change] = Roster.apply(peers, peer.value)
      peers = next
      if (Option.isSome(change)) seen.push(`${change.value._tag}:${change.value.peer.id}`)
    }
    expect(seen).toEqual(changes)
    expect(sortPeers(Array.from(HashMap.values(peers)))).toEqual(sortPeers(Array.from(model.values())))
  }, { fastCheck: { numRuns: 300 } })

  it("ignores presence without a string id, a string user or a boolean online", () => {
    expect(Roster.peerOf({ id: "a", user: "u" })).toEqual(Option.none())
    expect(Roster.peerOf({ id: "", user: "u", online: true })).toEqual(Option.none())
    expect(Roster.peerOf({ id: "a", user: 5, online: true })).toEqual(Option.none())
    expect(Roster.peerOf(null)).toEqual(Option.none())
    expect(Option.isSome(Roster.peerOf({ id: "a", user: "u", online: false, extra: [1] }))).toBe(true)
  })

  it("finds peers by id or by user|id", () => {
    const peer = { id: "x1", user: "bob", online: true }
    const peers = HashMap.make(["x1", peer])
    expect(Roster.find(peers, "x1")).toEqual(Option.some(peer))
    expect(Roster.find(peers, "bob|x1")).toEqual(Option.some(peer))
    expect(Roster.find(peers, "|x1")).toEqual(Option.some(peer))
    expect(Roster.find(peers, "alice|x1")).toEqual(Option.none())
  })
})

describe("roster over the wire", () => {
  propLive(
    "the client's roster matches the model and the facade agrees with the Effect API",
    [ops],
    ([sequence]) =>
      Effect.gen(function*() {
        const { frames, model, changes } = script(sequence)
        const server = yield* Scripted.make()
        const client = yield* NodeSympleClient.make({ url: server.url, user: "me", reconnection: false })
        const effectSide = yield* Scripted.accept(server, "self-e")
        yield* client.awaitOnline
        const updates = yield* client.roster.subscribe

        const facade = NodeSympleClient.createClient({ url: server.url, user: "me", reconnection: false })
        yield* Effect.addFinalizer(() => Effect.promise(() => facade.close()))
        const facadeEvents: Array<string> = []
        const marker = yield* Deferred.make<void>()
        const record = (tag: string) => (peer: Peer.Peer) => facadeEvents.push(`${tag}:${peer.id}`)
        facade.on("peerConnected", record("Connected"))
        facade.on("peerUpdated", record("Updated"))
        facade.on("peerDisconnected", record("Disconnected"))
        facade.on("message", (m: Facade.ClientEvents["message"]) => {
          if (m.id === "marker") Deferred.doneUnsafe(marker, Exit.void)
        })
        const connecting = facade.connect()
        const facadeSide = yield* Scripted.accept(server, "self-f")
        yield* Effect.promise(() => connecting)
        const effectInbox = yield* client.subscribe

        for (const frame of frames) {
          effectSide.conn.send(frame)
          facadeSide.conn.send(frame)
        }
        const end = { type: "message", id: "marker", from: "x|y" }
        effectSide.conn.send(end)
        facadeSide.conn.send(end)
        yield* PubSub.take(effectInbox).pipe(Effect.repeat({ until: (f) => f.type === "message" }))
        yield* Deferred.await(marker)

        const others = (peers: ReadonlyArray<Peer.Peer>) => sortPeers(peers.filter((p) => !p.id.startsWith("self-")))
        expect(others(yield* client.roster.snapshot)).toEqual(sortPeers(Array.from(model.values())))
        const seen = Array.from(yield* drain(updates)).map((c) => `${c._tag}:${c.peer.id}`)
        expect(seen).toEqual(changes)
        yield* eventually(Effect.sync(() => facadeEvents.length), (n) => n === changes.length + 1, "facade events")
        expect(facadeEvents).toEqual(["Connected:self-f", ...changes])
        expect(others(facade.roster())).toEqual(others(yield* client.roster.snapshot))
      }),
    { fastCheck: { numRuns: 15 }, timeout: 60_000 }
  )
})
