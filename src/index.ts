/**
 * Symple for TypeScript, everything for Node in one import. Browser code imports `symple-ts/protocol`,
 * `symple-ts/client` and `symple-ts/call`, which pull in no Node built-ins.
 *
 * @since 0.1.0
 */
export * from "./call/index.js"
export * from "./client/node.js"
export * from "./protocol/index.js"
export * as SympleServer from "./server/index.js"
