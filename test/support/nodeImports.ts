/**
 * Whether code bundles for the browser: esbuild bundles it for the browser platform and lists every Node-only import
 * met on the way (Node's built-in modules, `ws`, `@effect/platform-node`), kept external so the build goes on.
 */
import { build, type BuildOptions } from "esbuild"
import { builtinModules } from "node:module"

const nodeBuiltins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]))

const isNodeOnly = (path: string) =>
  nodeBuiltins.has(path) || nodeBuiltins.has(path.split("/")[0] ?? path) || path === "ws" ||
  path.startsWith("@effect/platform-node")

/** The Node-only imports (`path (from importer)`) and every input file of a browser bundle of `input`. */
export const nodeImports = async (
  input: Pick<BuildOptions, "entryPoints" | "stdin">
): Promise<{ readonly found: ReadonlyArray<string>; readonly inputs: ReadonlyArray<string> }> => {
  const found: Array<string> = []
  const result = await build({
    ...input,
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    logLevel: "silent",
    metafile: true,
    plugins: [{
      name: "refuse-node",
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (!isNodeOnly(args.path)) return undefined
          found.push(`${args.path} (from ${args.importer})`)
          return { path: args.path, external: true }
        })
      }
    }]
  })
  return { found, inputs: Object.keys(result.metafile.inputs) }
}
