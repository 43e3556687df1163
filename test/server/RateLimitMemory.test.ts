import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as RateLimit from "../../src/server/RateLimit.js"
import { expectEffect, isMessage, peer, startServer } from "./support.js"

const sessions = 10_000
const KiB = 1024

/** Sessions that each send 4 frames through a bucket of 3: 3 admitted, 1 refused. */
const sessionsSending = (make: () => RateLimit.Admission): Array<RateLimit.Admission> => {
  const admissions = Array.from({ length: sessions }, make)
  for (const admission of admissions) {
    expect([admission.admit(), admission.admit(), admission.admit(), admission.admit()])
      .toEqual([true, true, true, false])
  }
  return admissions
}

const root = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "../..")

/**
 * Run in a process of its own with `gc` exposed: six rounds of 10,000 sessions on one store (the first warms up),
 * each measured with the sessions alive and after they have ended, heap after a full collection.
 */
const child = `
const RateLimit = await import(process.env.RATE_LIMIT_MODULE)
const { Effect } = await import("effect")
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed }
const store = RateLimit.makeStoreMemory()
const round = () => {
  let admissions = Array.from({ length: ${sessions} }, () => RateLimit.make(3, 10, { store }))
  for (const admission of admissions) for (let i = 0; i < 4; i++) admission.admit()
  const active = heap()
  const keys = store.size()
  for (const admission of admissions) Effect.runSync(admission.release)
  admissions = undefined
  return { active, keys }
}
round()
const start = heap()
const rounds = []
for (let i = 0; i < 5; i++) {
  const { active, keys } = round()
  rounds.push({ active: active - start, keys, ended: heap() - start, keysEnded: store.size() })
}
process.stdout.write(JSON.stringify(rounds))
`

interface Round {
  readonly active: number
  readonly keys: number
  readonly ended: number
  readonly keysEnded: number
}

const measureInChild = Effect.callback<ReadonlyArray<Round>, Error>((resume) => {
  execFile(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", child],
    {
      cwd: root,
      env: { ...process.env, RATE_LIMIT_MODULE: Path.join(root, "src/server/RateLimit.ts") },
      timeout: 60_000
    },
    (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(JSON.parse(stdout) as ReadonlyArray<Round>)
          : Effect.fail(new Error(`${error.message}\n${stderr}`))
      )
  )
})

describe("RateLimit memory", () => {
  it.effect("10,000 sessions on a store: a bucket each once they send, none once they have ended", () =>
    Effect.gen(function*() {
      const store = RateLimit.makeStoreMemory()
      for (let round = 0; round < 3; round++) {
        const admissions = sessionsSending(() => RateLimit.make(3, 10, { store }))
        expect(store.size()).toBe(sessions)
        yield* Effect.forEach(admissions, (admission) => admission.release, { discard: true })
        expect(store.size()).toBe(0)
        expect(admissions.every((admission) => !admission.admit())).toBe(true)
        expect(store.size()).toBe(0)
      }
    }))

  it.effect("10,000 sessions on the default store: it holds what it held before", () =>
    Effect.gen(function*() {
      const before = RateLimit.defaultStore.size()
      const admissions = sessionsSending(() => RateLimit.make(3, 10))
      expect(RateLimit.defaultStore.size()).toBe(before + sessions)
      yield* Effect.forEach(admissions, (admission) => admission.release, { discard: true })
      expect(RateLimit.defaultStore.size()).toBe(before)
    }))

  it.live(
    "heap after a full collection: 10,000 ended sessions leave nothing behind, round after round",
    () =>
      Effect.gen(function*() {
        const rounds = yield* measureInChild
        expect(rounds).toHaveLength(5)
        for (const round of rounds) {
          expect(round.keys).toBe(sessions)
          expect(round.keysEnded).toBe(0)
          // The measure sees the sessions while they live (about 500 bytes each with their admission)...
          expect(round.active).toBeGreaterThan(1024 * KiB)
          // ...and nothing of them once they have ended (Effect's memory store keeps about 150 bytes a session).
          expect(round.ended).toBeLessThan(256 * KiB)
        }
      }),
    90_000
  )
})

describe("the server's rate-limit store", () => {
  it.live("a server keeps its sessions' buckets in the Store it was given, and forgets each when the session ends", () =>
    Effect.gen(function*() {
      const store = RateLimit.makeStoreMemory()
      const before = RateLimit.defaultStore.size()
      const server = yield* startServer({ rateLimit: 5 }).pipe(Effect.provideService(RateLimit.Store, store))
      const alice = yield* peer(server, "alice", { rooms: ["r"] })
      const bob = yield* peer(server, "bob", { rooms: ["r"] })
      alice.send({ type: "message", data: 1 })
      bob.send({ type: "message", data: 2 })
      yield* alice.next(isMessage())
      yield* bob.next(isMessage())
      expect(store.size()).toBe(2)
      expect(RateLimit.defaultStore.size()).toBe(before)
      alice.send({ type: "close" })
      yield* alice.closed
      yield* expectEffect(Effect.sync(() => store.size()), (n) => n === 1)
    }).pipe(Effect.scoped))
})
