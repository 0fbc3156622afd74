import { defineConfig } from "vitest/config";

export default defineConfig({
  // Resolve sibling packages to their TypeScript sources, so tests need no build.
  resolve: { conditions: ["@vmmkit/source"] },
  ssr: { resolve: { conditions: ["@vmmkit/source"] } },
  test: {
    include: ["**/src/**/*.test.ts", "**/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ["**/src/**/*.test-d.ts", "**/test/**/*.test-d.ts"],
      tsconfig: "./tsconfig.json",
    },
  },
});
