/**
 * `symple-ts serve`: a Symple server from the command line. Every plain server option is a flag and a `SYMPLE_*`
 * variable (see `ServeOptions`); a flag wins over its variable, which wins over the default. Prints where it
 * listens; SIGINT or SIGTERM stop it gracefully (every peer gets the shutdown event and close 1001).
 *
 * @since 0.2.0
 */
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import type * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as ServerConfig from "../server/ServerConfig.js"
import * as SympleServer from "../server/SympleServer.js"
import * as DemoPage from "../web/DemoPage.js"
import * as ServeOptions from "./ServeOptions.js"

/**
 * A start that cannot go ahead: bad options, a port in use. The command prints the message and exits with 1.
 *
 * @since 0.2.0
 * @category errors
 */
export class ServeError extends Data.TaggedError("ServeError")<{
  readonly reason: "Options" | "Start"
  readonly message: string
}> {
  override get [CliError.userMessage](): string {
    return this.message
  }
}

const flagOf = (option: ServeOptions.Flagged): Flag.Flag<Option.Option<unknown>> => {
  const setting = ServeOptions.settings[option]
  const name = ServeOptions.flagName(option)
  const base: Flag.Flag<unknown> = setting.kind === "string"
    ? Flag.String(name)
    : setting.kind === "boolean"
    ? Flag.Boolean(name)
    : setting.kind === "number"
    ? Flag.Finite(name)
    : Flag.Int(name)
  return base.pipe(Flag.withDescription(ServeOptions.describe(option, ServerConfig.defaults)), Flag.optional)
}

const optionFlags = Object.fromEntries(
  (Object.keys(ServeOptions.settings) as Array<ServeOptions.Flagged>).map((option) => [option, flagOf(option)])
) as { readonly [K in ServeOptions.Flagged]: Flag.Flag<Option.Option<unknown>> }

