/**
 * Bundles the benchmark programs to plain ESM with esbuild, so that every server and the generator run on bare
 * `node` (no TypeScript loader in the measured process, worker threads work) the way a deployed build would.
 * Our server is bundled as the `symple-ts` command is deployed (`scripts/build-command.ts`: every dependency
 * inside, minified; identifiers kept, so that profiles name functions); the others keep their packages external,
 * resolved from the project's node_modules.
 */
import * as esbuild from "esbuild"
import { existsSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { bundleOptions } from "../scripts/build-command.js"

/** Entries bundled as the command is deployed. */
const deployed = new Set(["ours"])

export const benchDir = Path.dirname(fileURLToPath(import.meta.url))
/** One directory per run, so that a run never starts a bundle another run is rewriting. */
export const outDir = Path.join(benchDir, "results", "build", `${Date.now()}-${process.pid}`)

/**
 * Builds the named entry points (paths relative to bench/) and returns their output files by name. Entries
 * whose source is missing, or that fail to build, are left out and their reason reported in `skipped`.
 */
export const build = async (
  entries: Record<string, string>
): Promise<{ readonly built: Record<string, string>; readonly skipped: Record<string, string> }> => {
  const built: Record<string, string> = {}
  const skipped: Record<string, string> = {}
  for (const [name, entry] of Object.entries(entries)) {
    const source = Path.join(benchDir, entry)
    if (!existsSync(source)) {
      skipped[name] = `${entry} does not exist`
      continue
    }
    const outfile = Path.join(outDir, `${name}.mjs`)
    try {
      await esbuild.build(
        deployed.has(name)
          ? {
            ...bundleOptions(source),
            minify: false,
            minifyWhitespace: true,
            minifySyntax: true,
            outfile,
            sourcemap: "linked",
            logLevel: "silent"
          }
          : {
            entryPoints: [source],
            outfile,
            bundle: true,
            platform: "node",
            format: "esm",
            target: "node22",
            packages: "external",
            sourcemap: "linked",
            logLevel: "silent"
          }
      )
      built[name] = outfile
    } catch (e) {
      skipped[name] = e instanceof Error ? e.message.split("\n").slice(0, 6).join("\n") : String(e)
    }
  }
  return { built, skipped }
}
