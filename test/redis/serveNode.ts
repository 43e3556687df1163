/**
 * A cluster node as a separate process: `symple-ts serve --redis` (the built command, see `../cli/support`).
 */
import { Effect } from "effect"
import { run } from "../cli/support.js"

/**
 * Starts `symple-ts serve --redis <redisUrl>` on a free port (`SYMPLE_REDIS_TTL` set when `ttl` is given): the
 * program, its ws:// and http:// URLs. Killed when the scope closes if it is still running.
 */
export const serveNode = (redisUrl: string, ttl?: number) =>
  Effect.gen(function*() {
    const node = yield* run(
      ["serve", "--no-demo", "--host", "127.0.0.1", "--port", "0", "--redis", redisUrl],
      ttl === undefined ? {} : { SYMPLE_REDIS_TTL: String(ttl) }
    )
    const url = (yield* node.line(/listening on ws:\/\//)).match(/(ws:\/\/\S+)/)![1]!
    return { node, url, http: url.replace(/^ws/, "http") }
  })
