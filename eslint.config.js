// Type-aware lint (typescript-eslint) over the server, tools and tests: the rules that catch promise
// mistakes the compiler lets through. `npm run lint`; part of `npm test`.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "authz-server/bundle/**", "filters/**", "test/fixtures/wasm/**", ".envoy/**", "tools/bench/results/**"] },
  {
    files: ["authz-server/src/**/*.ts", "tools/**/*.ts", "test/**/*.ts"],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/require-await": "off",
    },
  },
);
