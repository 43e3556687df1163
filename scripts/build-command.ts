/**
 * Bundles the `symple-ts` command (`src/cli/main.ts`) into one minified ES module with every dependency inside,
 * and the demo page too, so that it starts on plain `node` with no node_modules: `dist/bin/symple-ts.mjs`, the
 * package's `bin`.
 *
 *   npx tsx scripts/build-command.ts [outfile]   (npm run build runs it after the library's tsc build)
 *
 * A bundle also holds less memory at rest than the same program loading its packages from node_modules (one
 * module instead of hundreds, and only the code it reaches). The file is written whole and renamed into place, so
 * a process starting it never reads half a file.
 */
import { Effect } from "effect"
import * as esbuild from "esbuild"
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as DemoPage from "../src/web/DemoPage.js"

export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** Where `npm run build` puts the command. */
export const defaultOutfile = Path.join(root, "dist", "bin", "symple-ts.mjs")

/**
 * The esbuild options of the command's bundle, for any entry point (the benchmark bundles its server the same
 * way). `ws` requires Node's built-in modules with `require`, which an ES module lacks: the banner makes one.
 * `bufferutil` and `utf-8-validate` are optional native speed-ups of `ws` that it does without when they are absent;
 * `esbuild` (which builds the demo page from its sources when it was not bundled ahead of time) is a native program
 * that cannot be bundled.
 */
export const bundleOptions = (entry: string): esbuild.BuildOptions => ({
  entryPoints: [entry],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  minify: true,
  legalComments: "none",
  external: ["bufferutil", "utf-8-validate", "esbuild"],
  banner: {
    js: "import { createRequire as __sympleRequire } from \"node:module\"; " +
      "const require = __sympleRequire(import.meta.url);"
  },
  logLevel: "warning"
})

/**
 * The command's options: the demo page, bundled for the browser now, goes inside as `SYMPLE_DEMO_PAGE` (see
 * `src/cli/Serve.ts`), and the file starts with a `node` shebang.
 */
export const commandOptions = async (
  entry = Path.join(root, "src", "cli", "main.ts")
): Promise<esbuild.BuildOptions> => {
  const options = bundleOptions(entry)
  const page = await Effect.runPromise(DemoPage.bundle)
  return {
    ...options,
    banner: { js: `#!/usr/bin/env node\n${options.banner!["js"]}` },
    define: { SYMPLE_DEMO_PAGE: JSON.stringify(page) }
  }
}

/** Builds the command into `outfile` (written atomically, executable); returns its size in bytes. */
export const buildCommand = async (outfile: string = defaultOutfile): Promise<number> => {
  const result = await esbuild.build({ ...(await commandOptions()), outfile, write: false })
  const output = result.outputFiles.find((file) => file.path === outfile)
  if (output === undefined) throw new Error(`esbuild produced no ${outfile}`)
  mkdirSync(Path.dirname(outfile), { recursive: true })
  const partial = `${outfile}.${process.pid}.tmp`
  writeFileSync(partial, output.contents, { mode: 0o755 })
  chmodSync(partial, 0o755)
  renameSync(partial, outfile)
  return output.contents.byteLength
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outfile = Path.resolve(process.argv[2] ?? defaultOutfile)
  buildCommand(outfile).then(
    (bytes) => process.stdout.write(`${Path.relative(process.cwd(), outfile)}: ${(bytes / 1024).toFixed(0)} KiB\n`),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
      process.exitCode = 1
    }
  )
}
