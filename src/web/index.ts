/**
 * The demo page, served by a Symple server on its own port.
 *
 * @since 0.2.0
 */
export * as DemoPage from "./DemoPage.js"
