// Formatting as Effect's own packages are formatted: dprint through eslint with the `@effect/dprint` rule
// (2 spaces, 120 columns, no semicolons, double quotes, no trailing commas, parenthesised arrow parameters).
import effect from "@effect/eslint-plugin"
import tsParser from "@typescript-eslint/parser"

export default [
  { ignores: ["node_modules/**", "dist/**", "bench/results/**"] },
  {
    files: ["**/*.ts", "**/*.mjs"],
    languageOptions: { parser: tsParser, ecmaVersion: 2022, sourceType: "module" },
    plugins: { "@effect": effect },
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  }
]
