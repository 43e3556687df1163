/**
 * What a line typed into `symple-ts console` asks for. Pure: a line goes in, an `Input` or the reason it is not
 * one comes out. A line that does not start with `/` is text for the current room (`//` sends a line that starts
 * with `/`).
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import type { Json } from "../protocol/Json.js"

/**
 * @since 0.2.0
 * @category models
 */
export type Input = Data.TaggedEnum<{
  /** A blank line: nothing to do. */
  Nothing: {}
  /** Text for the current room. */
  Say: { readonly text: string }
  Join: { readonly room: string }
  Leave: { readonly room: string }
  /** A chat message to `to`: `user|id`, a user, or a room. */
  Msg: { readonly to: string; readonly text: string }
  /** A command request; the reply (or the error, or the timeout) is printed when it comes. */
  Cmd: {
    readonly to: string
    readonly node: string
    readonly action: string | undefined
    readonly data: Json | undefined
  }
  Event: { readonly to: string; readonly name: string; readonly data: Json | undefined }
  Who: {}
  Presence: {}
  Help: {}
  Quit: {}
}>

/**
 * @since 0.2.0
 * @category constructors
 */
export const Input = Data.taggedEnum<Input>()

/**
 * The console's commands, as `/help` prints them.
 *
 * @since 0.2.0
 * @category constants
 */
export const help: ReadonlyArray<string> = [
  "/join <room>                        join a room; it becomes the current room",
  "/leave <room>                       leave a room",
  "/msg <to> <text>                    send a message to user|id, a user, or a room",
  "/cmd <to> <node> [action] [json]    send a command and print its reply, error or timeout",
  "/event <to> <name> [json]           send an event",
  "/who                                list the peers online",
  "/presence                           send this peer's presence",
  "/help                               this list",
  "/quit                               leave (so do Ctrl-D and Ctrl-C)",
  "anything else                       a message to the current room (start it with // to send a leading /)"
]

/** Splits off `count` whitespace-separated words; the rest of the line is kept as typed (trimmed). */
const words = (text: string, count: number): { readonly words: Array<string>; readonly rest: string } => {
  const out: Array<string> = []
  let rest = text.trim()
  while (out.length < count && rest !== "") {
    const match = /^(\S+)\s*/.exec(rest)!
    out.push(match[1]!)
    rest = rest.slice(match[0].length)
  }
  return { words: out, rest }
}

const looksLikeJson = (text: string): boolean => /^(?:[{["\d-]|true\b|false\b|null\b)/.test(text)

const json = (text: string, usage: string): Result.Result<Json, string> => {
  try {
    return Result.succeed(JSON.parse(text) as Json)
  } catch (error) {
    return Result.fail(`Invalid JSON (${error instanceof Error ? error.message : String(error)}): ${usage}`)
  }
}

const usages = {
  join: "/join <room>",
  leave: "/leave <room>",
  msg: "/msg <to> <text>",
  cmd: "/cmd <to> <node> [action] [json]",
  event: "/event <to> <name> [json]"
} as const

/**
 * Reads one line of input.
 *
 * @since 0.2.0
 * @category parsing
 */
export const parse = (line: string): Result.Result<Input, string> => {
  const trimmed = line.trim()
  if (trimmed === "") return Result.succeed(Input.Nothing())
  if (trimmed.startsWith("//")) return Result.succeed(Input.Say({ text: trimmed.slice(1) }))
  if (!trimmed.startsWith("/")) return Result.succeed(Input.Say({ text: trimmed }))
  const { rest, words: [name] } = words(trimmed.slice(1), 1)
  const usage = (text: string) => Result.fail(`Usage: ${text}`)
  switch (name) {
    case "join":
    case "leave": {
      const room = words(rest, 1)
      if (room.words.length !== 1 || room.rest !== "") return usage(usages[name])
      return Result.succeed(
        name === "join" ? Input.Join({ room: room.words[0]! }) : Input.Leave({ room: room.words[0]! })
      )
    }
    case "msg": {
      const args = words(rest, 1)
      if (args.words.length !== 1 || args.rest === "") return usage(usages.msg)
      return Result.succeed(Input.Msg({ to: args.words[0]!, text: args.rest }))
    }
    case "cmd": {
      const args = words(rest, 2)
      if (args.words.length !== 2) return usage(usages.cmd)
      const [to, node] = args.words as [string, string]
      if (args.rest === "") return Result.succeed(Input.Cmd({ to, node, action: undefined, data: undefined }))
      if (looksLikeJson(args.rest)) {
        return Result.map(json(args.rest, usages.cmd), (data) => Input.Cmd({ to, node, action: undefined, data }))
      }
      const more = words(args.rest, 1)
      const action = more.words[0]!
      if (more.rest === "") return Result.succeed(Input.Cmd({ to, node, action, data: undefined }))
      return Result.map(json(more.rest, usages.cmd), (data) => Input.Cmd({ to, node, action, data }))
    }
    case "event": {
      const args = words(rest, 2)
      if (args.words.length !== 2) return usage(usages.event)
      const [to, eventName] = args.words as [string, string]
      if (args.rest === "") return Result.succeed(Input.Event({ to, name: eventName, data: undefined }))
      return Result.map(json(args.rest, usages.event), (data) => Input.Event({ to, name: eventName, data }))
    }
    case "who":
    case "presence":
    case "help":
    case "quit":
    case "exit": {
      if (rest !== "") return usage(`/${name}`)
      return Result.succeed(
        name === "who"
          ? Input.Who()
          : name === "presence"
          ? Input.Presence()
          : name === "help"
          ? Input.Help()
          : Input.Quit()
      )
    }
    default:
      return Result.fail(`Unknown command /${name ?? ""}: /help lists the commands`)
  }
}
