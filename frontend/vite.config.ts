import react from "@vitejs/plugin-react";
import { gzipSync } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const django = "http://127.0.0.1:8000";
/** The budget for all JavaScript, gzipped. */
const JS_BUDGET_KB = 250;

/** Prints the gzipped total of every JS chunk and fails the build above the budget. */
function bundleBudget(): Plugin {
  return {
    name: "arbiter-bundle-budget",
    apply: "build",
    generateBundle(_options, bundle) {
      let bytes = 0;
      for (const output of Object.values(bundle)) {
        if (output.type === "chunk") bytes += gzipSync(output.code).length;
      }
      const kb = bytes / 1000;
      const line = `JavaScript total: ${kb.toFixed(1)} kB gzipped (budget ${JS_BUDGET_KB} kB)`;
      if (kb > JS_BUDGET_KB) this.error(line);
      this.info(line);
    },
  };
}

export default defineConfig(({ command }) => ({
  plugins: [react(), bundleBudget()],
  // Django serves the built assets under STATIC_URL; the dev server stays at "/" so
  // client-side paths (/login) are the same in dev and production.
  base: command === "build" ? "/static/" : "/",
  build: { outDir: "dist", emptyOutDir: true },
  server: {
    // Host is passed through unchanged so Django's CSRF origin check sees the dev origin.
    proxy: { "/api": django, "/admin": django, "/static/admin": django },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
    unstubGlobals: true,
  },
}));
