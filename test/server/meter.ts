import { HashMap } from "effect"
import type * as Router from "../../src/server/Router.js"
import type * as State from "../../src/server/State.js"

/**
 * Counts the work that membership tests do on sessions' rooms: every element read from a `rooms` array (what
 * `includes`, `indexOf` and iteration do underneath) and every `roomSet` lookup. A count over `budget` throws, so
 * that an implementation doing quadratic work fails at once rather than after millions of reads. Counting, not
 * timing: the figures do not depend on the machine or on what else runs beside the tests.
 */
export interface Meter {
  count: number
  readonly budget: number
}

export const meter = (budget: number): Meter => ({ count: 0, budget })

const tick = (m: Meter): void => {
  if (++m.count > m.budget) throw new Error(`more than ${m.budget} room reads or lookups`)
}

const isIndex = (key: string | symbol): boolean => typeof key === "string" && /^\d+$/.test(key)

const meteredArray = (rooms: ReadonlyArray<string>, m: Meter): ReadonlyArray<string> =>
  new Proxy(rooms, {
    get: (target, key, receiver) => {
      if (isIndex(key)) tick(m)
      return Reflect.get(target, key, receiver)
    }
  })

const meteredSet = (rooms: ReadonlySet<string>, m: Meter): ReadonlySet<string> =>
  new Proxy(rooms, {
    get: (target, key) => {
      if (key === "has") {
        return (room: string) => {
          tick(m)
          return target.has(room)
        }
      }
      // Set methods only work on the set itself, not on a proxy of it.
      const value: unknown = Reflect.get(target, key, target)
      return typeof value === "function" ? value.bind(target) : value
    }
  })

/** The session with metered rooms (a session without a `roomSet` still has its array metered). */
export const meteredSession = <H>(session: State.Session<H>, m: Meter): State.Session<H> => {
  const roomSet: ReadonlySet<string> | undefined = session.roomSet
  return {
    ...session,
    rooms: meteredArray(session.rooms, m),
    ...(roomSet === undefined ? {} : { roomSet: meteredSet(roomSet, m) })
  }
}

/** The state with every session metered (routing looks targets up in the state). */
export const meteredState = <H>(state: State.State<H>, m: Meter): State.State<H> => ({
  ...state,
  sessions: HashMap.map(state.sessions, (session) => meteredSession(session, m))
})

/** The members a route delivers to: its members less the excluded sender. */
export const recipientsOf = <H>(route: Router.Route<H>): ReadonlyArray<State.Member<H>> =>
  route.exclude === undefined ? route.members : route.members.filter((m) => m.id !== route.exclude)
