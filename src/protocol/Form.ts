/**
 * Forms carried in `command.form`: a tree of pages, sections and fields, as the C++ `Form` and the old JavaScript
 * form plugin exchange them.
 *
 * A form is plain JSON data. Builders write what the C++ reader expects (`values` always arrays of strings,
 * booleans as `"1"`/`"0"`, `id` and `label` on every element, `action` and `partial` on the root), and readers accept
 * what any peer sends, including element types and keys this module does not know, which survive decoding and
 * encoding untouched.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Frame from "./Frame.js"
import { Json, Key } from "./Json.js"
import * as Message from "./Message.js"

const optional = <S extends Schema.Top>(schema: S) => Schema.optionalKey(schema)

/**
 * The field types a C++ peer accepts when building a form.
 *
 * @since 0.1.0
 * @category constants
 */
export const fieldTypes = [
  "text",
  "text-multi",
  "list",
  "list-multi",
  "boolean",
  "number",
  "media",
  "date",
  "time",
  "datetime",
  "horizontal-set",
  "custom"
] as const

/**
 * @since 0.1.0
 * @category schemas
 */
export const FieldType = Schema.Literals(fieldTypes).annotate({ identifier: "FieldType" })

/**
 * @since 0.1.0
 * @category models
 */
export type FieldType = typeof FieldType.Type

/**
 * `form`: the processor asks for completion; `submit`: the submitter sends data; `result`: the processor returns
 * data; `cancel`: the exchange is abandoned.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Action = Schema.Literals(["form", "submit", "result", "cancel"]).annotate({ identifier: "FormAction" })

/**
 * @since 0.1.0
 * @category models
 */
export type Action = typeof Action.Type

/**
 * One node of the tree: a page, a section or a field. Unknown keys are kept.
 *
 * @since 0.1.0
 * @category models
 */
export interface Element {
  readonly type: string
  readonly id?: string
  readonly label?: string
  readonly hint?: string
  /** Present on any element makes the whole form invalid. */
  readonly error?: string
  /** The processor wants an update whenever this element changes (auto-complete, for example). */
  readonly live?: boolean
  /** Always strings: booleans are `"1"`/`"0"`, numbers are stringified. */
  readonly values?: ReadonlyArray<string>
  /** Option key to its label. */
  readonly options?: { readonly [key: string]: string }
  readonly elements?: ReadonlyArray<Element>
  readonly [key: string]: Json
}

/**
 * The root of the tree, carried as `command.form`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Form extends Element {
  readonly type: "form"
  readonly action?: Action
  /** Only the changed elements are present; receivers merge by `id` (see `merge`). */
  readonly partial?: boolean
}

const elementFields = {
  id: optional(Schema.String),
  label: optional(Schema.String),
  hint: optional(Schema.String),
  error: optional(Schema.String),
  live: optional(Schema.Boolean),
  values: optional(Schema.Array(Schema.String)),
  options: optional(Schema.Record(Key, Schema.String)),
  elements: optional(Schema.Array(Schema.suspend((): Schema.Codec<Element> => Element)))
}

