/**
 * The `spread` project (vitest.config.ts): its test files run with every server a cluster of two nodes on one Redis
 * (`SYMPLE_TEST_NODES=2`, see `startServer` in ./server/support.ts). The tests listed here are left out of that run,
 * each for the reason given: their assertions are about one process (a test that met a documented limit of
 * scale-out would be listed the same way). A listed name that no longer names a test of its file fails the file, so
 * the list stays true.
 */
import { afterAll, beforeAll, beforeEach } from "vitest"
import type { RunnerTestFile, RunnerTestSuite } from "vitest"
import { stopRedis } from "./server/support.js"

/** Left out of the spread run, by file and full test name (`describe > test`), with the reason. */
export const excluded: Record<string, Record<string, string>> = {
  "test/server/Server.test.ts": {
    "server > graceful shutdown: shutdown event, close 1001, finalizers ran":
      "the nodes stop one at a time: the peers of the node that stops first are rightly announced offline to the " +
      "peers of the one still running, and a stopped node's counts are its own",
    "server > layer and layerConfig: SYMPLE_* environment variables override options":
      "starts no server through the test helpers: nothing to spread"
  },
  "test/server/Resume.test.ts": {
    "session resume > a resumed session keeps its rate-limit bucket: a blip does not refill it":
      "a session handed over to the other node finds its bucket there within one reconciliation round with Redis " +
      "(RedisRateLimit's syncInterval, see test/redis/RateLimit.test.ts): the frames it sends right behind the " +
      "welcome are taken from a full local bucket until then"
  },
  "test/server/Handshake.test.ts": {
    "handshake > max connections: 503, close 1013, peer count unchanged":
      "maxConnections is a limit of each node's sockets: the second client connects to the other node"
  }
}

const names = (suite: RunnerTestSuite | RunnerTestFile): Array<string> =>
  suite.tasks.flatMap((task) => task.type === "suite" ? names(task) : [task.fullTestName ?? task.name])

beforeAll(({}, file) => {
  const listed = Object.keys(excluded[file.file.name] ?? {})
  const known = new Set(names(file.file))
  const stale = listed.filter((name) => !known.has(name))
  if (stale.length > 0) throw new Error(`test/setup-spread.ts lists tests that do not exist: ${stale.join("; ")}`)
})

beforeEach((context) => {
  const reason = excluded[context.task.file.name]?.[context.task.fullTestName ?? ""]
  if (reason !== undefined) context.skip(`not spread over two nodes: ${reason}`)
})

afterAll(stopRedis)
