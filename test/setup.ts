import { addEqualityTesters } from "@effect/vitest"
import { expect } from "vitest"
import { ownConstructorEquality } from "./support/equality.js"

addEqualityTesters()
expect.addEqualityTesters([ownConstructorEquality])
