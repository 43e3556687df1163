/**
 * `symple-ts console`: an interactive Symple peer on the terminal, over this package's client. It prints state
 * changes, peers coming online and going offline, and the messages, commands and events it receives; it reads
 * lines from standard input (see `ConsoleInput`), so it can be driven by a person or by a pipe.
 *
 * @since 0.2.0
 */
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Stdio from "effect/Stdio"
import * as Stream from "effect/Stream"
import * as ClientConfig from "../client/ClientConfig.js"
import * as NodeSympleClient from "../client/NodeSympleClient.js"
import type * as SympleClient from "../client/SympleClient.js"
import * as Message from "../protocol/Message.js"
import * as Input from "./ConsoleInput.js"
import * as Output from "./ConsoleOutput.js"

/**
 * @since 0.2.0
 * @category models
 */
export interface ConsoleOptions {
  readonly url: string
  readonly user: string
  readonly name: string | undefined
  readonly token: string | undefined
  readonly rooms: ReadonlyArray<string>
  /** How long `/cmd` waits for a reply, in ms. */
  readonly requestTimeout: number
  /** PEM certificate authorities for a `wss://` server with a private certificate. */
  readonly ca?: string | undefined
}

/**
 * The console could not go on (its authentication was refused, or the server stayed out of reach): the reason has
 * been printed already, and the command exits with 1.
 *
 * @since 0.2.0
 * @category errors
 */
export class ConsoleStopped extends Data.TaggedError("ConsoleStopped")<{ readonly message: string }> {
  override readonly [Runtime.errorReported] = false
}

const describeFailure = (error: { readonly _tag: string; readonly message: string }): string => error.message

/**
 * Runs the console until `/quit`, the end of its input, or a connection that can no longer be made.
 *
 * @since 0.2.0
 * @category constructors
 */
export const run = (
  options: ConsoleOptions
): Effect.Effect<void, ConsoleStopped, Stdio.Stdio | Scope.Scope> =>
  Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    const url = ClientConfig.url({ url: options.url })
    const print = (line: string) => Console.log(line)
    const stopped = yield* Deferred.make<void, ConsoleStopped>()
    yield* print(`* ${options.user} on ${url}: /help lists the commands`)

    const client = yield* NodeSympleClient.make({
      url,
      user: options.user,
      name: options.name,
      token: options.token,
      rooms: options.rooms,
      requestTimeout: options.requestTimeout,
      ca: options.ca
    })
    let current: string | undefined = options.rooms[0]

    // Subscribed before anything can arrive, and each read by one fiber, so lines come out in the order received.
    const frames = yield* client.subscribe
    const roster = yield* client.roster.subscribe
    yield* client.state.pipe(
      // The first state is the client's start (Closed, before it connects): not news.
      Stream.drop(1),
      Stream.runForEach((state) =>
        Effect.gen(function*() {
          yield* print(Output.state(state, url))
          if (state._tag === "Online") {
            const rooms = yield* client.currentRooms
            yield* print(`* rooms: ${rooms.join(", ")}${current === undefined ? "" : ` (current: ${current})`}`)
          }
          if (state._tag === "Error" && !state.retrying) {
            yield* Deferred.fail(stopped, new ConsoleStopped({ message: state.message }))
          }
        })
      ),
      Effect.forkScoped({ startImmediately: true })
    )
    // The roster holds this session too (set as this peer before it enters the roster): it is not news.
    const own = new Set<string>()
    yield* PubSub.take(roster).pipe(
      Effect.flatMap((change) =>
        Effect.gen(function*() {
          const self = yield* client.peer
          if (Option.isSome(self)) own.add(self.value.id)
          if (change._tag === "Updated" || own.has(change.peer.id)) return
          yield* print(
            change._tag === "Connected" ? Output.peerOnline(change.peer) : Output.peerOffline(change.peer)
          )
        })
      ),
      Effect.forever,
      Effect.forkScoped({ startImmediately: true })
    )
    yield* PubSub.take(frames).pipe(
      Effect.flatMap((frame) => {
        switch (frame.type) {
          case "message":
            return print(Output.message(frame))
          case "command":
            // Replies settle the `/cmd` that asked; only requests and notices are news.
            return frame.status === undefined ? print(Output.command(frame)) : Effect.void
          case "event":
            return print(Output.event(frame))
          case "error":
            return print(Output.error(frame))
          default:
            return Effect.void
        }
      }),
      Effect.forever,
      Effect.forkScoped({ startImmediately: true })
    )

    const execute = (input: Input.Input): Effect.Effect<boolean, never, Scope.Scope> => {
      const failed = (what: string) => (error: { readonly _tag: string; readonly message: string }) =>
        print(`! ${what}: ${describeFailure(error)}`)
      const send = <F extends Parameters<SympleClient.SympleClient["send"]>[0]>(frame: F, what: string) =>
        client.send(frame).pipe(Effect.asVoid, Effect.catch(failed(what)))
      switch (input._tag) {
        case "Nothing":
          return Effect.succeed(true)
        case "Say":
          return Effect.as(
            current === undefined
              ? print("! no current room: /join a room, or /msg <to> <text>")
              : send(Message.message({ to: [current], subtype: "chat", data: { text: input.text } }), "not sent"),
            true
          )
        case "Msg":
          return Effect.as(
            send(Message.message({ to: input.to, subtype: "chat", data: { text: input.text } }), "not sent"),
            true
          )
        case "Join":
          return client.joinRoom(input.room).pipe(
            Effect.andThen(Effect.sync(() => void (current = input.room))),
            Effect.andThen(print(`* joined ${input.room} (current room)`)),
            Effect.catch(failed(`cannot join ${input.room}`)),
            Effect.as(true)
          )
        case "Leave":
          return client.leaveRoom(input.room).pipe(
            Effect.andThen(Effect.sync(() => void (current = current === input.room ? undefined : current))),
            Effect.andThen(
              Effect.suspend(() => print(`* left ${input.room}${current === undefined ? " (no current room)" : ""}`))
            ),
            Effect.catch(failed(`cannot leave ${input.room}`)),
            Effect.as(true)
          )
        case "Cmd": {
          const frame = Message.command(input.node, {
            to: input.to,
            ...(input.action === undefined ? {} : { action: input.action }),
            ...(input.data === undefined ? {} : { data: input.data })
          })
          // Waits in its own fiber: the console keeps reading while the reply is on its way.
          return client.request(frame).pipe(
            Effect.flatMap((reply) => print(Output.reply(input.node, reply))),
            Effect.catchTag("RequestError", (error) =>
              print(
                error.reason === "Timeout"
                  ? `! ${input.node}: no reply within ${options.requestTimeout} ms`
                  : `! ${input.node} failed: status ${error.status}${
                    error.response?.from === undefined ? "" : ` from ${error.response.from}`
                  }`
              )),
            Effect.catch(failed(`${input.node} not sent`)),
            Effect.forkScoped,
            Effect.as(true)
          )
        }
        case "Event":
          return Effect.as(
            send(
              Message.event(input.name, { to: input.to, ...(input.data === undefined ? {} : { data: input.data }) }),
              "not sent"
            ),
            true
          )
        case "Who":
          return client.roster.snapshot.pipe(
            Effect.flatMap((peers) =>
              Effect.forEach(Output.who(peers.filter((peer) => !own.has(peer.id))), print, { discard: true })
            ),
            Effect.as(true)
          )
        case "Presence":
          return client.sendPresence().pipe(
            Effect.andThen(print("* presence sent")),
            Effect.catch(failed("presence not sent")),
            Effect.as(true)
          )
        case "Help":
          return Effect.as(Effect.forEach(Input.help, print, { discard: true }), true)
        case "Quit":
          return Effect.succeed(false)
      }
    }

    const readInput = stdio.stdin.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.mapEffect((line) =>
        Result.match(Input.parse(line), {
          onFailure: (problem) => Effect.as(print(`! ${problem}`), true),
          onSuccess: execute
        })
      ),
      Stream.takeWhile((goOn) => goOn),
      Stream.runDrain,
      Effect.catch((error) => print(`! cannot read input: ${error.message}`))
    )
    yield* Effect.raceFirst(readInput, Deferred.await(stopped))
    yield* client.close
    yield* print("* bye")
  })

