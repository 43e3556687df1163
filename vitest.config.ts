import { defineConfig } from "vitest/config"

/**
 * The suites that run a second time (project `spread`) with every server a cluster of two nodes on one Redis and
 * their clients spread over both (see `startServer` in test/server/support.ts); the tests they leave out, each with
 * its reason, are listed in test/setup-spread.ts. The other suites test one process (its limits, counters, memory
 * and lifecycle), pure modules, or the clients against a server; test/redis/ has the cluster's own tests.
 */
export const spread = [
  "test/server/Routing.test.ts",
  "test/server/Rooms.test.ts",
  "test/server/Permissions.test.ts",
  "test/server/Server.test.ts",
  "test/server/Handshake.test.ts",
  "test/server/Resume.test.ts",
  "test/server/Wire.test.ts",
  "test/server/Fuzz.test.ts"
]

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: "single", include: ["test/**/*.test.ts"], setupFiles: ["./test/setup.ts"] }
      },
      {
        extends: true,
        test: {
          name: "spread",
          include: spread,
          setupFiles: ["./test/setup.ts", "./test/setup-spread.ts"],
          env: { SYMPLE_TEST_NODES: "2" }
        }
      }
    ]
  }
})
