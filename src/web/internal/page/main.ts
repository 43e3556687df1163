/**
 * The demo page's script: bundled for the browser by `DemoPage` (esbuild), served at `/demo/app.js`.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Demo from "./Demo.js"

Effect.runFork(Effect.scoped(Demo.main(document)))
