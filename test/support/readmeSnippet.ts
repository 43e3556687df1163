/**
 * README examples kept as code that runs: a test holds the example between `// --- README (<name>) ---` and
 * `// --- end ---` lines, runs it, and checks that the README shows the same text.
 */
import * as Fs from "node:fs"

/** The README's text. */
export const readme = (): string => Fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8")

/** The lines between `// --- README (<name>) ---` and `// --- end ---` in `source`, without their common indent. */
export const snippet = (source: string, name: string): string => {
  const lines = source.split("\n")
  const start = lines.findIndex((line) => line.trim() === `// --- README (${name}) ---`)
  const end = lines.findIndex((line, i) => i > start && line.trim() === "// --- end ---")
  if (start < 0 || end < 0) throw new Error(`no README (${name}) block`)
  const body = lines.slice(start + 1, end)
  const indent = Math.min(...body.filter((line) => line.trim() !== "").map((line) => line.search(/\S/)))
  return body.map((line) => line.slice(indent)).join("\n")
}
