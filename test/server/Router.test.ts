import { describe, expect, it } from "@effect/vitest"
import * as Router from "../../src/server/Router.js"
import * as State from "../../src/server/State.js"
import { meter, meteredState, recipientsOf } from "./meter.js"

/** Room names as an attacker picks them: long, alike up to the end, so that comparing two costs the most. */
const longRoom = (owner: string, i: number) => `${"a-long-room-name-".repeat(8)}${owner}-${i}`

const manyRooms = (owner: string, n: number) => Array.from({ length: n }, (_, i) => longRoom(owner, i))

const rooms = 3000

/** `a` and `b` share the room `together` (their last); `c` shares nothing with anyone. 3,001 rooms each. */
const crowded = (): State.State<string> => {
  const add = (state: State.State<string>, id: string, extra: ReadonlyArray<string>) =>
    State.connect(state, { id, user: id, handle: id }, { id, user: id }, [...manyRooms(id, rooms), ...extra])
  return add(add(add(State.empty<string>(), "a", ["together"]), "b", ["together"]), "c", [])
}

/** Resolves `to` from `a` with every session metered; the recipients' ids and the reads it took. */
const resolveMetered = (to: unknown, budget: number) => {
  const m = meter(budget)
  const state = meteredState(crowded(), m)
  const route = Router.resolve(state, State.session(state, "a")!, to)
  return { recipients: recipientsOf(route).map((member) => member.id), reads: m.count }
}

describe("Router.resolve cost with 3,000 rooms per peer", () => {
  // Two reads per room of the smaller side (its array, the other's set), and a few lookups besides.
  const linear = 2 * (rooms + 1) + 4

  it("a direct frame to a peer sharing a room costs O(min(rooms)), not O(rooms_a × rooms_b)", () => {
    const { reads, recipients } = resolveMetered("anyone|b", linear)
    expect(recipients).toEqual(["b"])
    expect(reads).toBeLessThanOrEqual(linear)
  })

  it("a direct frame to a peer sharing no room costs the same and reaches nobody", () => {
    expect(resolveMetered("anyone|c", linear).recipients).toEqual([])
  })

  it("a room array costs one lookup per listed room", () => {
    const to = [...manyRooms("a", rooms), "together", ...manyRooms("c", rooms)]
    const { reads, recipients } = resolveMetered(to, to.length)
    expect(recipients).toEqual(["b"])
    expect(reads).toBeLessThanOrEqual(to.length)
  })

  it("a room name the sender is in costs one lookup", () => {
    const { reads, recipients } = resolveMetered("together", 1)
    expect(recipients).toEqual(["b"])
    expect(reads).toBe(1)
  })

  it("a room name the sender is not in costs O(min(rooms)) per member", () => {
    expect(resolveMetered(longRoom("c", 0), 1 + linear).recipients).toEqual([])
  })
})
