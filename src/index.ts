/**
 * Symple for TypeScript.
 *
 * @since 0.1.0
 */
export * from "./protocol/index.js"
