/**
 * Measures frame decoding on the recorded wire frames (`test/fixtures/wire-frames.json`): the AST-compiled validator
 * of `Frame.ts` (`Frame.decodeParsed`) against Effect's own Schema decoding of the same parsed values, per frame.
 *
 *   npx tsx scripts/measure-frame-decode.ts      # Schema interpreter (Effect's default)
 *   npx tsx --import effect/schema/SchemaJITCompiler/enable scripts/measure-frame-decode.ts
 *                                                # with Effect's Schema JIT compiler enabled globally
 *
 * Prints µs per frame (best of several rounds) and how many routed frames each path gives back byte for byte.
 */
import { Result, Schema } from "effect"
import { readFileSync } from "node:fs"
import { Frame } from "../src/protocol/index.js"

const jit = process.execArgv.some((arg) => arg.includes("SchemaJITCompiler"))

const fixtures = JSON.parse(readFileSync(new URL("../test/fixtures/wire-frames.json", import.meta.url), "utf8")) as {
  readonly accepted: ReadonlyArray<{ readonly raw: string }>
}
const raws = fixtures.accepted.map((f) => f.raw)
const parsed = raws.map((raw) => JSON.parse(raw) as { readonly type: Frame.Type })
const routedIndexes = parsed.flatMap((u, i) =>
  u.type === "message" || u.type === "presence" || u.type === "command" || u.type === "event" ? [i] : []
)
const routedRaws = routedIndexes.map((i) => raws[i]!)
const routedParsed = routedIndexes.map((i) => parsed[i]!)

const schemas = Frame.schemas
const options = { errors: "first" } as const
const byType = Object.fromEntries(
  Object.entries(schemas).map((
    [type, schema]
  ) => [type, Schema.decodeUnknownResult(schema as Schema.Codec<Frame.Frame>, options)])
) as Record<Frame.Type, (u: unknown) => Result.Result<Frame.Frame, unknown>>
const union = Schema.decodeUnknownResult(Frame.Frame, options)

/** Best of `rounds` timings of `f` over every input, in µs per input. */
const measure = <A>(inputs: ReadonlyArray<A>, f: (a: A) => unknown, rounds = 7, minMillis = 300): number => {
  let sink = 0
  const run = (n: number) => {
    const start = process.hrtime.bigint()
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < inputs.length; i++) if (f(inputs[i]!) !== undefined) sink++
    }
    return Number(process.hrtime.bigint() - start) / 1e3 / (n * inputs.length)
  }
  let n = 1
  while (run(n) * n * inputs.length < minMillis * 1e3) n *= 2 // warm up and size the rounds
  let best = Number.POSITIVE_INFINITY
  for (let r = 0; r < rounds; r++) best = Math.min(best, run(n))
  if (sink < 0) console.log(sink)
  return best
}

const check = <A>(label: string, inputs: ReadonlyArray<A>, f: (a: A) => Result.Result<unknown, unknown>) => {
  for (const input of inputs) if (Result.isFailure(f(input))) throw new Error(`${label} refused a recorded frame`)
}
check("Frame.decode", raws, Frame.decode)
check("Schema (per type)", parsed, (u) => byType[u.type](u))
check("Schema (union)", parsed, union)

/** Routed frames are forwarded as received: does re-encoding the decoded value give back the very bytes? */
const sameBytes = (decode: (u: { readonly type: Frame.Type }) => Result.Result<unknown, unknown>) =>
  routedParsed.filter((u, i) => JSON.stringify(Result.getOrThrow(decode(u))) === routedRaws[i]).length

const rows: Array<readonly [string, number, string]> = [
  ["all recorded frames: Frame.decode (text → frame)", measure(raws, Frame.decode), `${raws.length} frames`],
  ["all recorded frames: JSON.parse + Schema union decode", measure(raws, (raw) => union(JSON.parse(raw))), ""],
  ["all recorded frames: Schema union decode (parsed)", measure(parsed, union), ""],
  ["all recorded frames: Schema per-type decode (parsed)", measure(parsed, (u) => byType[u.type](u)), ""],
  [
    "routed frames: compiled validator (Frame.decodeParsed)",
    measure(routedParsed, Frame.decodeParsed),
    `${routedParsed.length} frames, ${sameBytes(Frame.decodeParsed)} byte-identical`
  ],
  [
    "routed frames: Schema per-type decode (parsed)",
    measure(routedParsed, (u) => byType[u.type](u)),
    `${sameBytes((u) => byType[u.type](u))} byte-identical`
  ],
  ["routed frames: Schema union decode (parsed)", measure(routedParsed, union), `${sameBytes(union)} byte-identical`]
]
console.log(`node ${process.version}, effect Schema ${jit ? "with the JIT compiler" : "interpreter"}`)
for (const [label, micros, note] of rows) {
  console.log(`${micros.toFixed(3).padStart(8)} µs/frame  ${label}${note ? `  (${note})` : ""}`)
}