const Extra = Schema.Record(Key, Json)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Element: Schema.Codec<Element> = Schema.StructWithRest(
  Schema.Struct({ type: Schema.String, ...elementFields }),
  [Extra]
).annotate({ identifier: "FormElement" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Form: Schema.Codec<Form> = Schema.StructWithRest(
  Schema.Struct({
    type: Schema.Literal("form"),
    action: optional(Action),
    partial: optional(Schema.Boolean),
    ...elementFields
  }),
  [Extra]
).annotate({ identifier: "Form" })

// ---------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------

/**
 * What a field's value may be given as; it is written as a string.
 *
 * @since 0.1.0
 * @category models
 */
export type Value = string | number | boolean

/**
 * The wire string of a value: booleans are `"1"`/`"0"`, numbers are stringified.
 *
 * @since 0.1.0
 * @category conversions
 */
export const valueString = (value: Value): string =>
  typeof value === "boolean" ? (value ? "1" : "0") : typeof value === "number" ? String(value) : value

/**
 * Optional attributes of any element.
 *
 * @since 0.1.0
 * @category models
 */
export interface ElementOptions {
  readonly hint?: string | undefined
  readonly error?: string | undefined
  readonly live?: boolean | undefined
}

/**
 * Optional attributes of a field.
 *
 * @since 0.1.0
 * @category models
 */
export interface FieldOptions extends ElementOptions {
  readonly values?: ReadonlyArray<Value> | undefined
  /** Option key to its label. */
  readonly options?: { readonly [key: string]: string } | undefined
}

const attributes = (options: FieldOptions): Partial<Element> => {
  const out: Record<string, Json> = {}
  if (options.hint !== undefined) out.hint = options.hint
  if (options.error !== undefined) out.error = options.error
  if (options.live !== undefined) out.live = options.live
  if (options.options !== undefined) out.options = { ...options.options }
  if (options.values !== undefined) out.values = options.values.map(valueString)
  return out as Partial<Element>
}

/**
 * A form. `action` defaults to `form` and `partial` to `false`; both are always written, because the C++ reader
 * of `partial` fails on a form without it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  elements: ReadonlyArray<Element>,
  options: ElementOptions & {
    readonly id?: string | undefined
    readonly label?: string | undefined
    readonly action?: Action | undefined
    readonly partial?: boolean | undefined
  } = {}
): Form => {
  const form: Record<string, Json> = {
    type: "form",
    action: options.action ?? "form",
    partial: options.partial ?? false
  }
  if (options.id !== undefined) form.id = options.id
  if (options.label !== undefined) form.label = options.label
  return { ...form, ...attributes(options), elements } as Form
}

const container =
  (type: string) =>
  (id: string, label: string, elements: ReadonlyArray<Element>, options: ElementOptions = {}): Element => ({
    type,
    id,
    label,
    ...attributes(options),
    elements
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const page: (id: string, label: string, elements: ReadonlyArray<Element>, options?: ElementOptions) => Element =
  container("page")

/**
 * @since 0.1.0
 * @category constructors
 */
export const section: (
  id: string,
  label: string,
  elements: ReadonlyArray<Element>,
  options?: ElementOptions
) => Element = container("section")

/**
 * @since 0.1.0
 * @category constructors
 */
export const field = (type: FieldType, id: string, label: string, options: FieldOptions = {}): Element => ({
  type,
  id,
  label,
  ...attributes(options)
})

/**
 * A single-line text field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const text = (id: string, label: string, value?: string, options: FieldOptions = {}): Element =>
  field("text", id, label, value === undefined ? options : { ...options, values: [value] })

/**
 * A yes/no field; its value is `"1"` or `"0"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const boolean = (id: string, label: string, value?: boolean, options: FieldOptions = {}): Element =>
  field("boolean", id, label, value === undefined ? options : { ...options, values: [value] })

/**
 * @since 0.1.0
 * @category constructors
 */
export const number = (id: string, label: string, value?: number, options: FieldOptions = {}): Element =>
  field("number", id, label, value === undefined ? options : { ...options, values: [value] })

/**
 * A choice among `choices` (key to label); `selected` are keys.
 *
 * @since 0.1.0
 * @category constructors
 */
export const list = (
  id: string,
  label: string,
  choices: { readonly [key: string]: string },
  selected: ReadonlyArray<string> = [],
  options: FieldOptions & { readonly multiple?: boolean | undefined } = {}
): Element =>
  field(options.multiple === true ? "list-multi" : "list", id, label, {
    ...options,
    options: choices,
    values: selected
  })

// ---------------------------------------------------------------------------------------------------------------
// readers
// ---------------------------------------------------------------------------------------------------------------

/**
 * Every element below `root`, depth first, in document order.
 *
 * @since 0.1.0
 * @category getters
 */
export const descendants = (root: Element): ReadonlyArray<Element> => {
  const out: Array<Element> = []
  const visit = (element: Element) => {
    for (const child of element.elements ?? []) {
      out.push(child)
      visit(child)
    }
  }
  visit(root)
  return out
}

/**
 * The fields below `root`: every element that is not a page or a section.
 *
 * @since 0.1.0
 * @category getters
 */
export const fields = (root: Element): ReadonlyArray<Element> =>
  descendants(root).filter((element) => element.type !== "page" && element.type !== "section")

const idMatches = (id: string, partial: boolean) => (element: Element): boolean =>
  element.id !== undefined && (partial ? element.id.includes(id) : element.id === id)

/**
 * The first element below `root` (depth first) whose `id` is `id`, or, with `partial`, contains it (as the C++
 * reader does).
 *
 * @since 0.1.0
 * @category getters
 */
export const getField = (
  root: Element,
  id: string,
  options: { readonly partial?: boolean | undefined } = {}
): Option.Option<Element> => Option.fromNullishOr(descendants(root).find(idMatches(id, options.partial ?? false)))

/**
 * @since 0.1.0
 * @category guards
 */
export const hasField = (
  root: Element,
  id: string,
  options: { readonly partial?: boolean | undefined } = {}
): boolean => Option.isSome(getField(root, id, options))

/**
 * @since 0.1.0
 * @category getters
 */
export const values = (element: Element): ReadonlyArray<string> => element.values ?? []

/**
 * The first value.
 *
 * @since 0.1.0
 * @category getters
 */
export const value = (element: Element): Option.Option<string> => Option.fromNullishOr(element.values?.[0])

/**
 * Whether a boolean string means true: `"1"`, `"true"` or `"on"`.
 *
 * @since 0.1.0
 * @category conversions
 */
export const isTrue = (text: string): boolean => text === "1" || text === "true" || text === "on"

/**
 * The first value read as a boolean (`"1"`, `"true"`, `"on"`); `false` when there is none.
 *
 * @since 0.1.0
 * @category getters
 */
export const boolValue = (element: Element): boolean =>
  Option.match(value(element), { onNone: () => false, onSome: isTrue })

/**
 * The first value read as a finite number.
 *
 * @since 0.1.0
 * @category getters
 */
export const numberValue = (element: Element): Option.Option<number> =>
  Option.flatMap(value(element), (text) => {
    const n = text.trim() === "" ? Number.NaN : Number(text)
    return Number.isFinite(n) ? Option.some(n) : Option.none()
  })

/**
 * A form's action: `form` when absent.
 *
 * @since 0.1.0
 * @category getters
 */
export const action = (form: Form): Action => form.action ?? "form"

/**
 * @since 0.1.0
 * @category guards
 */
export const isPartial = (form: Form): boolean => form.partial === true

/**
 * Whether `root` or any element below it carries an `error`.
 *
 * @since 0.1.0
 * @category guards
 */
export const hasErrors = (root: Element): boolean =>
  root.error !== undefined || descendants(root).some((element) => element.error !== undefined)

/**
 * A form is valid when no element carries an `error`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isValid = (form: Form): boolean => !hasErrors(form)

/**
 * The `(id, values)` pairs of every field that has an id, in document order.
 *
 * @since 0.1.0
 * @category getters
 */
export const entries = (root: Element): ReadonlyArray<readonly [string, ReadonlyArray<string>]> =>
  fields(root).flatMap((element) => element.id === undefined ? [] : [[element.id, values(element)] as const])

// ---------------------------------------------------------------------------------------------------------------
// combinators
// ---------------------------------------------------------------------------------------------------------------

const mapTree = <E extends Element>(root: E, f: (element: Element) => Element): E => {
  const go = (element: Element): Element => {
    const mapped = f(element)
    return mapped.elements === undefined ? mapped : { ...mapped, elements: mapped.elements.map(go) }
  }
  const top = f(root) as E
  return top.elements === undefined ? top : { ...top, elements: top.elements.map(go) }
}

const without = (element: Element, key: string): Element => {
  if (!Object.hasOwn(element, key)) return element
  const out: Record<string, Json> = { ...element }
  delete out[key]
  return out as Element
}

/**
 * Replaces the values of every element with this `id`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const setValues = <E extends Element>(root: E, id: string, newValues: ReadonlyArray<Value>): E =>
  mapTree(root, (element) => element.id === id ? { ...element, values: newValues.map(valueString) } : element)

/**
 * @since 0.1.0
 * @category combinators
 */
export const setValue = <E extends Element>(root: E, id: string, newValue: Value): E => setValues(root, id, [newValue])

/**
 * Sets (or, with `undefined`, removes) the error of every element with this `id`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const setError = <E extends Element>(root: E, id: string, error: string | undefined): E =>
  mapTree(
    root,
    (element) => element.id !== id ? element : error === undefined ? without(element, "error") : { ...element, error }
  )

/**
 * Removes every `error` from the tree.
 *
 * @since 0.1.0
 * @category combinators
 */
export const clearErrors = <E extends Element>(root: E): E => mapTree(root, (element) => without(element, "error"))

/**
 * The form with another action. Submitting clears the errors, as the old JavaScript plugin did.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withAction = (form: Form, newAction: Action): Form =>
  newAction === "submit" ? { ...clearErrors(form), action: newAction } : { ...form, action: newAction }

const mergeElement = (base: Element, update: Element): Element =>
  update.elements === undefined || base.elements === undefined ? { ...base, ...update } : {
    ...base,
    ...update,
    elements: mergeElements(base.elements, update.elements)
  }

const replaceDeep = (
  elements: ReadonlyArray<Element>,
  update: Element
): Option.Option<ReadonlyArray<Element>> => {
  for (let i = 0; i < elements.length; i++) {
    const element = elements[i]!
    if (element.id === update.id) {
      const next = elements.slice()
      next[i] = mergeElement(element, update)
      return Option.some(next)
    }
    if (element.elements !== undefined) {
      const inner = replaceDeep(element.elements, update)
      if (Option.isSome(inner)) {
        const next = elements.slice()
        next[i] = { ...element, elements: inner.value }
        return inner.pipe(Option.as(next))
      }
    }
  }
  return Option.none()
}

const mergeElements = (base: ReadonlyArray<Element>, updates: ReadonlyArray<Element>): ReadonlyArray<Element> =>
  updates.reduce<ReadonlyArray<Element>>(
    (acc, update) =>
      update.id === undefined
        ? [...acc, update]
        : Option.getOrElse(replaceDeep(acc, update), () => [...acc, update]),
    base
  )

/**
 * Applies a partial form to the full one it updates: each element of `update` replaces the attributes of the
 * element with the same `id` (at the same level, else anywhere below), and its children are merged the same way;
 * elements without a match are appended. The result keeps `base`'s `partial` flag.
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (base: Form, update: Form): Form => {
  const merged = mergeElement(base, update) as Form
  return base.partial === undefined ? without(merged, "partial") as Form : { ...merged, partial: base.partial }
}

// ---------------------------------------------------------------------------------------------------------------
// codec
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category decoding
 */
export const decode: (u: unknown) => Result.Result<Form, Schema.SchemaError> = Schema.decodeUnknownResult(Form)

/**
 * The form a command carries, if it carries a well-formed one.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromCommand = (command: Frame.Command): Option.Option<Form> =>
  command.form === undefined ? Option.none() : Result.getSuccess(decode(command.form))

/**
 * A command request carrying `form` (fresh `id`, `action` `execute` unless given).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toCommand = (
  node: string,
  form: Form,
  fields: Omit<Frame.Command, "type" | "node" | "form"> = {}
): Frame.Command => Message.command(node, { ...fields, form })
