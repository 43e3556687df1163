/**
 * The entry point of the `symple-ts` command (`dist/bin/symple-ts.mjs` once built).
 *
 * @since 0.2.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cli from "./Cli.js"

// The process ends with the command, whatever handles are left (standard input, still open for reading, would
// otherwise keep `console` alive after `/quit`).
NodeRuntime.runMain(Cli.run(process.argv.slice(2)), {
  teardown: (exit) => Cli.teardown(exit, (code) => process.exit(code))
})
