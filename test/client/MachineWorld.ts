/**
 * A model of the world around the client's transition machine, for property tests: it carries out the machine's
 * commands the way the interpreter does (a socket that is opening, open, broken or closing; timers; the
 * reconnection schedule; answers to API calls), records what the machine made visible, and checks every step.
 */
import { Duration, HashMap, Option } from "effect"
import { expect } from "vitest"
import * as ClientConfig from "../../src/client/ClientConfig.js"
import type { ClientState } from "../../src/client/ClientState.js"
import { Command, Input, type State, timerKey } from "../../src/client/internal/Machine.js"
import * as Machine from "../../src/client/internal/Machine.js"
import { Payload } from "../../src/client/internal/Outbox.js"
import { transition } from "../../src/client/internal/Transition.js"
import type * as Roster from "../../src/client/Roster.js"
import type * as Frame from "../../src/protocol/Frame.js"
import type * as Peer from "../../src/protocol/Peer.js"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

export const config = ClientConfig.resolve({
  user: "me",
  rooms: ["lobby"],
  maxFrameSize: 2048,
  rosterGracePeriod: 1000,
  requestTimeout: 500,
  createPresence: () => ({ mood: "fine" })
})
export const context: Machine.Context = { config }

type SocketStatus = "opening" | "open" | "broken" | "closing"

export interface TicketRecord {
  readonly kind: "send" | "request" | "room" | "close"
  answers: number
  exit: unknown
  withdrawn: boolean
  /** Successful writes of this ticket's frame. */
  written: number
  frame: Frame.Frame | undefined
}

export interface World {
  state: State
  socket: { readonly conn: number; status: SocketStatus } | undefined
  readonly timers: Map<string, Machine.Timer>
  backoff: boolean
  stopped: boolean
  readonly tickets: Map<number, TicketRecord>
  lastTicket: number
  /** Tickets in the order their frames were written. */
  readonly deliveries: Array<number>
  /** Frames written on each connection (fire-and-forget and delivered). */
  readonly wire: Map<number, Array<Frame.Frame>>
  readonly shown: Array<ClientState>
  readonly changes: Array<Roster.Change>
  /** The roster rebuilt from the changes alone. */
  replay: Map<string, Peer.Peer>
  peers: Roster.Peers
  pending: ReadonlyArray<string>
  readonly seen: Set<string>
}

export const makeWorld = (): World => ({
  state: Machine.initial(context),
  socket: undefined,
  timers: new Map(),
  backoff: false,
  stopped: false,
  tickets: new Map(),
  lastTicket: 0,
  deliveries: [],
  wire: new Map(),
  shown: [],
  changes: [],
  replay: new Map(),
  peers: HashMap.empty(),
  pending: [],
  seen: new Set()
})

const writeOn = (world: World, conn: number, frame: Frame.Frame) => {
  const frames = world.wire.get(conn) ?? []
  frames.push(frame)
  world.wire.set(conn, frames)
}

const writable = (world: World, conn: number) => world.socket?.conn === conn && world.socket.status === "open"

/** The states the client may show after each state (the first state shown is `Closed`). */
const successors: Record<ClientState["_tag"], ReadonlyArray<ClientState["_tag"]>> = {
  Closed: ["Connecting", "Closed", "Error"],
  Connecting: ["Authenticating", "Error", "Closed"],
  Authenticating: ["Online", "Error", "Closed"],
  Online: ["Closed", "Error"],
  Error: ["Connecting", "Closed", "Error"]
}

const checkShown = (world: World, next: ClientState) => {
  const previous = world.shown.at(-1)?._tag ?? "Closed"
  expect(successors[previous]).toContain(next._tag)
  if (world.stopped) expect(next._tag).toBe("Closed")
}

const applyChange = (world: World, change: Roster.Change) => {
  switch (change._tag) {
    case "Connected":
      expect(world.replay.has(change.peer.id)).toBe(false)
      world.replay.set(change.peer.id, change.peer)
      break
    case "Updated":
      expect(world.replay.has(change.previous.id)).toBe(true)
      if (change.previous.id !== change.peer.id) expect(world.replay.has(change.peer.id)).toBe(false)
      world.replay.delete(change.previous.id)
      world.replay.set(change.peer.id, change.peer)
      break
    case "Disconnected":
      expect(world.replay.get(change.peer.id)).toEqual(change.peer)
      world.replay.delete(change.peer.id)
      break
  }
}

/** Carries out one command; returns the input it reports back at once, if any (a `Deliver`'s outcome). */
const perform = (world: World, command: Command): Input | undefined => {
  switch (command._tag) {
    case "Open":
      expect(world.socket).toBeUndefined()
      world.socket = { conn: command.conn, status: "opening" }
      return undefined
    case "Write":
      if (writable(world, command.conn)) writeOn(world, command.conn, command.frame)
      return undefined
    case "Deliver": {
      if (!writable(world, command.conn)) return Input.Written({ ticket: command.ticket, outcome: "refused" })
      writeOn(world, command.conn, command.frame)
      world.deliveries.push(command.ticket)
      const record = world.tickets.get(command.ticket)!
      record.written += 1
      record.frame = command.frame
      return Input.Written({ ticket: command.ticket, outcome: "written" })
    }
    case "CloseSocket":
      if (world.socket?.conn === command.conn && world.socket.status !== "broken") world.socket.status = "closing"
      return undefined
    case "StartTimer":
      world.timers.set(timerKey(command.timer), command.timer)
      return undefined
    case "CancelTimer":
      world.timers.delete(timerKey(command.timer))
      return undefined
    case "Backoff":
      expect(world.backoff).toBe(false)
      world.backoff = true
      return undefined
    case "Answer": {
      const record = world.tickets.get(command.ticket)!
      record.answers += 1
      record.exit = command.exit
      return undefined
    }
    case "ShowState":
      checkShown(world, command.state)
      world.shown.push(command.state)
      world.seen.add(command.state._tag)
      return undefined
    case "ShowRoster":
      for (const change of command.changes) {
        applyChange(world, change)
        world.changes.push(change)
      }
      expect(new Map(world.replay)).toEqual(new Map(command.peers))
      for (const id of command.pending) expect(HashMap.has(command.peers, id)).toBe(true)
      world.peers = command.peers
      world.pending = command.pending
      return undefined
    case "Stop":
      world.stopped = true
      world.timers.clear()
      world.backoff = false
      world.socket = undefined
      return undefined
    case "Progress":
    case "RunRoute":
    case "ShowRooms":
    case "Announce":
    case "Inbound":
      return undefined
  }
}

