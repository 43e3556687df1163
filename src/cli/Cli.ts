/**
 * The `symple-ts` command: `serve` runs a server, `console` an interactive client.
 *
 * @since 0.2.0
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as CliConfig from "effect/cli/CliConfig"
import * as Command from "effect/cli/Command"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import packageJson from "../../package.json" with { type: "json" }
import * as Console from "./Console.js"
import * as Serve from "./Serve.js"

/**
 * @since 0.2.0
 * @category constants
 */
export const version: string = packageJson.version

/**
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("symple-ts").pipe(
  Command.withDescription(
    `symple-ts ${version}: Symple v4 realtime messaging, presence and call signalling over WebSocket`
  ),
  Command.withSubcommands([Serve.command, Console.command])
)

/**
 * The command's run on the given arguments, with Node's services. Effect's wizard mode is left out: every input
 * has a flag, and a prompt would get in the way of scripts.
 *
 * @since 0.2.0
 * @category running
 */
export const run = (args: ReadonlyArray<string>) =>
  Command.runWith(command, { version })(args).pipe(
    Effect.provide(Layer.mergeAll(
      NodeServices.layer,
      CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions, GlobalFlag.LogLevel] })
    ))
  )

/**
 * Exit codes: a stop by SIGINT or SIGTERM is a clean one (0; Effect's default would be 130), which is what a
 * process manager expects of a graceful shutdown; failures keep theirs.
 *
 * @since 0.2.0
 * @category running
 */
export const teardown: Runtime.Teardown = (exit, onExit) =>
  Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
