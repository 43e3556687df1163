/**
 * Symple addresses: `user|id`. Everything after the first `|` is the session id (as the C++ server parses it),
 * so `bob|abc|extra` has the id `abc|extra`, which no live session has.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export interface Address {
  readonly user: string
  readonly id: string
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (user: string, id = ""): Address => ({ user, id })

/**
 * Parses `user|id`, `user`, `|id` or `user|`. Never fails: validity is a separate question.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (text: string): Address => {
  const bar = text.indexOf("|")
  return bar === -1 ? { user: text, id: "" } : { user: text.slice(0, bar), id: text.slice(bar + 1) }
}

/**
 * `user`, `user|id`, or `|id` when there is no user.
 *
 * @since 0.1.0
 * @category conversions
 */
export const format = (address: Address): string => address.id === "" ? address.user : `${address.user}|${address.id}`

/**
 * An address names someone when it has a user or an id.
 *
 * @since 0.1.0
 * @category guards
 */
export const isValid = (address: Address): boolean => address.user !== "" || address.id !== ""

/**
 * A full address has both parts: it names exactly one session.
 *
 * @since 0.1.0
 * @category guards
 */
export const isFull = (address: Address): boolean => address.user !== "" && address.id !== ""

/**
 * @since 0.1.0
 * @category guards
 */
export const hasSeparator = (text: string): boolean => text.includes("|")
