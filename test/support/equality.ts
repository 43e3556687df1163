/**
 * Equality testers for the test suites, registered by `test/setup.ts`.
 */
import { expect } from "vitest"

type Tester = Parameters<typeof expect.addEqualityTesters>[0][number]

const isPlainObject = (u: unknown): u is Record<PropertyKey, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * Vitest's strict equality (`toStrictEqual`) tells classes apart by comparing `a.constructor` with `b.constructor`,
 * so two equal plain objects that carry an own `constructor` key holding an object (a legal JSON key, and one that
 * fast-check's strings produce on purpose) compare unequal. This tester compares such plain objects by prototype and
 * own keys instead, with the strictness of the assertion that called it (`toStrictEqual`: same keys, `undefined`
 * values included; `toEqual`: keys with `undefined` values ignored).
 */
export const ownConstructorEquality: Tester = function(a, b, customTesters) {
  if (!isPlainObject(a) || !isPlainObject(b)) return undefined
  if (!Object.hasOwn(a, "constructor") && !Object.hasOwn(b, "constructor")) return undefined
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  const strict = customTesters.some((tester) => tester.name === "typeEquality")
  const keys = (o: Record<PropertyKey, unknown>) =>
    Reflect.ownKeys(o).filter((key) =>
      Object.prototype.propertyIsEnumerable.call(o, key) && (strict || o[key] !== undefined)
    )
  const keysA = keys(a)
  const keysB = keys(b)
  if (keysA.length !== keysB.length || !keysA.every((key) => keysB.includes(key))) return false
  return keysA.every((key) => this.equals(a[key], b[key], customTesters, strict))
}
