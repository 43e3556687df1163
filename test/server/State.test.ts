import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc, HashMap } from "effect"
import * as Router from "../../src/server/Router.js"
import * as State from "../../src/server/State.js"

type Op =
  | { readonly op: "connect"; readonly id: number; readonly user: number; readonly rooms: ReadonlyArray<number> }
  | { readonly op: "disconnect"; readonly id: number }
  | { readonly op: "join"; readonly id: number; readonly room: number }
  | { readonly op: "leave"; readonly id: number; readonly room: number }

const ids = fc.integer({ min: 0, max: 7 })
const roomIx = fc.integer({ min: 0, max: 5 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("connect" as const),
    id: ids,
    user: fc.integer({ min: 0, max: 3 }),
    rooms: fc.array(roomIx, { maxLength: 4 })
  }),
  fc.record({ op: fc.constant("disconnect" as const), id: ids }),
  fc.record({ op: fc.constant("join" as const), id: ids, room: roomIx }),
  fc.record({ op: fc.constant("leave" as const), id: ids, room: roomIx })
)

const roomName = (n: number) => n === 5 ? "" : `room${n}`
const idName = (n: number) => `id${n}`
const userName = (n: number) => `user${n}`

const apply = (state: State.State<string>, op: Op): State.State<string> => {
  switch (op.op) {
    case "connect": {
      const id = idName(op.id)
      const user = userName(op.user)
      return State.connect(state, { id, user, handle: id }, { id, user }, [user, ...op.rooms.map(roomName)])
    }
    case "disconnect":
      return State.disconnect(state, idName(op.id))
    case "join":
      return State.join(state, idName(op.id), roomName(op.room))
    case "leave":
      return State.leave(state, idName(op.id), roomName(op.room))
  }
}

const checkInvariants = (state: State.State<string>) => {
  for (const [room, members] of state.rooms) {
    expect(members.length).toBeGreaterThan(0)
    expect(room).not.toBe("")
    expect(new Set(members.map((m) => m.id)).size).toBe(members.length)
    for (const member of members) {
      const session = State.session(state, member.id)
      expect(session).toBeDefined()
      expect(session!.rooms).toContain(room)
      expect(session!.member).toBe(member)
    }
  }
  for (const [id, session] of state.sessions) {
    expect(new Set(session.rooms).size).toBe(session.rooms.length)
    for (const room of session.rooms) {
      expect(State.members(state, room).filter((m) => m.id === id)).toHaveLength(1)
    }
    expect(State.sessionsOfUser(state, session.member.user)).toContain(id)
  }
  for (const [user, sessionIds] of state.users) {
    expect(sessionIds.length).toBeGreaterThan(0)
    expect(new Set(sessionIds).size).toBe(sessionIds.length)
    for (const id of sessionIds) expect(State.session(state, id)?.member.user).toBe(user)
  }
}

const isNowhere = (state: State.State<string>, id: string) =>
  State.session(state, id) === undefined &&
  [...HashMap.values(state.rooms)].every((members) => members.every((m) => m.id !== id)) &&
  [...HashMap.values(state.users)].every((sessions) => !sessions.includes(id))

describe("State", () => {
  it.prop("any sequence of transitions keeps the invariants", [fc.array(opArb, { maxLength: 60 })], ([ops]) => {
    let state = State.empty<string>()
    for (const op of ops) {
      state = apply(state, op)
      checkInvariants(state)
      if (op.op === "disconnect") expect(isNowhere(state, idName(op.id))).toBe(true)
    }
  }, { fastCheck: { numRuns: 300 } })

  const history = fc.array(opArb, { maxLength: 30 })
  it.prop("transitions never mutate the state they were given", [history, opArb], ([ops, last]) => {
    const state = ops.reduce(apply, State.empty<string>())
    const before = JSON.stringify([[...state.sessions], [...state.rooms], [...state.users]])
    apply(state, last)
    expect(JSON.stringify([[...state.sessions], [...state.rooms], [...state.users]])).toBe(before)
  }, { fastCheck: { numRuns: 200 } })

  const toArb = fc.oneof(
    fc.constant(undefined),
    roomIx.map(roomName),
    fc.integer({ min: 0, max: 3 }).map(userName),
    ids.map(idName),
    fc.tuple(fc.integer({ min: 0, max: 3 }), ids).map(([u, i]) => `${userName(u)}|${idName(i)}`),
    fc.array(roomIx.map(roomName), { maxLength: 4 }),
    fc.constantFrom(null, 5, {}, "|", "")
  )

  it.prop("routing: distinct recipients, sender only for its own address, everyone shares a room with the sender", [
    fc.array(opArb, { maxLength: 60 }),
    ids,
    toArb
  ], ([ops, senderIx, to]) => {
    const state = ops.reduce(apply, State.empty<string>())
    const sender = State.session(state, idName(senderIx))
    if (sender === undefined) return
    const recipients = Router.recipients(Router.resolve(state, sender, to)).map((m) => m.id)
    expect(new Set(recipients).size).toBe(recipients.length)
    const ownAddress = typeof to === "string" && to.includes("|") && to.slice(to.indexOf("|") + 1) === sender.member.id
    expect(recipients.includes(sender.member.id)).toBe(ownAddress)
    for (const id of recipients) {
      if (id !== sender.member.id) expect(State.shareRoom(sender, State.session(state, id)!)).toBe(true)
    }
    if (to === undefined) {
      const expected = State.neighbours(state, sender.member.id, sender.rooms).map((s) => s.member.id).sort()
      expect([...recipients].sort()).toEqual(expected)
    }
    if (Array.isArray(to)) {
      for (const id of recipients) {
        const rooms = State.session(state, id)!.rooms
        expect(to.some((room) => sender.rooms.includes(room) && rooms.includes(room))).toBe(true)
      }
    }
  }, { fastCheck: { numRuns: 500 } })
})