/** Feeds one input, then the outcomes of its writes, checking the machine's invariants after each step. */
export const feed = (world: World, input: Input) => {
  const queue: Array<Input> = [input]
  while (queue.length > 0) {
    const next = queue.shift()!
    const step = transition(context, world.state, next)
    world.state = step.state
    for (const command of step.commands) {
      const outcome = perform(world, command)
      if (outcome !== undefined) queue.push(outcome)
    }
    world.seen.add(world.state.phase._tag)
  }
  expect(Machine.violation(world.state)).toBeUndefined()
}

// --- inputs a test can make ---------------------------------------------------------------------------------------

const newTicket = (world: World, kind: TicketRecord["kind"]) => {
  const ticket = ++world.lastTicket
  world.tickets.set(ticket, { kind, answers: 0, exit: undefined, withdrawn: false, written: 0, frame: undefined })
  return ticket
}

export const send = (world: World, variant: number) => {
  const ticket = newTicket(world, "send")
  const payload = variant % 3 === 0
    ? Payload.Routed({ frame: { type: "message", id: `m${ticket}`, data: ticket } })
    : variant % 3 === 1
    ? Payload.Respond({
      frame: { type: "command", id: `c${ticket}`, node: "a:b", from: "u1|p1" },
      reply: { status: 200 }
    })
    : Payload.Presence({ to: undefined, probe: false })
  feed(world, Input.Send({ ticket, payload }))
  return ticket
}

export const request = (world: World) => {
  const ticket = newTicket(world, "request")
  feed(
    world,
    Input.Request({
      ticket,
      frame: { type: "command", id: `r${ticket}`, node: "x:y", to: "u0|p0" },
      timeout: Duration.millis(500)
    })
  )
  return ticket
}

export const room = (world: World, change: "join" | "leave", name: string) =>
  feed(world, Input.Room({ ticket: newTicket(world, "room"), change, room: name }))

export const close = (world: World) => feed(world, Input.Close({ ticket: newTicket(world, "close") }))

export const withdraw = (world: World, pick: number) => {
  const open = Array.from(world.tickets).filter(([, r]) => r.answers === 0 && !r.withdrawn && r.kind !== "close")
  if (open.length === 0) return
  const [ticket, record] = open[pick % open.length]!
  record.withdrawn = true
  feed(world, Input.Withdraw({ ticket }))
}

export const receive = (world: World, frame: Json, conn = world.socket?.conn) => {
  if (conn === undefined) return
  feed(world, Input.Received({ conn, data: JSON.stringify(frame) }))
}

/** The socket reports that it closed (it broke, or it was closing). */
export const socketClosed = (world: World, code: number | undefined) => {
  const socket = world.socket
  if (socket === undefined) return
  world.socket = undefined
  feed(world, Input.Closed({ conn: socket.conn, code, cause: undefined, overLimit: false }))
}

export const opened = (world: World) => {
  const socket = world.socket
  if (socket?.status !== "opening") return
  socket.status = "open"
  feed(world, Input.Opened({ conn: socket.conn }))
}

export const fire = (world: World, pick: number) => {
  const timers = Array.from(world.timers.values())
  if (timers.length === 0) return
  const timer = timers[pick % timers.length]!
  world.timers.delete(timerKey(timer))
  feed(world, Input.Timeout({ timer }))
}

export const backoffEnds = (world: World, giveUp: boolean) => {
  if (!world.backoff) return
  world.backoff = false
  feed(world, giveUp ? Input.GiveUp() : Input.Retry())
}

export const peerRecord = (n: number, online: boolean, mood = 0): Json => ({
  id: `p${n}`,
  user: `u${n % 3}`,
  name: `User ${n % 3}`,
  online,
  type: "Peer",
  mood: `m${mood}`
})

export const presence = (n: number, online: boolean, mood = 0): Json => {
  const data = peerRecord(n, online, mood) as { readonly user: string; readonly id: string }
  return { type: "presence", from: `${data.user}|${data.id}`, data: data as Json }
}

export const welcome = (
  id: string,
  extension: { readonly resume?: string; readonly resumed?: boolean } = {}
): Json => ({
  type: "welcome",
  protocol: "symple/4",
  status: 200,
  peer: { id, user: "me", name: "me", online: true, type: "Peer" },
  rooms: ["me", "lobby"],
  ...extension
})

/** The `auth` frames written so far, in order. */
export const auths = (world: World) =>
  Array.from(world.wire.values()).flatMap((frames) => frames.filter((f) => f.type === "auth"))

/** What the roster holds now, by id. */
export const rosterOf = (world: World) => new Map(world.peers)

export const self = (world: World): Option.Option<Peer.Peer> =>
  world.state.phase._tag === "Online" ? Option.some(world.state.phase.self) : Option.none()