const roomsFlag = Flag.String("rooms").pipe(
  Flag.withDescription("rooms to join, comma-separated; the first is the current room"),
  Flag.optional,
  Flag.map(Option.match({
    onNone: (): ReadonlyArray<string> => [],
    onSome: (text) => text.split(",").map((room) => room.trim()).filter((room) => room !== "")
  }))
)

/**
 * @since 0.2.0
 * @category commands
 */
export const command = Command.make("console", {
  url: Flag.String("url").pipe(
    Flag.withDescription(
      "server URL: ws:// or wss:// (http:// and https:// are read as such) (default: ws://localhost:4500; SYMPLE_URL)"
    ),
    Flag.withFallbackConfig(Config.String("SYMPLE_URL")),
    Flag.withDefault("ws://localhost:4500")
  ),
  user: Flag.String("user").pipe(Flag.withDescription("user name to connect as")),
  name: Flag.String("name").pipe(Flag.withDescription("display name (default: the user name)"), Flag.optional),
  token: Flag.String("token").pipe(Flag.withDescription("token, for a server in token mode"), Flag.optional),
  rooms: roomsFlag,
  ca: Flag.FileText("ca").pipe(
    Flag.withDescription(
      "PEM file of the certificate authority a wss:// server's certificate must chain to (default: the well-known ones)"
    ),
    Flag.optional
  ),
  requestTimeout: Flag.Int("request-timeout").pipe(
    Flag.withDescription("ms /cmd waits for a reply (default: 10000)"),
    Flag.withDefault(10_000),
    Flag.filter((ms) => ms > 0, (ms) => `must be more than 0, got ${ms}`)
  )
}, (flags) =>
  run({
    url: flags.url,
    user: flags.user,
    name: Option.getOrUndefined(flags.name),
    token: Option.getOrUndefined(flags.token),
    rooms: flags.rooms,
    requestTimeout: flags.requestTimeout,
    ca: Option.getOrUndefined(flags.ca)
  }).pipe(Effect.scoped)).pipe(
    Command.withDescription(
      "An interactive Symple peer: prints what it receives and sends what you type (/help lists the commands). " +
        "Reads standard input line by line, so it can be scripted."
    ),
    Command.withShortDescription("an interactive Symple client")
  )
