/**
 * The wording of validation problems that `error` frames carry. Peers and their logs have seen Effect 3's wording
 * since the first release (`"room": Expected string, actual 42`, `"user": is missing`), so this walker renders an
 * Effect 4 `SchemaIssue.Issue` the way Effect 3's `ArrayFormatter` rendered the equivalent `ParseIssue`: the first
 * problem, with its path and message.
 *
 * Parse with `reportInput: true` so that type mismatches can quote the value (`actual 42`).
 *
 * @since 0.1.0
 * @internal
 */
import { format } from "effect/Formatter"
import type * as AST from "effect/SchemaAST"
import type * as SchemaIssue from "effect/SchemaIssue"

/**
 * One problem: where it is (object keys and array indexes) and what it is.
 *
 * @since 0.1.0
 * @internal
 */
export interface Problem {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/**
 * The first problem of an issue tree, as Effect 3's `ArrayFormatter` listed it first.
 *
 * @since 0.1.0
 * @internal
 */
export const firstProblem = (issue: SchemaIssue.Issue): Problem => walk(issue, [])

const walk = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): Problem => {
  switch (issue._tag) {
    case "Pointer":
      return walk(issue.issue, [...path, ...issue.path])
    case "Composite":
      return walk(issue.issues[0], path)
    case "AnyOf": {
      // Effect 3 tried a discriminated union's matching member only and reported that member's problem, or the tag
      // when no member matched it; any other union it tried member by member, and reported the first member's
      // refusal of the whole value.
      const tag = tagOf(issue.ast)
      if (tag === undefined) return { path, message: typeMessage(issue.ast.types[0] ?? issue.ast, issue) }
      if (issue.issues.length > 0) return walk(issue.issues[0]!, path)
      const input: unknown = Object.hasOwn(issue, "input") ? issue.input : undefined
      if (typeof input !== "object" || input === null) {
        return { path, message: typeMessage(issue.ast, issue) }
      }
      if (!Object.hasOwn(input, tag.key)) return { path: [...path, tag.key], message: "is missing" }
      return {
        path: [...path, tag.key],
        message: `Expected ${tag.literals.map(expected).join(" | ")}, actual ${
          format((input as Record<PropertyKey, unknown>)[tag.key])
        }`
      }
    }
    case "Encoding":
      return walk(issue.issue, path)
    case "Filter": {
      // A filter's own message wins (Effect 3: the refinement's `message` annotation); otherwise the value is
      // reported against what the filter expects.
      const message = filterMessage(issue)
      return { path, message: message ?? `Expected ${checkExpected(issue.filter)}, actual ${actual(issue)}` }
    }
    case "MissingKey":
      return { path, message: "is missing" }
    case "UnexpectedKey":
      return { path, message: "is unexpected" }
    case "InvalidType":
      return { path, message: typeMessage(issue.ast, issue) }
    case "InvalidValue":
      return { path, message: messageOf(issue.annotations) ?? "is invalid" }
    case "Forbidden":
      return { path, message: messageOf(issue.annotations) ?? "is forbidden" }
    case "OneOf":
      return { path, message: typeMessage(issue.ast, issue) }
  }
}

const actual = (issue: SchemaIssue.Issue): string => format(Object.hasOwn(issue, "input") ? issue.input : undefined)

const typeMessage = (ast: AST.AST, issue: SchemaIssue.Issue): string =>
  `Expected ${expected(ast)}, actual ${actual(issue)}`

const messageOf = (annotations: { readonly message?: unknown } | undefined): string | undefined =>
  typeof annotations?.message === "string" ? annotations.message : undefined

const filterMessage = (issue: SchemaIssue.Filter): string | undefined =>
  messageOf(issue.filter.annotations) ??
    (issue.issue._tag === "InvalidValue" ? messageOf(issue.issue.annotations) : undefined)

const checkExpected = (check: AST.Check<unknown>): string => {
  const annotations = check.annotations
  for (const key of ["expected", "description", "title", "identifier"] as const) {
    const value = annotations?.[key]
    if (typeof value === "string") return value
  }
  return check._tag === "FilterGroup" ? check.checks.map(checkExpected).join(" & ") : "<filter>"
}

/**
 * The tag of a discriminated union: a key that every member, a struct, declares as a literal (a frame's `type`),
 * with those literals.
 */
const tagOf = (
  ast: AST.Union
): { readonly key: PropertyKey; readonly literals: ReadonlyArray<AST.AST> } | undefined => {
  const first = ast.types[0]
  if (first === undefined || first._tag !== "Objects") return undefined
  for (const candidate of first.propertySignatures) {
    if (candidate.type._tag !== "Literal") continue
    const literals: Array<AST.AST> = []
    for (const member of ast.types) {
      const ps = member._tag === "Objects"
        ? member.propertySignatures.find((ps) => ps.name === candidate.name && ps.type._tag === "Literal")
        : undefined
      if (ps === undefined) break
      literals.push(ps.type)
    }
    if (literals.length === ast.types.length) return { key: candidate.name, literals }
  }
  return undefined
}

/**
 * What Effect 3 printed for a schema in `Expected …`: its identifier when it has one, else its TypeScript-like form.
 * Checks do not change it (Effect 3 reported a refinement's failed base type against the base).
 */
const expected = (ast: AST.AST): string => {
  const identifier = ast.annotations?.identifier
  if (typeof identifier === "string") return identifier
  switch (ast._tag) {
    case "String":
      return "string"
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "Null":
      return "null"
    case "Undefined":
      return "undefined"
    case "Unknown":
      return "unknown"
    case "Literal":
      return typeof ast.literal === "string" ? JSON.stringify(ast.literal) : String(ast.literal)
    case "Arrays":
      return ast.elements.length === 0 && ast.rest.length === 1
        ? `ReadonlyArray<${expected(ast.rest[0]!)}>`
        : `readonly [${ast.elements.map(expected).join(", ")}]`
    case "Union":
      return ast.types.map(expected).join(" | ")
    case "Suspend":
      return expected(ast.thunk())
    case "Objects":
      return "object"
    default:
      return ast._tag
  }
}
