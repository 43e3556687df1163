/**
 * Property tests over fast-check 3 generators.
 *
 * `@effect/vitest` 4's `it.prop` takes only Schemas and `effect/Arbitrary` values, and Effect 4 no longer bundles
 * fast-check (`import { FastCheck } from "effect"` is gone). Properties whose generators are written by hand keep
 * fast-check 3 (a devDependency) through these helpers, with the shapes and options of Effect 3's `it.prop`:
 *
 * - `it.prop(name, [fc…], f, { fastCheck })` → `prop(name, [fc…], f, { fastCheck })`
 * - `it.scopedLive.prop(name, [fc…], f, { fastCheck })` → `propLive(name, [fc…], f, { fastCheck })`
 * - a Schema among fast-check generators (Effect 3's `Arbitrary.make(S)`) → `fromSchema(S)`
 *
 * Properties whose every input is a Schema use `it.prop(name, [S], f, { arbitrary: { runs } })` directly.
 */
import { it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import fc from "fast-check"

export { fc }

/** Generators as Effect 3's `it.prop` took them: a tuple, or a record of named generators. */
export type Arbitraries = ReadonlyArray<fc.Arbitrary<any>> | { readonly [name: string]: fc.Arbitrary<any> }

/** The values a property receives for its generators, in the same shape. */
export type Values<A extends Arbitraries> = { -readonly [K in keyof A]: A[K] extends fc.Arbitrary<infer T> ? T : never }

/** `fastCheck` is passed to `fc.assert` (`numRuns`, `seed`, …); `timeout` is the test's, in milliseconds. */
export interface PropOptions {
  readonly fastCheck?: fc.Parameters<unknown> | undefined
  readonly timeout?: number | undefined
}

const combine = (arbitraries: Arbitraries): fc.Arbitrary<any> =>
  Array.isArray(arbitraries)
    ? fc.tuple(...(arbitraries as ReadonlyArray<fc.Arbitrary<unknown>>))
    : fc.record(arbitraries as { readonly [name: string]: fc.Arbitrary<unknown> })

/**
 * A synchronous property: fails when `property` throws (a failed `expect`) or returns `false`, and fast-check
 * shrinks the counterexample.
 */
export const prop = <const A extends Arbitraries>(
  name: string,
  arbitraries: A,
  property: (values: Values<A>) => boolean | void,
  options?: PropOptions
): void => {
  it(name, () => {
    fc.assert(fc.property(combine(arbitraries), (values) => property(values as Values<A>)), options?.fastCheck)
  }, options?.timeout)
}

/**
 * An Effect property run with live services (real clock), each run in its own `Scope` closed when the run ends:
 * fails when the Effect fails, dies or succeeds with `false`.
 */
export const propLive = <const A extends Arbitraries, E>(
  name: string,
  arbitraries: A,
  property: (values: Values<A>) => Effect.Effect<boolean | void, E, Scope.Scope>,
  options?: PropOptions
): void => {
  it(name, async () => {
    await fc.assert(
      fc.asyncProperty(
        combine(arbitraries),
        (values) => Effect.runPromise(Effect.scoped(property(values as Values<A>)))
      ),
      options?.fastCheck
    )
  }, options?.timeout)
}

/**
 * A fast-check generator of a Schema's values, drawn by `effect/Arbitrary` (Effect 4's Schema-derived generation)
 * from a seed and a size (0 to `maxSize`, default 10 like `it.prop`) that fast-check picks. It does not shrink: a
 * counterexample is reported as drawn.
 */
export const fromSchema = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  options?: { readonly maxSize?: number | undefined }
): fc.Arbitrary<S["Type"]> => {
  const arbitrary = Arbitrary.schema(schema)
  return fc.tuple(fc.noBias(fc.integer()), fc.noBias(fc.integer({ min: 0, max: options?.maxSize ?? 10 })))
    .noShrink()
    .map(([seed, size]) => {
      const [value] = Effect.runSync(Arbitrary.sampleEffect(arbitrary, { count: 1, seed, size }))
      return value as S["Type"]
    })
}
