import { describe, expect, it } from "@effect/vitest"
import { HashMap } from "effect"
import * as Router from "../../src/server/Router.js"
import * as State from "../../src/server/State.js"
import { fc, prop } from "../support/prop.js"
import { meter, meteredSession, recipientsOf } from "./meter.js"

type Op =
  | { readonly op: "connect"; readonly id: number; readonly user: number; readonly rooms: ReadonlyArray<number> }
  | { readonly op: "disconnect"; readonly id: number }
  | { readonly op: "join"; readonly id: number; readonly room: number }
  | { readonly op: "leave"; readonly id: number; readonly room: number }
  | { readonly op: "detach"; readonly id: number }
  | { readonly op: "resume"; readonly id: number; readonly conn: number }

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
  fc.record({ op: fc.constant("leave" as const), id: ids, room: roomIx }),
  fc.record({ op: fc.constant("detach" as const), id: ids }),
  fc.record({ op: fc.constant("resume" as const), id: ids, conn: fc.integer({ min: 0, max: 3 }) })
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
    case "detach":
      return State.detach(state, idName(op.id), `held:${idName(op.id)}`)
    case "resume":
      return State.resume(state, idName(op.id), `conn${op.conn}:${idName(op.id)}`)
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
    expect(session.member.id).toBe(id)
    // The handle says how the session is reached: held while detached, a connection otherwise.
    expect(session.member.handle.startsWith("held:")).toBe(session.detached)
    expect(new Set(session.rooms).size).toBe(session.rooms.length)
    // The set is the array's rooms, no more and no fewer.
    expect(session.roomSet).toEqual(new Set(session.rooms))
    for (const room of session.rooms) expect(State.inRoom(session, room)).toBe(true)
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
  prop("any sequence of transitions keeps the invariants", [fc.array(opArb, { maxLength: 60 })], ([ops]) => {
    let state = State.empty<string>()
    for (const op of ops) {
      state = apply(state, op)
      checkInvariants(state)
      if (op.op === "disconnect") expect(isNowhere(state, idName(op.id))).toBe(true)
    }
  }, { fastCheck: { numRuns: 300 } })

  const history = fc.array(opArb, { maxLength: 30 })

  /** Membership as ids: what detach and resume must leave exactly as it was. */
  const membership = (state: State.State<string>) =>
    JSON.stringify([
      [...state.sessions].map((
        [id, session]
      ) => [id, session.member.user, session.peer, session.rooms, session.virtual])
        .sort(),
      [...state.rooms].map(([room, members]) => [room, members.map((m) => m.id)]).sort(),
      [...state.users].map(([user, sessions]) => [user, sessions]).sort()
    ])

  prop("detach and resume change how a session is reached, never who is where", [history, ids, fc.boolean()], (
    [ops, ix, detaching]
  ) => {
    const state = ops.reduce(apply, State.empty<string>())
    const id = idName(ix)
    const handle = detaching ? `held:${id}` : `conn9:${id}`
    const next = detaching ? State.detach(state, id, handle) : State.resume(state, id, handle)
    checkInvariants(next)
    expect(membership(next)).toBe(membership(state))
    const before = State.session(state, id)
    if (before === undefined) {
      expect(next).toBe(state)
      return
    }
    const after = State.session(next, id)!
    expect(after.detached).toBe(detaching)
    expect(after.member.handle).toBe(handle)
    for (const room of after.rooms) expect(State.members(next, room).find((m) => m.id === id)).toBe(after.member)
    // Everyone else's records are the very same objects.
    for (const [other, session] of state.sessions) {
      if (other !== id) expect(State.session(next, other)).toBe(session)
    }
    // And back: resuming with the handle it had gives the state it was.
    const back = State.resume(State.detach(state, id, `held:${id}`), id, before.member.handle)
    expect(membership(back)).toBe(membership(state))
    expect(State.session(back, id)!.member.handle).toBe(before.member.handle)
    expect(State.session(back, id)!.detached).toBe(false)
  }, { fastCheck: { numRuns: 300 } })

  prop("a detached session leaves like any other: disconnect removes it everywhere", [history, ids], ([ops, ix]) => {
    const id = idName(ix)
    const state = State.detach(ops.reduce(apply, State.empty<string>()), id, `held:${id}`)
    const next = State.disconnect(state, id)
    checkInvariants(next)
    expect(isNowhere(next, id)).toBe(true)
  }, { fastCheck: { numRuns: 200 } })

  it("virtual sessions are never detached", () => {
    const state = State.connect(
      State.empty<string>(),
      { id: "v", user: "bot", handle: "v" },
      { id: "v", user: "bot" },
      [
        "bot",
        "lobby"
      ],
      true
    )
    expect(State.detach(state, "v", "held:v")).toBe(state)
    expect(State.resume(state, "v", "conn:v")).toBe(state)
    expect(State.session(state, "v")!.detached).toBe(false)
  })
  prop("transitions never mutate the state they were given", [history, opArb], ([ops, last]) => {
    const state = ops.reduce(apply, State.empty<string>())
    // Sets render as `{}` in JSON: their contents are rendered separately.
    const render = () =>
      JSON.stringify([
        [...state.sessions],
        [...state.sessions].map(([id, session]) => [id, [...session.roomSet]]),
        [...state.rooms],
        [...state.users]
      ])
    const before = render()
    apply(state, last)
    expect(render()).toBe(before)
  }, { fastCheck: { numRuns: 200 } })

  prop("shareRoom: true exactly when the sessions have a room in common, either way round", [
    fc.array(opArb, { maxLength: 60 }),
    ids,
    ids
  ], ([ops, aIx, bIx]) => {
    const state = ops.reduce(apply, State.empty<string>())
    const a = State.session(state, idName(aIx))
    const b = State.session(state, idName(bIx))
    if (a === undefined || b === undefined) return
    const expected = a.rooms.some((room) => b.rooms.includes(room))
    expect(State.shareRoom(a, b)).toBe(expected)
    expect(State.shareRoom(b, a)).toBe(expected)
  }, { fastCheck: { numRuns: 300 } })

  const toArb = fc.oneof(
    fc.constant(undefined),
    roomIx.map(roomName),
    fc.integer({ min: 0, max: 3 }).map(userName),
    ids.map(idName),
    fc.tuple(fc.integer({ min: 0, max: 3 }), ids).map(([u, i]) => `${userName(u)}|${idName(i)}`),
    fc.array(roomIx.map(roomName), { maxLength: 4 }),
    fc.constantFrom(null, 5, {}, "|", "")
  )

  prop("routing: distinct recipients, sender only for its own address, everyone shares a room with the sender", [
    fc.array(opArb, { maxLength: 60 }),
    ids,
    toArb
  ], ([ops, senderIx, to]) => {
    const state = ops.reduce(apply, State.empty<string>())
    const sender = State.session(state, idName(senderIx))
    if (sender === undefined) return
    const recipients = recipientsOf(Router.resolve(state, sender, to)).map((m) => m.id)
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

/** Room names as an attacker picks them: long, alike up to the end, so that comparing two costs the most. */
const longRoom = (owner: string, i: number) => `${"a-long-room-name-".repeat(8)}${owner}-${i}`

const manyRooms = (owner: string, n: number) => Array.from({ length: n }, (_, i) => longRoom(owner, i))

const sessionIn = (id: string, rooms: ReadonlyArray<string>): State.Session<string> =>
  State.session(State.connect(State.empty<string>(), { id, user: id, handle: id }, { id, user: id }, rooms), id)!

describe("State.shareRoom cost", () => {
  it("two sessions with 3,000 rooms each and none in common: at most two reads per room of one of them", () => {
    const a = sessionIn("a", manyRooms("a", 3000))
    const b = sessionIn("b", manyRooms("b", 3000))
    const m = meter(2 * 3000)
    expect(State.shareRoom(meteredSession(a, m), meteredSession(b, m))).toBe(false)
    expect(m.count).toBeLessThanOrEqual(2 * 3000)
  })

  it("the room in common comes last: still found, at the same cost", () => {
    const a = sessionIn("a", [...manyRooms("a", 3000), "together"])
    const b = sessionIn("b", [...manyRooms("b", 3000), "together"])
    const m = meter(2 * 3001)
    expect(State.shareRoom(meteredSession(a, m), meteredSession(b, m))).toBe(true)
  })

  it("a session with 3,000 rooms against one with 2: the cost follows the smaller, either way round", () => {
    const big = sessionIn("big", [...manyRooms("big", 3000), "together"])
    const small = sessionIn("small", ["elsewhere", "together"])
    const apart = sessionIn("apart", ["elsewhere", "nowhere"])
    const pairs = [[big, small, true], [small, big, true], [big, apart, false], [apart, big, false]] as const
    for (const [x, y, expected] of pairs) {
      const m = meter(2 * 2)
      expect(State.shareRoom(meteredSession(x, m), meteredSession(y, m))).toBe(expected)
    }
  })

  it("join and leave keep the set in step with the array, and build a new set", () => {
    const state = State.connect(State.empty<string>(), { id: "a", user: "a", handle: "a" }, { id: "a", user: "a" }, [
      "a",
      "one",
      "",
      "one",
      "two"
    ])
    const before = State.session(state, "a")!
    expect(before.rooms).toEqual(["a", "one", "two"])
    expect(before.roomSet).toEqual(new Set(["a", "one", "two"]))
    const joined = State.session(State.join(state, "a", "three"), "a")!
    expect(joined.roomSet).toEqual(new Set(["a", "one", "two", "three"]))
    expect(joined.roomSet).not.toBe(before.roomSet)
    const left = State.session(State.leave(state, "a", "one"), "a")!
    expect(left.rooms).toEqual(["a", "two"])
    expect(left.roomSet).toEqual(new Set(["a", "two"]))
    expect(before.roomSet).toEqual(new Set(["a", "one", "two"]))
  })
})