/** `SchemaError(Expected … \n at ["SYMPLE"]["PORT"])` -> `Expected … at SYMPLE_PORT`. */
const environmentProblem = (message: string): string =>
  message
    .replace(/^SchemaError\(([\s\S]*)\)$/, "$1")
    .replace(
      /\s*\n\s*at ((?:\["[^"]*"\])+)/g,
      (_, path: string) => ` at ${path.slice(2, -2).split("\"][\"").join("_")}`
    )

const tlsFlags = {
  tlsCert: Flag.String("tls-cert").pipe(
    Flag.withDescription(
      "certificate: a PEM file (or PEM text); with --tls-key, serves wss:// and https:// on the port (SYMPLE_TLS_CERT)"
    ),
    Flag.optional
  ),
  tlsKey: Flag.String("tls-key").pipe(
    Flag.withDescription("the certificate's private key: a PEM file (or PEM text) (SYMPLE_TLS_KEY)"),
    Flag.optional
  )
}

/**
 * The demo page, when the command was bundled with it (`scripts/build-command.ts` defines it); under tsx it is
 * bundled from its sources on the first request instead.
 */
declare const SYMPLE_DEMO_PAGE: DemoPage.Assets | undefined
const demoPage = (): ServerConfig.Routes =>
  DemoPage.layer(typeof SYMPLE_DEMO_PAGE === "undefined" ? {} : { assets: SYMPLE_DEMO_PAGE })

const demoFlag = Flag.Boolean("demo").pipe(
  Flag.withDefault(true),
  Flag.withDescription(
    "serve the demo page on GET /: chat, rooms and calls in the browser (--no-demo: / answers 426)"
  )
)

const invalidEnvironment = (error: Config.ConfigError) =>
  new ServeError({ reason: "Options", message: `Invalid environment: ${environmentProblem(error.message)}` })

/**
 * The options a run of `serve` starts with: the environment's, then the flags that were given; checked. A flag that
 * was given wins over its variable, which is then not read at all (a bad value there does not matter).
 *
 * @since 0.2.0
 * @category constructors
 */
export const options = (
  flags: { readonly [K in ServeOptions.Flagged]?: Option.Option<unknown> },
  tls: { readonly tlsCert?: Option.Option<string>; readonly tlsKey?: Option.Option<string> } = {}
): Effect.Effect<Partial<ServerConfig.ServerOptions>, ServeError> =>
  Effect.gen(function*() {
    const given = (Object.keys(flags) as Array<ServeOptions.Flagged>).filter((option) =>
      Option.isSome(flags[option] ?? Option.none())
    )
    const certFlag = Option.getOrUndefined(tls.tlsCert ?? Option.none())
    const keyFlag = Option.getOrUndefined(tls.tlsKey ?? Option.none())
    const tlsFlagged = certFlag !== undefined || keyFlag !== undefined
    const env = yield* Effect.mapError(
      ServerConfig.configWithout(tlsFlagged ? [...given, "tls"] : given),
      invalidEnvironment
    )
    // With one TLS flag, the other half of the pair may still come from its variable.
    const tlsEnv = tlsFlagged
      ? yield* Effect.mapError(ServerConfig.tlsVariables, invalidEnvironment)
      : { cert: Option.none<string>(), key: Option.none<string>() }
    const cert = certFlag ?? Option.getOrUndefined(tlsEnv.cert) ?? env.tls?.cert
    const key = keyFlag ?? Option.getOrUndefined(tlsEnv.key) ?? env.tls?.key
    if ((cert === undefined) !== (key === undefined)) {
      return yield* new ServeError({
        reason: "Options",
        message: cert === undefined
          ? "--tls-key needs a certificate: --tls-cert (or SYMPLE_TLS_CERT)"
          : "--tls-cert needs its key: --tls-key (or SYMPLE_TLS_KEY)"
      })
    }
    const merged = {
      ...ServeOptions.merge(env, flags),
      tls: cert === undefined || key === undefined ? undefined : { cert, key }
    }
    const givenAs = (option: ServeOptions.Flagged) =>
      given.includes(option) ? `--${ServeOptions.flagName(option)}` : ServeOptions.variableName(option)
    return yield* Result.match(ServeOptions.validate(merged, givenAs), {
      onFailure: (message) => Effect.fail(new ServeError({ reason: "Options", message })),
      onSuccess: Effect.succeed
    })
  })

/**
 * Runs a server with `options` until interrupted, printing where it listens.
 *
 * @since 0.2.0
 * @category constructors
 */
export const serve = (options: Partial<ServerConfig.ServerOptions>): Effect.Effect<never, ServeError> =>
  Effect.gen(function*() {
    const server = yield* SympleServer.makeWithDefaults(options).pipe(
      Effect.mapError((error) => new ServeError({ reason: "Start", message: error.message }))
    )
    const http = server.url.replace(/^ws/, "http")
    const page = options.routes === undefined ? "" : `demo page: ${http}/, `
    yield* Console.log(`Symple server listening on ${server.url} (${page}health: ${http}/health)`)
    // Runs before the server's own finalizers: the notice comes first, then the peers are told and closed.
    yield* Effect.addFinalizer(() => Console.log("Symple server stopping"))
    return yield* Effect.never
  }).pipe(Effect.scoped)

/**
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make(
  "serve",
  { ...optionFlags, ...tlsFlags, demo: demoFlag },
  ({ demo, tlsCert, tlsKey, ...flags }) =>
    Effect.flatMap(
      options(flags, { tlsCert, tlsKey }),
      (resolved) => serve(demo ? { ...resolved, routes: demoPage() } : resolved)
    )
).pipe(
  Command.withDescription(
    "Runs a Symple server: WebSocket peers and HTTP (GET /health) on one port. Each flag also reads from the " +
      "SYMPLE_* variable named beside it; a flag given wins over its variable. Boolean flags have a --no- form " +
      "(--no-authentication). SIGINT / SIGTERM stop it gracefully: every peer is told, then closed with 1001."
  ),
  Command.withShortDescription("run a Symple server")
)
