/**
 * A plain reader of the top level of a JSON object's text, for tests: every member as written, repeated keys
 * included, each key decoded (escapes resolved) and each value parsed on its own. Assumes valid JSON.
 */
export const topLevelMembers = (text: string): Array<readonly [string, unknown]> => {
  let i = 0
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++
  }
  const skipString = () => {
    i++
    while (text[i] !== "\"") i += text[i] === "\\" ? 2 : 1
    i++
  }
  const skipValue = (): void => {
    space()
    const open = text[i]
    if (open === "\"") return skipString()
    if (open === "{" || open === "[") {
      i++
      space()
      if (text[i] === "}" || text[i] === "]") {
        i++
        return
      }
      while (true) {
        if (open === "{") {
          space()
          skipString()
          space()
          i++
        }
        skipValue()
        space()
        if (text[i++] !== ",") return
      }
    }
    while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++
  }
  const members: Array<readonly [string, unknown]> = []
  space()
  i++
  space()
  if (text[i] === "}") return members
  while (true) {
    space()
    const keyAt = i
    skipString()
    const key = JSON.parse(text.slice(keyAt, i)) as string
    space()
    i++
    space()
    const valueAt = i
    skipValue()
    members.push([key, JSON.parse(text.slice(valueAt, i))])
    space()
    if (text[i++] !== ",") return members
  }
}

/** How a parser that keeps the first of repeated keys reads an object's top level. */
export const firstWins = (text: string): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of topLevelMembers(text)) if (!Object.hasOwn(out, key)) out[key] = value
  return out
}
